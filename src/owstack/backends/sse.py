"""Server-sent events: an incremental reader for upstream streams and the writer for client streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

DONE = b"[DONE]"


async def iter_data(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield the `data` payload of each event (multi-line data joined by newlines; comments skipped)."""
    buffer = b""
    async for piece in pieces:
        buffer += piece
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            event, buffer = buffer[:end], buffer[end + 2 :]
            data = _data_of(event)
            if data is not None:
                yield data
    if buffer.strip():
        data = _data_of(buffer.strip(b"\n"))
        if data is not None:
            yield data


def _data_of(event: bytes) -> bytes | None:
    lines = [line for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    parts = [line[6:] if line.startswith(b"data: ") else line[5:] for line in lines]
    return parts[0] if len(parts) == 1 else b"\n".join(parts)


def event(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


DONE_EVENT = b"data: [DONE]\n\n"
