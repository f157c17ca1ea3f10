"""A total time limit for the synchronous transport: every socket operation waits at most until the deadline.

The async transport wraps a whole fetch in one cancel scope. Blocking sockets cannot be cancelled, and
httpcore gives each read its own timeout, so a server that sends its status line and headers one byte per
(timeout - epsilon) seconds held a synchronous fetch for hours: `timeout_s` was only checked between body
chunks. `DeadlineStream` wraps each connection's stream and shortens every read, write and TLS handshake
to the time left before the deadline of the request being served (`running`), which the transport sets
while it sends the request and while the caller reads the body.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore

#: monotonic deadline of the request this thread is serving (None: no limit)
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("owstack_egress_deadline", default=None)


class DeadlineExpired(httpcore.ReadTimeout):
    """The request's total time (`timeout_s`) ran out during a socket operation."""


@contextmanager
def running(deadline: float) -> Iterator[None]:
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def clamp(timeout: float | None) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExpired("egress: timeout_s reached")
    return left if timeout is None else min(timeout, left)


def _expired(exc: Exception) -> Exception:
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() >= deadline:
        return DeadlineExpired("egress: timeout_s reached")
    return exc


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._inner.read(max_bytes, clamp(timeout))
        except httpcore.ReadTimeout as exc:
            raise _expired(exc) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._inner.write(buffer, clamp(timeout))
        except httpcore.WriteTimeout as exc:
            raise _expired(exc) from None

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, clamp(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
