"""What a finished run leaves in its folder, and the lineage record tying it together.

adapter/              PEFT adapter (adapter_config.json, adapter_model.safetensors) and tokenizer (lora)
model/                the full Hugging Face model (full tuning)
adapter.gguf          the GGUF LoRA adapter for llama.cpp and the embedded engine (lora)
model-<type>.gguf     optional: the base with the adapter merged in, one GGUF
README.md             the model card
lineage.json          the lineage record (lineage.py)
heldout.jsonl         the held-out rows for `owstack eval finetune` (mode 0600; audit rows by reference)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from owstack.finetune import lineage
from owstack.finetune.base import Base
from owstack.finetune.card import model_card
from owstack.finetune.data import sha256_file, write_jsonl
from owstack.finetune.errors import ExportError
from owstack.finetune.plan import Plan


def _entry(path: Path) -> dict[str, Any]:
    return {"path": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _folder_entry(folder: Path) -> dict[str, Any]:
    weights = sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")
    return {"path": folder.name, "files": {p.name: sha256_file(p) for p in weights}}


def save_weights(plan: Plan, trained: Any, base_folder: Path) -> dict[str, Any]:
    """The adapter (or full model) in HF format, and the GGUF files; returns the artifact entries."""
    from owstack.finetune.lora_gguf import convert

    out, export = plan.out, plan.recipe.export
    artifacts: dict[str, Any] = {}
    folder = out / ("adapter" if plan.recipe.tuning == "lora" else "model")
    trained.trainer.save_model(str(folder))
    trained.tokenizer.save_pretrained(str(folder))
    (folder / "training_args.bin").unlink(missing_ok=True)  # a pickle: the recipe and lineage say the same
    artifacts["adapter" if plan.recipe.tuning == "lora" else "model"] = _folder_entry(folder)
    if plan.recipe.tuning == "lora" and export.gguf_adapter:
        config = json.loads((base_folder / "config.json").read_text("utf-8"))
        path = convert(folder, config, out / "adapter.gguf", out_type=export.gguf_adapter_type)
        artifacts["adapter_gguf"] = _entry(path)
    if export.merged_gguf != "none":
        artifacts["merged_gguf"] = _entry(_merged(plan.base, trained.model, out, export.merged_gguf))
    return artifacts


def _merged(base: Base, model: Any, out: Path, out_type: str) -> Path:
    from owstack.efficiency.opsdc.gguf_export import ExportError as GGUFError
    from owstack.efficiency.opsdc.gguf_export import export

    if base.gguf is None:
        raise ExportError(
            "export.merged_gguf: the base is a Hugging Face folder; a merged GGUF needs the base as GGUF for its "
            "tokenizer and template (or convert model/ with llama.cpp's convert_hf_to_gguf.py)"
        )
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    try:
        return export(merged, base.gguf, out / f"model-{out_type}.gguf", out_type=out_type)
    except GGUFError as exc:
        raise ExportError(f"export.merged_gguf: {exc}") from None


def finish(plan: Plan, trained: Any, base_folder: Path, started: str, seconds: float) -> dict[str, Any]:
    """Write every artifact, the held-out split, the model card and the lineage record."""
    from owstack.compliance.service import local_actor
    from owstack.finetune.engine import world_size

    artifacts = save_weights(plan, trained, base_folder)
    if plan.eval:
        write_jsonl(plan.out / "heldout.jsonl", plan.eval)
    recipe = plan.recipe.model_dump(mode="json", by_alias=True)
    record: dict[str, Any] = {
        "schema": lineage.SCHEMA,
        "name": plan.recipe.name,
        "kind": "lora-adapter" if plan.recipe.tuning == "lora" else "full-model",
        "method": plan.recipe.method,
        "created": lineage.now(),
        "base": plan.base.to_dict(),
        "data": {
            "sources": [s.to_dict() for s in plan.sources],
            "train_examples": len(plan.train),
            "eval_examples": len(plan.eval),
            "redaction": plan.redaction,
        },
        "jurisdiction": {"compute": plan.recipe.jurisdiction, "serving": plan.serving_jurisdictions},
        "recipe": recipe,
        "recipe_sha256": lineage.recipe_digest(recipe),
        "code": lineage.code_versions(),
        "metrics": trained.metrics,
        "artifacts": artifacts,
        "run": {
            "by": local_actor(),
            "started": started,
            "seconds": round(seconds, 1),
            "processes": world_size(),
            "device": "cuda" if _cuda() else "cpu",
        },
    }
    lineage.write(plan.out, record)
    (plan.out / "README.md").write_text(model_card(record), "utf-8")
    return record


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
