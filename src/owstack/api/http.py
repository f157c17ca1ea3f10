"""The few ASGI helpers the gateway needs: read a bounded (and maybe compressed) body, send JSON, send an error."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from owstack.errors import InvalidRequest, OwstackError, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def header_dict(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


#: set in the scope by the HTTP server (api/server.py) when it gave up waiting for the body: the disconnect the
#: application then sees is that timeout, answered 408 by the server itself
BODY_TIMED_OUT = "owstack.body_timed_out"
#: content codings a request body may use (RFC 9110 8.4); zlib's window bits for each
_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def body_reader(scope: Scope, receive: Receive, limit: int) -> Callable[[], Awaitable[bytes]]:
    """The request body, at most `limit` bytes (after decompression for a gzip or deflate body)."""

    async def read() -> bytes:
        coding = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidRequest("Content-Length is not a number") from None
                if declared > limit:
                    raise PayloadTooLarge(f"the request body is {declared} bytes; the limit is {limit} bytes")
            elif name == b"content-encoding":
                coding = value
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if scope.get(BODY_TIMED_OUT):
                    raise RequestTimeout("the request's body stopped arriving; the connection was closed")
                raise InvalidRequest("the client closed the connection before sending the whole body")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return decode(body, coding, limit) if coding else body

    return read


def decode(body: bytes, coding: bytes, limit: int) -> bytes:
    """A body sent with `Content-Encoding`: gzip and deflate are inflated (to at most `limit` bytes, so that a
    small bomb cannot expand without bound); any other coding is a 415."""
    name = coding.decode("latin-1").strip().lower()
    if name == "identity":
        return body
    bits = _CODINGS.get(name)
    if bits is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {name!r} is not supported; send the body as is, or gzip or deflate it",
            code="unsupported_content_encoding",
        )
    inflater = zlib.decompressobj(bits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"the request body is not valid {name} data: {exc}", code="invalid_encoding") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the request body inflates to over the limit of {limit} bytes")
    if not inflater.eof or inflater.unused_data:
        raise InvalidRequest(
            f"the request body's {name} data is truncated or followed by more", code="invalid_encoding"
        )
    return out


def error_headers(error: OwstackError, headers: Headers) -> Headers:
    """Headers of an error response: the challenge of a 401, and `connection: close` when the request's body
    may be left unread (408, 413), so that it is not parsed as the connection's next request."""
    out = list(headers)
    if error.status == 401:
        out.append((b"www-authenticate", b'Bearer realm="owstack"'))
    elif error.status in (408, 413):
        out.append((b"connection", b"close"))
    return out


async def send_json(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON_TYPE, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: OwstackError, headers: Headers) -> None:
    await send_json(send, error.status, orjson.dumps(error.body()), error_headers(error, headers))
