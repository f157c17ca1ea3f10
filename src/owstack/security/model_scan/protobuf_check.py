"""Protobuf model files, read at the wire-format level (no onnx or tensorflow dependency).

- Every file: the top-level fields must parse (tags, varints and lengths inside the file), else the
  file is unscannable; a SentencePiece `tokenizer.model` is such a protobuf and nothing more.
- ONNX: a tensor's `external_data` `location` is a path the loader opens relative to the model; an
  absolute path or one with `..` reads any file of the machine into a tensor (CVE-2022-25882,
  CVE-2024-27318, CVE-2024-5187).
- TensorFlow graphs (`saved_model.pb`, frozen `.pb`): a node whose op is `ReadFile` or `WriteFile`
  reads or writes files when the graph runs (modelscan's `unsafe_tf_operators`).
"""

from __future__ import annotations

import re

ONNX_LOCATION = re.compile(rb"\x0a\x08location\x12")
#: NodeDef.op is field 2 (tag 0x12) followed by the op name's length
TF_FILE_OPS = ("ReadFile", "WriteFile")
_MAX_FIELDS = 10_000_000


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def wire_problem(data: bytes | memoryview) -> str | None:
    """Why `data` is not a well-formed protobuf message (top level), or None."""
    pos = fields = 0
    try:
        while pos < len(data):
            fields += 1
            if fields > _MAX_FIELDS:
                return f"more than {_MAX_FIELDS} fields"
            key, pos = _varint(data, pos)
            wire = key & 7
            if key >> 3 == 0:
                return f"field number 0 at byte {pos}"
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 2:
                length, pos = _varint(data, pos)
                pos += length
            elif wire == 5:
                pos += 4
            else:
                return f"wire type {wire} at byte {pos}"
    except ValueError as exc:
        return f"{exc} at byte {pos}"
    return None if pos == len(data) else "last field runs past the end"


def onnx_locations(data: bytes) -> list[str]:
    """The external-data locations an ONNX model names."""
    out = []
    for match in ONNX_LOCATION.finditer(data):
        try:
            length, start = _varint(data, match.end())
        except ValueError:
            continue
        out.append(data[start : start + length].decode("utf-8", "replace"))
    return out


def escapes(location: str) -> bool:
    """Whether a relative path leaves the model's folder (absolute, drive letter, `..`, URL)."""
    parts = re.split(r"[\\/]", location)
    return (
        location.startswith(("/", "\\", "~"))
        or bool(re.match(r"^[A-Za-z]:", location))
        or ".." in parts
        or "://" in location
    )


def tf_file_ops(data: bytes) -> list[str]:
    return [op for op in TF_FILE_OPS if b"\x12" + bytes([len(op)]) + op.encode() in data]
