"""Safetensors header checks, by the format's own rules (huggingface/safetensors README).

Layout: 8-byte little-endian header length N, N bytes of JSON, then the data buffer. Each tensor entry
has a dtype, a shape and `data_offsets` [begin, end) into the buffer; entries must not overlap, must stay
inside the buffer, must match dtype x shape in size, and together must cover the buffer without holes.
The reference loader refuses headers above 100 MB.
"""

from __future__ import annotations

import json
import math
import struct
from typing import IO, Any

MAX_HEADER_BYTES = 100_000_000
MAX_ISSUES = 10
#: bits per element
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "C64": 64,
}


def check(fh: IO[bytes], size: int) -> tuple[list[str], int]:
    """(problems, tensor count) of a safetensors file. No problems means the header is consistent."""
    head = fh.read(8)
    if len(head) < 8:
        return [f"file of {size} bytes is too short for a safetensors header"], 0
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER_BYTES:
        return [f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit"], 0
    if 8 + n > size:
        return [f"header length {n} runs past the end of the {size}-byte file"], 0
    raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return [f"header is not valid UTF-8 JSON ({type(exc).__name__})"], 0
    if not isinstance(header, dict):
        return ["header is not a JSON object"], 0
    return _entries(header, size - 8 - n)


def _entries(header: dict[str, Any], buffer: int) -> tuple[list[str], int]:
    problems: list[str] = []
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        problems.append("__metadata__ must map strings to strings")
    if isinstance(meta, dict):
        from owstack.security.model_scan import archive_code

        for config in archive_code.metadata_configs(meta):
            for target in archive_code.dangerous_targets(config):
                problems.append(f"__metadata__ names Hydra _target_ {target!r}, which hydra.utils.instantiate calls")
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        problem = _entry(name, entry, buffer, spans)
        if problem:
            problems.append(problem)
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin < position:
            problems.append(f"tensor {name!r} overlaps the previous tensor (offset {begin} < {position})")
        elif begin > position:
            problems.append(f"hole of {begin - position} bytes before tensor {name!r}")
        position = max(position, end)
    if position != buffer and not any("beyond" in p for p in problems):  # also no tensor and bytes after the header
        problems.append(f"tensors cover {position} of the {buffer} data bytes")
    return problems[:MAX_ISSUES], len(header)


def _entry(name: str, entry: Any, buffer: int, spans: list[tuple[int, int, str]]) -> str | None:
    if not isinstance(entry, dict):
        return f"tensor {name!r} is not an object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        return f"tensor {name!r} has unknown dtype {dtype!r}"
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        return f"tensor {name!r} has an invalid shape {shape!r}"
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
    ):
        return f"tensor {name!r} has invalid data_offsets {offsets!r}"
    begin, end = offsets
    if begin > end:
        return f"tensor {name!r} ends before it begins ({begin} > {end})"
    if end > buffer:
        return f"tensor {name!r} data [{begin}, {end}) lies beyond the end of the {buffer}-byte buffer"
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        return f"tensor {name!r} is {end - begin} bytes but {dtype} x {shape} needs {bits / 8:g}"
    spans.append((begin, end, name))
    return None
