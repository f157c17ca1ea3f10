"""The guard's fine-tuned encoder detector: a small contextual encoder, int8 ONNX, one CPU thread.

A truncated all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) fine-tuned with a linear head to tell
instructions planted in data from text that only talks about instructions
(`training/train_finetune.py`), exported as one int8 ONNX file whose metadata carries its threshold
and token limit. Unlike the frozen encoder tried before it, the encoder's weights themselves are trained,
so who a sentence addresses can be learnt, not only what it is about.

The model file is `OWSTACK_GUARD_ENCODER_MODEL` or the package data file
`security/data/guard_encoder.onnx` when one ships; the WordPiece tokenizer (BERT's uncased vocabulary,
Apache-2.0) ships in owstack (`security/data/guard_encoder_tokenizer.json.gz`). Nothing is downloaded.
`onnxruntime` and `tokenizers` are optional and imported lazily; without them or without the model
file `available()` is False and the guard runs its other detectors.

A window is read as its chunks (`classifier.chunks`; the window itself when it is short), normalised
(`features.normalise`), at most the model's token limit each; its logit is the largest of its pieces'.
Pieces are cached.
"""

from __future__ import annotations

import gzip
import os
from collections import OrderedDict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from owstack.security.guard.features import normalise

#: tokens read per piece (a 320-character chunk is about 70-90)
MAX_TOKENS = 128
MODEL_ENV = "OWSTACK_GUARD_ENCODER_MODEL"
_CACHE_SIZE = 4096
_cache: OrderedDict[str, float] = OrderedDict()


def pieces(window: str) -> list[str]:
    """What the encoder reads of a window: its chunks, or the window itself when it is short."""
    from owstack.security.guard.classifier import chunks

    return chunks(window) or [window]


def tokenizer(max_tokens: int = MAX_TOKENS) -> Any:
    from tokenizers import Tokenizer

    with resources.files("owstack.security").joinpath("data", "guard_encoder_tokenizer.json.gz").open("rb") as fh:
        tok = Tokenizer.from_str(gzip.decompress(fh.read()).decode())
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    return tok


def model_file() -> Path | None:
    override = os.environ.get(MODEL_ENV, "").strip()
    if override:
        return Path(override) if Path(override).is_file() else None
    ref = resources.files("owstack.security").joinpath("data", "guard_encoder.onnx")
    return Path(str(ref)) if ref.is_file() else None


@cache
def _load() -> tuple[Any, Any, float, str] | None:
    path = model_file()
    if path is None:
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    tok = tokenizer(int(meta.get("max_tokens", MAX_TOKENS)))
    return tok, session, float(meta["threshold"]), meta.get("about", "")


def available() -> bool:
    try:
        return _load() is not None
    except ImportError:
        return False


def threshold() -> float:
    loaded = _load()
    if loaded is None:
        raise RuntimeError("the encoder detector's model, onnxruntime or tokenizers is not installed")
    return loaded[2]


def about() -> str:
    loaded = _load()
    return loaded[3] if loaded else ""


def piece_logits(texts: list[str]) -> np.ndarray:
    """One logit per piece (from the cache, the others computed and cached)."""
    out = {t: _cache[t] for t in texts if t in _cache}
    todo = [t for t in dict.fromkeys(texts) if t not in out]
    if todo:
        loaded = _load()
        if loaded is None:
            raise RuntimeError("the encoder detector's model, onnxruntime or tokenizers is not installed")
        tok, session, _, _ = loaded
        encoded = tok.encode_batch([normalise(t) for t in todo])
        order = sorted(range(len(todo)), key=lambda i: len(encoded[i].ids))
        for start in range(0, len(order), 16):
            batch = order[start : start + 16]
            width = max(len(encoded[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            (z,) = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            for row, i in enumerate(batch):
                out[todo[i]] = _cache[todo[i]] = float(z[row])
                if len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
    return np.array([out[t] for t in texts], dtype=np.float32)


def window_logit(window: str) -> float:
    """The largest logit of the window's pieces."""
    return float(piece_logits(pieces(window)).max())
