"""Content-Encoding decoded inside the egress transport, with the size and ratio limits applied to the
decoded bytes.

httpx decodes `Content-Encoding` above the transport, so a cap on the bytes read from the socket says
nothing about what the caller receives: a 273-byte response encoded `gzip, gzip` expands to 64 MiB. The
transport therefore asks only for the codings it can bound (`gzip`, `deflate`), decodes every layer
here with an output cap of the bytes still allowed (`max_bytes`) plus a ratio cap (decoded / received,
once past `RATIO_FLOOR`), and hands httpx the decoded body with the `Content-Encoding` and
`Content-Length` headers removed. A coding it cannot bound (`br`, `zstd`, `compress`, unknown) is refused.
"""

from __future__ import annotations

import zlib
from typing import Any

ACCEPT_ENCODING = b"gzip, deflate"
RATIO_FLOOR = 1024 * 1024
_SUPPORTED = {"gzip": 31, "x-gzip": 31, "deflate": 15}


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

    def feed(self, data: bytes, budget: int) -> bytes:
        try:
            out = self.engine.decompress(data, budget + 1)
        except zlib.error:
            if self.coding == "deflate" and not self.started:  # raw deflate without the zlib wrapper
                self.engine, self.coding = zlib.decompressobj(-15), "raw-deflate"
                return self.feed(data, budget)
            raise DecodeLimit(f"{self.coding} body is corrupt", limit=False) from None
        self.started = True
        if len(out) > budget:
            raise DecodeLimit("decoded body exceeds max_bytes", limit=True)
        return bytes(out)

    def flush(self, budget: int) -> bytes:
        out = self.engine.flush()
        if len(out) > budget:
            raise DecodeLimit("decoded body exceeds max_bytes", limit=True)
        return bytes(out)


class BoundedDecoder:
    """Undo every content coding of one response, never producing more than `max_bytes` in all."""

    def __init__(self, applied: list[str], max_bytes: int, max_ratio: float) -> None:
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
