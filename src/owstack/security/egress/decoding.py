"""Content-Encoding decoded inside the egress transport, with the size and ratio limits applied to the
decoded bytes.

httpx decodes `Content-Encoding` above the transport, so a cap on the bytes read from the socket says
nothing about what the caller receives: a 273-byte response encoded `gzip, gzip` expands to 64 MiB. The
transport therefore asks only for the codings it can bound (`gzip`, `deflate`), decodes every layer
here with an output cap of the bytes still allowed (`max_bytes`) plus a ratio cap (decoded / received,
once past `RATIO_FLOOR`), and hands httpx the decoded body with the `Content-Encoding` and
`Content-Length` headers removed. A coding it cannot bound (`br`, `zstd`, `compress`, unknown) is refused.

A gzip body may hold several members one after the other (RFC 1952 section 2.2): every member is decoded,
under the same limits (an empty member is 20 bytes, so their number is bounded by the bytes received);
bytes after the last member that do not start another one (padding, trailing garbage) are ignored, as
urllib3 and other gzip clients do. More than `MAX_CODINGS` codings in one response are refused: each
layer keeps a 32 KiB window, so a 100 KiB `Content-Encoding: gzip, gzip, ...` header over a body nested
that deep held hundreds of MiB (curl CVE-2022-32206 and CVE-2023-23916, urllib3 CVE-2025-66418: the same limit of five,
counted over all `Content-Encoding` headers together).
"""

from __future__ import annotations

import zlib
from typing import Any

ACCEPT_ENCODING = b"gzip, deflate"
RATIO_FLOOR = 1024 * 1024
#: the most content codings one response may stack (curl's and urllib3's limit)
MAX_CODINGS = 5
_SUPPORTED = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_MEMBERS = {"gzip", "x-gzip"}
_GZIP_MAGIC = b"\x1f\x8b"
_WINDOW = 4096


class DecodeLimit(ValueError):
    """The body breaks a limit (`limit` true) or cannot be decoded (`limit` false)."""

    def __init__(self, message: str, *, limit: bool) -> None:
        super().__init__(message)
        self.limit = limit


def codings(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The content codings of a response, in the order they were applied (identity dropped)."""
    out: list[str] = []
    for name, value in headers:
        if name.lower() == b"content-encoding":
            out += [c.strip().lower() for c in value.decode("latin-1").split(",") if c.strip()]
    return [c for c in out if c != "identity"]


class _Layer:
    def __init__(self, coding: str) -> None:
        if coding not in _SUPPORTED:
            raise DecodeLimit(f"content-encoding {coding!r} cannot be decoded within limits", limit=False)
        self.coding = coding
        self.engine: Any = zlib.decompressobj(_SUPPORTED[coding])
        self.started = False
        self.members = coding in _MEMBERS  # gzip: another member may follow the end of one
        self.pending = b""  # the first byte of what follows a gzip member, until the second one arrives
        self.ended = False  # the coded stream is over: whatever follows is ignored

    def feed(self, data: bytes, budget: int) -> bytes:
        out = bytearray()
        view, pos = memoryview(self.pending + data), 0
        self.pending = b""
        if self.coding == "deflate" and not self.started:  # zlib-wrapped or raw: told by the first 2 bytes
            if len(view) < 2:
                self.pending = bytes(view)
                return b""
            cmf, flg = view[0], view[1]
            if cmf & 0x0F != 8 or (cmf * 256 + flg) % 31:
                self.engine, self.coding = zlib.decompressobj(-15), "raw-deflate"
        while pos < len(view) and not self.ended:
            if self.engine.eof:  # a gzip member ended: another follows only if the gzip magic does
                if len(view) - pos < 2:
                    self.pending = bytes(view[pos:])
                    break
                if view[pos : pos + 2] != _GZIP_MAGIC:
                    self.ended = True
                    break
                self.engine = zlib.decompressobj(_SUPPORTED[self.coding])
            piece = view[pos : pos + _WINDOW]  # small pieces: `unused_data` copies what is left of one
            try:
                got = self.engine.decompress(piece, budget - len(out) + 1)
            except zlib.error:
                raise DecodeLimit(f"{self.coding} body is corrupt", limit=False) from None
            self.started = True
            out += got
            if len(out) > budget:
                raise DecodeLimit("decoded body exceeds max_bytes", limit=True)
            pos += len(piece) - len(self.engine.unused_data)
            if self.engine.eof and not self.members:
                self.ended = True  # deflate: one stream per body, the rest is ignored
        return bytes(out)

    def flush(self, budget: int) -> bytes:
        out = self.engine.flush()
        if len(out) > budget:
            raise DecodeLimit("decoded body exceeds max_bytes", limit=True)
        return bytes(out)


class BoundedDecoder:
    """Undo every content coding of one response, never producing more than `max_bytes` in all."""

    def __init__(self, applied: list[str], max_bytes: int, max_ratio: float) -> None:
        if len(applied) > MAX_CODINGS:
            raise DecodeLimit(
                f"{len(applied)} content codings stacked (at most {MAX_CODINGS}): each holds its own window",
                limit=True,
            )
        self.layers = [_Layer(c) for c in reversed(applied)]
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.received = 0
        self.produced = 0

    def _run(self, data: bytes, final: bool) -> bytes:
        for layer in self.layers:
            budget = self.max_bytes - self.produced
            data = layer.feed(data, budget) if data else b""
            if final:
                data += layer.flush(budget - len(data))
        return data

    def _account(self, out: bytes) -> bytes:
        self.produced += len(out)
        if self.produced > self.max_bytes:
            raise DecodeLimit("decoded body exceeds max_bytes", limit=True)
        if self.produced > RATIO_FLOOR and self.produced > self.max_ratio * max(self.received, 1):
            raise DecodeLimit(
                f"decoded body is more than {self.max_ratio:g} times the bytes received (compression bomb)",
                limit=True,
            )
        return out

    def decode(self, chunk: bytes) -> bytes:
        self.received += len(chunk)
        return self._account(self._run(chunk, final=False))

    def finish(self) -> bytes:
        return self._account(self._run(b"", final=True))


def without_encoding(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers of the decoded body: no Content-Encoding, no (now wrong) Content-Length."""
    return [(n, v) for n, v in headers if n.lower() not in (b"content-encoding", b"content-length")]
