"""A lean HTTP/1.1 client for upstream model servers: pooled keep-alive connections, streaming bodies.

Why not httpx or aiohttp here: the gateway's own overhead is a product feature, and a general-purpose
client spends more per request than the whole rest of the hot path. This one does only what an upstream
call needs: one POST or GET, `Content-Length` or chunked responses (parsed by `httptools`, the parser
uvicorn uses), connect and read timeouts, TLS, and abort-on-cancel so that an upstream stops generating
when its client goes away. Everything else (proxies, cookies, HTTP/2, redirects) is out of scope on purpose.

    pool = Pool("http://10.0.0.5:8000", max_connections=256)
    resp = await pool.request("POST", "/v1/chat/completions", body, headers, timeouts)
    resp.status, resp.headers          # available once the status line and headers arrived
    await resp.read()                  # the whole body, or:
    async for piece in resp.iter_bytes(): ...
    await resp.aclose()                # returns the connection to the pool, or aborts it mid-body
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 1 << 20  # pause reading from the upstream when this much body is buffered


class ConnectError(Exception):
    """The connection could not be opened."""


class ReadTimeout(Exception):
    """No byte arrived within the read timeout."""


class ConnectionDropped(Exception):
    """The upstream closed the connection before the response was complete."""


class ProtocolError(Exception):
    """The upstream's bytes are not HTTP."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 120.0


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one response in flight."""

    __slots__ = (
        "_parser",
        "_pending_headers",
        "body",
        "closed",
        "complete",
        "error",
        "headers",
        "keep_alive",
        "paused",
        "reused",
        "status",
        "transport",
        "waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self._pending_headers = False
        self.body: collections.deque[bytes] = collections.deque()
        self.complete = False
        self.keep_alive = True
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed HTTP response: {exc}"))
            self.abort()
            return
        if (
            self.status
            and not self.complete
            and self.transport is not None
            and not self.paused
            and sum(len(b) for b in self.body) > _HIGH_WATER
        ):
            self.transport.pause_reading()
            self.paused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(ConnectionDropped("upstream closed the connection" + (f": {exc}" if exc else "")))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # helpers
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def wait(self, timeout: float) -> None:
        """Wait for the next parser event (headers, body piece, end) or an error."""
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout(f"no data from upstream for {timeout:g}s"))


class Response:
    __slots__ = ("_conn", "_pool", "_released", "_timeouts", "headers", "status")

    def __init__(self, pool: Pool, conn: _Conn, timeouts: Timeouts) -> None:
        self._pool = pool
        self._conn = conn
        self._timeouts = timeouts
        self._released = False
        self.status = conn.status
        self.headers = conn.headers

    async def iter_bytes(self) -> collections.abc.AsyncIterator[bytes]:
        conn = self._conn
        while True:
            while conn.body:
                yield conn.body.popleft()
            if conn.complete:
                return
            conn.resume()
            await conn.wait(self._timeouts.read)

    async def read(self) -> bytes:
        parts = [piece async for piece in self.iter_bytes()]
        await self.aclose()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def aclose(self) -> None:
        """Give the connection back if the response was read to its end, otherwise abort it."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.complete and conn.keep_alive and not conn.closed and conn.error is None:
            self._pool._release(conn)
        else:
            conn.abort()
            self._pool._discard(conn)


class Pool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 256,
        verify: bool | ssl.SSLContext = True,
        address: str | None = None,
    ) -> None:
        """`address`: connect there instead of resolving the URL's host (an address the caller checked, e.g.
        against the egress policy, so that no later DNS answer can move the connection); the Host header
        and TLS still name the host."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.address = address or parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        default_port = (parts.scheme == "https" and self.port == 443) or (parts.scheme == "http" and self.port == 80)
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host_header if default_port else f"{host_header}:{self.port}"
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
            if verify is False:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self.max_connections = max_connections
        self._idle: collections.deque[_Conn] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeouts: Timeouts = Timeouts(),
    ) -> Response:
        """Send one request (`path` is absolute: include `base_path` yourself) and return once the status
        line and headers arrived."""
        head = self._head(method, path, body, headers)
        for attempt in (0, 1):
            conn = await self._acquire(timeouts)
            reused = conn.reused
            conn._reset()
            assert conn.transport is not None
            conn.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                conn.transport.write(body)
            try:
                while not conn.status:
                    await conn.wait(timeouts.read)
            except ConnectionDropped:
                conn.abort()
                self._discard(conn)
                if reused and attempt == 0:
                    continue  # an idle connection the server had closed: safe to resend once
                raise
            except BaseException:
                conn.abort()
                self._discard(conn)
                raise
            return Response(self, conn, timeouts)
        raise AssertionError("unreachable")

    def _head(self, method: str, path: str, body: bytes, headers: dict[str, str] | None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}"]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        if headers:
            lines.extend(f"{k}: {v}" for k, v in headers.items())
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")

    async def _acquire(self, timeouts: Timeouts) -> _Conn:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                    conn.reused = True
                    return conn
                self._open -= 1
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(timeouts)
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeouts.connect)
            except TimeoutError:
                raise ConnectError(
                    f"no free connection to {self.host}:{self.port} within {timeouts.connect:g}s"
                ) from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(self, timeouts: Timeouts) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Conn,
                    self.address,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                ),
                timeouts.connect,
            )
        except TimeoutError:
            raise ConnectError(f"connect to {self.host}:{self.port} timed out after {timeouts.connect:g}s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return conn

    def _release(self, conn: _Conn) -> None:
        if self._closed:
            conn.abort()
            self._open -= 1
            return
        self._idle.append(conn)
        self._wake_one()

    def _discard(self, conn: _Conn) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().abort()
            self._open -= 1
