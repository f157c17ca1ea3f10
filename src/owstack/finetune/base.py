"""The base model of a run, from disk only: a catalog model with a bundled GGUF, a .gguf file, or a HF folder.

A GGUF is dequantised into a transformers model once (the OPSDC loader, `loading.load`) and the result is
kept as a Hugging Face folder in `$OWSTACK_CACHE_DIR/hf-from-gguf/<sha256 prefix>` (default
`~/.cache/owstack`), written to a temporary folder and renamed, so later runs and every process of a
multi-process run load it in a fraction of a second. The cache is keyed by the GGUF's SHA-256, which is
also the base digest in the lineage record.

`check_targets` compares the recipe's LoRA targets with the model's own linear modules before training.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owstack.finetune.data import sha256_file
from owstack.finetune.errors import BaseModelError

#: tensors of a Hugging Face folder that make up its weights (hashed for the digest)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja")
COMPLETE = ".complete"


@dataclass(frozen=True, slots=True)
class Base:
    """Where the base model is, what it is, and its digest."""

    spec: str  # as the recipe wrote it
    kind: str  # "gguf" or "hf"
    path: Path  # the .gguf file or the HF folder
    sha256: str
    catalog_id: str | None = None

    @property
    def gguf(self) -> Path | None:
        return self.path if self.kind == "gguf" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "path": str(self.path),
            "sha256": self.sha256,
            "catalog_id": self.catalog_id,
        }


def cache_root() -> Path:
    return Path(os.environ.get("OWSTACK_CACHE_DIR") or Path.home() / ".cache" / "owstack")


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES):
        digest.update(f"{path.relative_to(folder)}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def resolve(spec: str, root: Path) -> Base:
    """The base as a file or folder on disk; `BaseModelError` saying what to pass otherwise."""
    from owstack.catalog.models import embedded_gguf_path, find_card
    from owstack.errors import ConfigError

    card = find_card("smollm2-135m-instruct" if spec == "embedded" else spec)
    path = Path(spec).expanduser()
    path = path if path.is_absolute() else root / path
    if card is not None and not path.exists():
        if card.gguf is None:
            raise BaseModelError(
                f"base: {spec!r} is a catalog model without a bundled GGUF; owstack never downloads weights: "
                "point `base` at a local .gguf file or Hugging Face folder of it"
            )
        try:
            gguf = embedded_gguf_path(card)
        except ConfigError as exc:
            raise BaseModelError(f"base: {exc}") from None
        return Base(spec, "gguf", gguf, card.gguf.sha256, card.id)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise BaseModelError(f"base: no GGUF file at {path} (owstack never downloads weights)")
        return Base(spec, "gguf", path, sha256_file(path))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"base: {path} is not a Hugging Face model folder (it has no config.json)")
        return Base(spec, "hf", path, _folder_digest(path))
    raise BaseModelError(
        f"base: {spec!r} is not on disk (no such file or folder, and not a catalog model with a bundled GGUF); "
        "owstack never downloads weights: pass a local .gguf file or Hugging Face folder"
    )


def hf_folder(base: Base) -> Path:
    """A Hugging Face folder for `base`: itself, or its GGUF dequantised once into the cache."""
    if base.kind == "hf":
        return base.path
    folder = cache_root() / "hf-from-gguf" / base.sha256[:16]
    if (folder / COMPLETE).is_file():
        return folder
    from owstack.efficiency.opsdc.loading import ModelLoadError, load, save_hf

    try:
        model, tokenizer, _ = load(str(base.path))
    except ModelLoadError as exc:
        raise BaseModelError(f"base: {exc}") from None
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_hf(model, tokenizer, tmp)
    (tmp / COMPLETE).write_text(base.sha256, "utf-8")
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load(folder: Path, *, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) from a Hugging Face folder, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseModelError(f"base: cannot load {folder} offline ({first})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def linear_modules(model: Any) -> dict[str, list[str]]:
    """Short name (q_proj) -> full module names, for every linear layer except the output head."""
    import torch

    out: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in ("lm_head", "score"):
            out.setdefault(name.split(".")[-1], []).append(name)
    return out


def check_targets(model: Any, targets: tuple[str, ...]) -> list[str]:
    """The targets as PEFT takes them; `BaseModelError` naming a target the model does not have."""
    if targets == ("all-linear",):
        return ["all-linear"]
    known = linear_modules(model)
    names = {name.split(".")[-1]: name for name, _ in model.named_modules() if name}
    for target in targets:
        if target in known:
            continue
        if target in names:
            raise BaseModelError(
                f"lora.targets: {target!r} is not a linear layer of the base model; "
                f"its linear layers are {', '.join(sorted(known))}"
            )
        raise BaseModelError(
            f"lora.targets: the base model has no module {target!r}; its linear layers are {', '.join(sorted(known))}"
        )
    return list(targets)
