"""The special tokens of a GGUF model, read straight from its metadata.

`gguf.GGUFReader` parses every tensor descriptor and turns the vocabulary into numpy views: about 5 s
for SmolLM2's file on this machine, too slow for a gateway start. This reader walks only the key/value
section (the layout is in ggml's docs/gguf.md) and keeps `tokenizer.ggml.tokens` and
`tokenizer.ggml.token_type`. Tokens of type CONTROL (3), USER_DEFINED (4) and UNKNOWN (2) are the ones
llama.cpp matches literally in text when it tokenizes with `parse_special` (llama-vocab.cpp,
`tokenizer_st_partition` over `cache_special_tokens`).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO

SPECIAL_TYPES = frozenset({2, 3, 4})  # UNKNOWN, CONTROL, USER_DEFINED (llama_token_type)
_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # type -> bytes
_STRING, _ARRAY = 8, 9
MAX_STRING = 1 << 24


class GGUFTokenError(ValueError):
    """Not a GGUF file, or its metadata is malformed."""


def _read(fh: IO[bytes], n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise GGUFTokenError("truncated GGUF metadata")
    return data


def _u32(fh: IO[bytes]) -> int:
    return int(struct.unpack("<I", _read(fh, 4))[0])


def _u64(fh: IO[bytes]) -> int:
    return int(struct.unpack("<Q", _read(fh, 8))[0])


def _string(fh: IO[bytes]) -> bytes:
    n = _u64(fh)
    if n > MAX_STRING:
        raise GGUFTokenError("GGUF string too long")
    return _read(fh, n)


def _skip(fh: IO[bytes], vtype: int) -> None:
    if vtype in _SCALARS:
        fh.seek(_SCALARS[vtype], 1)
    elif vtype == _STRING:
        fh.seek(_u64(fh), 1)
    elif vtype == _ARRAY:
        etype, count = _u32(fh), _u64(fh)
        if etype in _SCALARS:
            fh.seek(_SCALARS[etype] * count, 1)
        else:
            for _ in range(count):
                _skip(fh, etype)
    else:
        raise GGUFTokenError(f"unknown GGUF value type {vtype}")


def _strings(fh: IO[bytes]) -> list[str]:
    etype, count = _u32(fh), _u64(fh)
    if etype != _STRING:
        raise GGUFTokenError("tokenizer.ggml.tokens is not an array of strings")
    return [_string(fh).decode("utf-8", "replace") for _ in range(count)]


def _ints(fh: IO[bytes]) -> list[int]:
    etype, count = _u32(fh), _u64(fh)
    if etype not in (4, 5):
        raise GGUFTokenError("tokenizer.ggml.token_type is not an array of 32-bit integers")
    code = "I" if etype == 4 else "i"
    fmt = f"<{count}{code}"
    return list(struct.unpack(fmt, _read(fh, 4 * count)))


def special_tokens(path: str | Path) -> list[str]:
    """The CONTROL, USER_DEFINED and UNKNOWN tokens of a GGUF file's vocabulary, in vocabulary order."""
    with open(path, "rb") as fh:
        if _read(fh, 4) != b"GGUF":
            raise GGUFTokenError(f"{path}: not a GGUF file")
        version = _u32(fh)
        if version < 2:
            raise GGUFTokenError(f"{path}: GGUF version {version} is not supported")
        _u64(fh)  # tensor count
        kv_count = _u64(fh)
        tokens: list[str] | None = None
        types: list[int] | None = None
        for _ in range(kv_count):
            key = _string(fh).decode("utf-8", "replace")
            vtype = _u32(fh)
            if key == "tokenizer.ggml.tokens" and vtype == _ARRAY:
                tokens = _strings(fh)
            elif key == "tokenizer.ggml.token_type" and vtype == _ARRAY:
                types = _ints(fh)
            else:
                _skip(fh, vtype)
            if tokens is not None and types is not None:
                break
    if tokens is None or types is None or len(tokens) != len(types):
        raise GGUFTokenError(f"{path}: no tokenizer.ggml.tokens/token_type in the metadata")
    return [t for t, kind in zip(tokens, types, strict=True) if kind in SPECIAL_TYPES]
