"""Pretrained static word vectors for the guard's third detector: WordLlama's `l2_supercat_256`.

WordLlama (MIT, the `wordllama` package on PyPI) ships, inside its wheel, a 32,000 x 256 token-embedding
matrix (`wordllama/weights/l2_supercat_256.safetensors`, float16, 16 MB) distilled from the input
embeddings of several large language models and trained so that the average of a text's token vectors
embeds its meaning, and the Llama-2 tokenizer that indexes it (`wordllama/tokenizers/
l2_supercat_tokenizer_config.json`, read with Hugging Face `tokenizers`). Nothing is downloaded: both
files are read from the installed package, located with `importlib.util.find_spec` (WordLlama's own
module, which can fetch other models from the network, is never imported).

`vectors(texts)` pools each text's token vectors into a fixed-size vector the classifier reads: the
mean (L2-normalised, WordLlama's sentence embedding), the element-wise maximum over tokens (which words
are there at all) and the element-wise maximum over the text's sentences of their normalised means
(one planted sentence in a longer text is not averaged away). Texts are read normalised
(`features.normalise`: look-alikes folded, invisible characters and encodings undone).

If `wordllama` or `tokenizers` is missing, `available()` is False and the guard runs its other two
detectors (the model says which it needs).
"""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from owstack.security.guard.features import normalise

DIM = 256
#: pooled vector: mean, token maximum, sentence maximum
POOLED = 3 * DIM
#: tokens read per text (a 1,200-character window is about 300)
MAX_TOKENS = 512
_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
_SENTENCE_END = re.compile(r"[.!?。！？;:]\s|\n")


def _package_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("wordllama")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _read_safetensors(path: Path) -> np.ndarray:
    """The one float16 tensor of WordLlama's weights file, without the `safetensors` package."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
        entry = header["embedding.weight"]
        if entry["dtype"] != "F16" or entry["shape"][1] < DIM:
            raise ValueError(f"{path}: unexpected tensor {entry}")
        start, end = entry["data_offsets"]
        fh.seek(8 + size + start)
        data = np.frombuffer(fh.read(end - start), dtype="<f2")
    return data.reshape(entry["shape"])[:, :DIM].astype(np.float32)


@cache
def _load() -> tuple[Any, np.ndarray] | None:
    root = _package_dir()
    if root is None:
        return None
    weights, tokenizer_file = root.joinpath(*_WEIGHTS), root.joinpath(*_TOKENIZER)
    if not weights.is_file() or not tokenizer_file.is_file():
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, _read_safetensors(weights)


def available() -> bool:
    return _load() is not None


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-6)


def vectors(texts: list[str]) -> np.ndarray:
    """(len(texts), POOLED) pooled vectors (see the module docstring). Raises if WordLlama is absent."""
    loaded = _load()
    if loaded is None:
        raise RuntimeError("the wordllama package (and tokenizers) is not installed")
    tokenizer, table = loaded
    norms = [normalise(t) for t in texts]
    encoded = tokenizer.encode_batch(norms, add_special_tokens=False)
    out = np.zeros((len(texts), POOLED), dtype=np.float32)
    for i, (norm, enc) in enumerate(zip(norms, encoded, strict=True)):
        ids = np.asarray(enc.ids[:MAX_TOKENS], dtype=np.int64)
        if len(ids) == 0:
            continue
        vecs = table[np.clip(ids, 0, len(table) - 1)]
        out[i, :DIM] = _unit(vecs.mean(axis=0))
        out[i, DIM : 2 * DIM] = vecs.max(axis=0)
        # sentences: runs of tokens cut where the normalised text ends a sentence (offsets only grow)
        cuts = [m.end() for m in _SENTENCE_END.finditer(norm)]
        if cuts:
            ends = np.fromiter((off[1] for off in enc.offsets[: len(ids)]), dtype=np.int64, count=len(ids))
            sentence_of = np.searchsorted(np.asarray(cuts), ends, side="left")
            starts = np.concatenate(([0], np.flatnonzero(np.diff(sentence_of)) + 1))
            counts = np.diff(np.append(starts, len(ids)))
            means = _unit(np.add.reduceat(vecs, starts, axis=0) / counts[:, None])
            out[i, 2 * DIM :] = means.max(axis=0)
        else:
            out[i, 2 * DIM :] = out[i, :DIM]
    return out
