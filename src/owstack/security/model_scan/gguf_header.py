"""A GGUF header read by hand, every count and length checked against the file's size before it is used.

Why not `gguf.GGUFReader`: it trusts the header. A string whose declared length runs past the end of
the file reads as whatever bytes are there (the file passes as fine), and an array declaring 2**40 u8
elements kept it busy for over a minute (measured, gguf 0.19). Out-of-range counts, lengths and tensor
offsets are how GGUF parsers were overflowed (ggml's `gguf.c` now checks each of them), so here each
one is a `GGUFMalformed` naming the byte, and nothing is read past the end or in a loop
longer than the file allows. Layout: docs/gguf.md of ggml (magic, version, tensor count, kv count,
key-value pairs, tensor infos, alignment padding, tensor data).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEMPLATE_KEY = "tokenizer.chat_template"
TEMPLATE_NAMES_KEY = "tokenizer.chat_templates"
TOKENS_KEY = "tokenizer.ggml.tokens"
_INT_KEYS = frozenset({"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "general.alignment"})
_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
MAX_DIMS = 4  # GGML_MAX_DIMS: llama.cpp refuses more
MAX_ARRAY_DEPTH = 4
MAX_ITEMS = 1 << 24  # keys, tensors or strings of one array: a real vocabulary has a few 100,000


class GGUFMalformed(ValueError):
    """A header that a parser cannot read within the file: a count, length or offset out of range."""


@dataclass
class Header:
    version: int = 0
    tensors: int = 0
    strings: dict[str, str] = field(default_factory=dict)  # the general.* strings
    template_values: dict[str, str] = field(default_factory=dict)  # template name -> text
    ints: dict[str, int] = field(default_factory=dict)
    tokens: list[tuple[int, int]] = field(default_factory=list)  # (start, length) of each token's bytes
    tensor_problems: list[str] = field(default_factory=list)
    bos: str = ""
    eos: str = ""


def is_template_key(key: str) -> bool:
    """The keys llama.cpp and llama-cpp-python render as Jinja (the default and the named templates), and
    the list of names, checked too since it is text a loader looks up templates with."""
    return key in (TEMPLATE_KEY, TEMPLATE_NAMES_KEY) or key.startswith(TEMPLATE_KEY + ".")


def template_name(key: str) -> str:
    if key == TEMPLATE_NAMES_KEY:
        return "chat_templates"
    return key.removeprefix(TEMPLATE_KEY).lstrip(".") or "default"


class _Reader:
    def __init__(self, buf: Any, endian: str) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.endian = endian

    def need(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > self.size:
            raise GGUFMalformed(f"{what} at byte {self.pos} needs {n} bytes, past the end of the {self.size}-byte file")
        start = self.pos
        self.pos += n
        return start

    def scalar(self, code: str, what: str) -> Any:
        start = self.need(struct.calcsize(code), what)
        return struct.unpack_from(self.endian + code, self.buf, start)[0]

    def string(self, what: str) -> tuple[int, int]:
        length = self.scalar("Q", f"{what} length")
        return self.need(length, what), length

    def text(self, what: str) -> str:
        start, length = self.string(what)
        return bytes(self.buf[start : start + length]).decode("utf-8", "replace")

    def count(self, what: str, least: int) -> int:
        n = self.scalar("Q", what)
        if n > MAX_ITEMS or n * least > self.size - self.pos:
            raise GGUFMalformed(f"{what} {n} at byte {self.pos - 8} cannot fit in the {self.size}-byte file")
        return int(n)


def read(path: Path) -> Header:
    """The header of a GGUF file; raises `GGUFMalformed` (or OSError) for a file a parser cannot read."""
    with path.open("rb") as fh:
        if path.stat().st_size < 24:
            raise GGUFMalformed("file too short for a GGUF header")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return parse(buf)


def parse(buf: Any) -> Header:
    if bytes(buf[:4]) != b"GGUF":
        raise GGUFMalformed("no GGUF magic")
    endian = "<" if struct.unpack_from("<I", buf, 4)[0] & 0xFFFF else ">"  # a big-endian file's version
    r = _Reader(buf, endian)
    r.pos = 4
    out = Header()
    out.version = r.scalar("I", "version")
    if out.version not in (2, 3):
        raise GGUFMalformed(f"GGUF version {out.version} is not 2 or 3")
    out.tensors = r.count("tensor count", 8 + 4 + 4 + 8)
    for _ in range(r.count("key-value count", 8 + 4)):
        key = r.text("key")
        _value(r, out, key, r.scalar("I", f"type of {key!r}"), 0)
    _tensor_infos(r, out)
    out.bos, out.eos = (_token(buf, out, f"tokenizer.ggml.{t}_token_id") for t in ("bos", "eos"))
    return out


def _token(buf: Any, out: Header, key: str) -> str:
    """A special token's text, for a realistic render of the templates (empty if unknown)."""
    index = out.ints.get(key, -1)
    if not 0 <= index < len(out.tokens):
        return ""
    start, length = out.tokens[index]
    return bytes(buf[start : start + length]).decode("utf-8", "replace")


def _value(r: _Reader, out: Header, key: str, kind: int, depth: int, label: str = "") -> None:
    if kind in _FIXED:
        value = r.scalar(_FIXED[kind], key)
        if key in _INT_KEYS and depth == 0 and isinstance(value, int):
            out.ints[key] = value
    elif kind == _STRING:
        start, length = r.string(f"value of {key!r}")
        if key == TOKENS_KEY and depth == 1:
            out.tokens.append((start, length))
        elif is_template_key(key):
            name = template_name(key) + label
            while name in out.template_values:  # a repeated key: each value is checked, none hides another
                name += "'"
            out.template_values[name] = bytes(r.buf[start : start + length]).decode("utf-8", "replace")
        elif key.startswith("general.") and depth == 0:
            out.strings[key] = bytes(r.buf[start : start + length]).decode("utf-8", "replace")
    elif kind == _ARRAY:
        if depth >= MAX_ARRAY_DEPTH:
            raise GGUFMalformed(f"{key!r}: arrays nested more than {MAX_ARRAY_DEPTH} deep")
        item = r.scalar("I", f"array type of {key!r}")
        least = struct.calcsize(_FIXED[item]) if item in _FIXED else 8 if item == _STRING else 12
        n = r.count(f"array length of {key!r}", least)
        if item in _FIXED:
            r.need(n * least, f"array of {key!r}")
        else:
            for i in range(n):
                _value(r, out, key, item, depth + 1, f"{label}[{i}]")
    else:
        raise GGUFMalformed(f"{key!r} has unknown value type {kind}")


def _tensor_infos(r: _Reader, out: Header) -> None:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    spans: list[tuple[int, int, str]] = []
    for _ in range(out.tensors):
        name = r.text("tensor name")
        n_dims = r.scalar("I", f"dimension count of {name!r}")
        if n_dims > MAX_DIMS:
            raise GGUFMalformed(f"tensor {name!r} has {n_dims} dimensions, more than {MAX_DIMS}")
        dims = [r.scalar("Q", f"dimension of {name!r}") for _ in range(n_dims)]
        kind, offset = r.scalar("I", f"type of {name!r}"), r.scalar("Q", f"offset of {name!r}")
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        except (ValueError, KeyError):
            raise GGUFMalformed(f"tensor {name!r} has unknown type {kind}") from None
        elements = 1
        for d in dims:
            elements *= d
        if dims and dims[0] % block:
            out.tensor_problems.append(f"tensor {name!r}: first dimension {dims[0]} is not a multiple of {block}")
            continue
        spans.append((offset, elements // block * type_size, name))
    alignment = out.ints.get("general.alignment", 32)
    if alignment <= 0 or alignment & (alignment - 1):
        raise GGUFMalformed(f"general.alignment {alignment} is not a power of two")
    data = -(-r.pos // alignment) * alignment
    room = r.size - data
    for offset, nbytes, name in spans:
        if offset % alignment:
            out.tensor_problems.append(f"tensor {name!r}: offset {offset} is not aligned to {alignment}")
        elif offset + nbytes > room:
            out.tensor_problems.append(
                f"tensor {name!r}: data [{offset}, {offset + nbytes}) lies past the end of the {room}-byte data section"
            )
