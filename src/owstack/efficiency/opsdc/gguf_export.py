"""Write a trained Llama-architecture model as a GGUF file the embedded engine (llama.cpp) can serve.

The source GGUF gives everything but the weights: every metadata key (hyper-parameters, tokenizer,
chat template) is copied unchanged except the file type. The trained tensors are written under
llama.cpp's names (gguf's own name map) and in the source's order. Query and key projections are
permuted back into llama.cpp's rotary layout: transformers un-permutes them when it reads a Llama GGUF,
exactly as llama.cpp's converter permutes them when it writes one.

Only architectures whose tensors transformers loads one-to-one (llama) are supported; anything else is
an `ExportError` naming the architecture. An export from a Hugging Face folder needs a GGUF of the same
model as the metadata source (`metadata_from`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUPPORTED = ("llama",)
TYPES = ("f32", "f16", "q8_0")


class ExportError(Exception):
    pass


def permute(weights: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    """llama.cpp's rotary layout for q/k projection rows (as its HF converter writes them)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _field_value(field: Any) -> tuple[Any, Any, Any]:
    import gguf

    vtype = gguf.GGUFValueType(field.types[0])
    sub = gguf.GGUFValueType(field.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
    return field.contents(), vtype, sub


def _tensors(model: Any, arch: str, n_blocks: int, n_head: int, n_head_kv: int) -> dict[str, Any]:
    import gguf

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], n_blocks)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    out: dict[str, Any] = {}
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(f"no llama.cpp name for tensor {hf_name}")
        data = tensor.detach().to("cpu").float().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = permute(data, n_head, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = permute(data, n_head, n_head_kv)
        out[name] = data
    return out


def export(model: Any, metadata_from: Path, dest: Path, *, out_type: str = "f16") -> Path:
    """Write `model`'s weights with `metadata_from`'s metadata to `dest` (f32, f16 or q8_0)."""
    import gguf
    import numpy as np

    if out_type not in TYPES:
        raise ExportError(f"--gguf-type must be one of {', '.join(TYPES)} (got {out_type!r})")
    reader = gguf.GGUFReader(str(metadata_from))
    arch = str(reader.fields["general.architecture"].contents())
    if arch not in SUPPORTED:
        raise ExportError(f"GGUF export supports the {', '.join(SUPPORTED)} architecture, not {arch!r}")
    cfg = model.config
    tensors = _tensors(model, arch, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads)
    wanted = [t.name for t in reader.tensors]
    if sorted(wanted) != sorted(tensors):
        missing = sorted(set(wanted) ^ set(tensors))[:5]
        raise ExportError(f"the model's tensors do not match {metadata_from.name}'s (differ: {', '.join(missing)})")
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[out_type]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        value, vtype, sub = _field_value(field)
        writer.add_key_value(name, value, vtype, sub_type=sub)
    writer.add_file_type(int(file_type))
    for name in wanted:
        data = tensors[name]
        if data.ndim < 2 or out_type == "f32":
            writer.add_tensor(name, data.astype(np.float32))
        elif out_type == "f16":
            writer.add_tensor(name, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data.astype(np.float32), qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dest)
    return dest
