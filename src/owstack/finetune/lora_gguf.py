"""A PEFT LoRA adapter as a GGUF LoRA adapter that llama.cpp loads on top of its base model.

The logic of llama.cpp's `convert_lora_to_gguf.py` (the script is not shipped in any wheel), written with
the `gguf` package:

- metadata `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, and the architecture;
- for each adapted linear layer, `<llama.cpp name>.lora_a` (PEFT's lora_A, shape [r, in]) and
  `<llama.cpp name>.lora_b` (lora_B, [out, r]), under the base tensor's llama.cpp name (`blk.0.attn_q.weight`);
- query and key projections are permuted into llama.cpp's rotary layout exactly as the base weights are
  (owstack.efficiency.opsdc.gguf_export.permute): the permutation acts on output rows, so only lora_b moves;
- llama.cpp scales by alpha / r; PEFT by alpha / r, or alpha / sqrt(r) with rsLoRA, so the alpha written
  is PEFT's scaling times r.

Supported: the `llama` architecture (SmolLM2, Llama, Mistral-style models), linear layers only (no
embedding or output-head LoRA); anything else is an `ExportError` that names llama.cpp's own script.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from owstack.finetune.errors import ExportError

#: transformers model_type -> (llama.cpp architecture, permute q/k)
ARCHITECTURES = {"llama": ("llama", True), "mistral": ("llama", True)}
_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<base>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


def _scaling(config: dict[str, Any]) -> float:
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ExportError("GGUF LoRA export: per-module rank_pattern/alpha_pattern is not supported")
    r, alpha = float(config["r"]), float(config["lora_alpha"])
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def _pairs(tensors: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        m = _KEY.match(key)
        if m is None:
            raise ExportError(f"GGUF LoRA export: unexpected tensor {key} in the adapter (only LoRA on linear layers)")
        pairs.setdefault(m.group("base"), {})[m.group("ab")] = value
    for base, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise ExportError(f"GGUF LoRA export: {base} lacks lora_A or lora_B")
    return pairs


def convert(adapter_dir: Path, base_config: dict[str, Any], dest: Path, *, out_type: str = "f32") -> Path:
    """Write `dest` from the PEFT adapter in `adapter_dir` for a base with `base_config` (config.json)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    from owstack.efficiency.opsdc.gguf_export import permute

    model_type = str(base_config.get("model_type"))
    if model_type not in ARCHITECTURES:
        raise ExportError(
            f"GGUF LoRA export supports {', '.join(ARCHITECTURES)} models, not {model_type!r}; "
            "use llama.cpp's convert_lora_to_gguf.py for it"
        )
    arch, permutes = ARCHITECTURES[model_type]
    config = json.loads((adapter_dir / "adapter_config.json").read_text("utf-8"))
    scaling = _scaling(config)
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads") or n_head)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], int(base_config["num_hidden_layers"]))
    dtype = np.float16 if out_type == "f16" else np.float32
    pairs = sorted(_pairs(tensors).items())
    if not pairs:
        raise ExportError("GGUF LoRA export: the adapter holds no LoRA tensors")
    rank = int(pairs[0][1]["A"].shape[0])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, scaling * rank)
    for base, pair in pairs:
        name = names.get_name(base + ".weight", try_suffixes=(".weight",))
        if name is None or base.endswith(("lm_head", "embed_tokens")):
            raise ExportError(f"GGUF LoRA export: no llama.cpp tensor for {base} (LoRA on linear layers only)")
        a, b = pair["A"].astype(np.float32), pair["B"].astype(np.float32)
        if a.shape[0] != rank:
            raise ExportError(f"GGUF LoRA export: {base} has rank {a.shape[0]}, the others {rank}")
        if permutes and base.endswith("q_proj"):
            b = permute(b, n_head, n_head)
        elif permutes and base.endswith("k_proj"):
            b = permute(b, n_head, n_head_kv)
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a).astype(dtype))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b).astype(dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dest)
    return dest
