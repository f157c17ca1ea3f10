"""httpx transports that fetch only what the egress policy allows, from the address that was checked.

Each request (and so each redirect hop, which httpx sends as a new request) is checked with `check_url`;
the connection pool's network backend then connects only to the checked addresses of that host, so a DNS
answer that changes between the check and the connect (rebinding) cannot redirect the connection.
The pool stays keyed by host name, so the Host header, SNI and certificate checks use the name.
Responses are capped in size (`max_bytes`, on the bytes received *and* on the decoded body, which the
transport decodes itself with a ratio cap: `decoding`) and total time (`timeout_s`, from before the DNS
look-up to the last byte of the body).

The size caps count the body's payload; the bytes read from the socket are capped too (`WireBudget`), since
the framing around the payload is free to the sender: a chunk header may carry 100 KiB of chunk extensions
for one byte of payload, and a server may send interim (1xx) responses of 100 KiB each without end. The
head of a response (interim responses included) may take `HEAD_BYTES`, its body `max_bytes` plus
`max(max_bytes, 1 MiB)` of framing.

`clients.safe_client(policy)` wires the transport into an `httpx.AsyncClient`.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import anyio
import httpcore
import httpx

from owstack.security.egress import decoding
from owstack.security.egress.check import check_url, check_url_sync
from owstack.security.egress.deadline import DeadlineExpired, DeadlineStream, clamp, running
from owstack.security.egress.policy import EgressBlocked, EgressLimitExceeded, EgressPolicy
from owstack.security.egress.resolve import Resolver

#: (host, port) -> checked addresses, for the request being sent in this context
_PINS: contextvars.ContextVar[dict[tuple[str, int], tuple[str, ...]]] = contextvars.ContextVar("owstack_egress_pins")
#: what the socket may still deliver for the head of the response being awaited in this context
_HEAD: contextvars.ContextVar[WireBudget | None] = contextvars.ContextVar("owstack_egress_head", default=None)
#: bytes read from the socket for a response's status line, headers and interim (1xx) responses
HEAD_BYTES = 1024 * 1024


class WireLimit(httpcore.ReadError):
    """More bytes came from the socket than the response may take (framing, interim responses)."""


class WireBudget:
    """Bytes a connection may still deliver: for a response head (`_HEAD`, set by the transport while it
    awaits the response) or, once the head is in, for its body (set on the connection's stream)."""

    __slots__ = ("left", "what")

    def __init__(self, left: int, what: str) -> None:
        self.left, self.what = left, what

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise WireLimit(f"egress: {self.what}")


def _spend(body: WireBudget | None, data: bytes) -> bytes:
    budget = _HEAD.get() or body
    if budget is not None:
        budget.spend(len(data))
    return data


class _MeteredStream(httpcore.AsyncNetworkStream):
    """A connection's stream that charges every byte read to the current `WireBudget`."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self.body: WireBudget | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _spend(self.body, await self._inner.read(max_bytes, timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _MeteredStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _MeteredSyncStream(httpcore.NetworkStream):
    """The synchronous twin of `_MeteredStream`."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self.body: WireBudget | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _spend(self.body, self._inner.read(max_bytes, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _MeteredSyncStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _meter_body(response: httpcore.Response, policy: EgressPolicy) -> _MeteredStream | _MeteredSyncStream | None:
    """Give the body of `response` its wire budget: the payload cap plus as much again for framing."""
    stream = response.extensions.get("network_stream")
    if not isinstance(stream, _MeteredStream | _MeteredSyncStream):
        return None
    framing = max(policy.max_bytes, decoding.RATIO_FLOOR)
    stream.body = WireBudget(policy.max_bytes + framing, f"response framing exceeds max_bytes {policy.max_bytes}")
    return stream


def _head_budget() -> WireBudget:
    return WireBudget(HEAD_BYTES, f"response head (interim responses included) exceeds {HEAD_BYTES} bytes")


def _pinned(host: str, port: int) -> tuple[str, ...]:
    addresses = _PINS.get({}).get((host.lower(), port))
    if not addresses:
        raise httpcore.ConnectError(f"egress: refusing a connection to {host}:{port} that was not checked")
    return addresses


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses `SafeTransport` checked for this host, never to what DNS says now."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in _pinned(host, port):
            try:
                return _MeteredStream(
                    await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("egress: unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedSyncBackend(httpcore.NetworkBackend):
    """The synchronous twin of `PinnedBackend`."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in _pinned(host, port):
            try:
                stream = self._inner.connect_tcp(address, port, clamp(timeout), local_address, socket_options)
                return _MeteredSyncStream(DeadlineStream(stream))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("egress: unix sockets are not allowed")


def _map_error(exc: Exception, request: httpx.Request) -> Exception:
    """httpcore's exception as the httpx exception of the same name (what httpx's own transport does); a
    `WireLimit` as `EgressLimitExceeded`."""
    if isinstance(exc, WireLimit):
        return EgressLimitExceeded(str(exc), request=request)
    cls = getattr(httpx, type(exc).__name__, None)
    if isinstance(cls, type) and issubclass(cls, httpx.TransportError):
        return cls(str(exc), request=request)
    return exc


def _core_request(request: httpx.Request, timeout_s: float) -> httpcore.Request:
    extensions = dict(request.extensions)
    timeouts = dict(extensions.get("timeout") or {})
    for key in ("connect", "read", "write", "pool"):
        given = timeouts.get(key)
        timeouts[key] = timeout_s if given is None else min(given, timeout_s)
    extensions["timeout"] = timeouts
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=[(n, v) for n, v in request.headers.raw if n.lower() != b"accept-encoding"]
        + [(b"Accept-Encoding", decoding.ACCEPT_ENCODING)],
        content=request.stream,
        extensions=extensions,
    )


def _pin_key(request: httpx.Request) -> tuple[str, int]:
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    return request.url.raw_host.decode("ascii").lower(), port


def _check_length(response: httpcore.Response, policy: EgressPolicy, request: httpx.Request) -> None:
    for name, value in response.headers:
        if name.lower() == b"content-length" and value.isdigit() and int(value) > policy.max_bytes:
            raise EgressLimitExceeded(
                f"egress: response of {int(value)} bytes exceeds max_bytes {policy.max_bytes}",
                request=request,
            )


def _decoder(headers: list[tuple[bytes, bytes]], policy: EgressPolicy, request: httpx.Request) -> Any:
    """A bounded decoder for the response's content codings (None when it has none)."""
    applied = decoding.codings(headers)
    if not applied:
        return None
    try:
        return decoding.BoundedDecoder(applied, policy.max_bytes, policy.max_ratio)
    except decoding.DecodeLimit as exc:
        raise EgressLimitExceeded(f"egress: {exc}", request=request) from None


def _decoded(decoder: Any, chunk: bytes | None, request: httpx.Request) -> bytes:
    """`chunk` through the decoder (None: the end of the body)."""
    try:
        return decoder.finish() if chunk is None else decoder.decode(chunk)
    except decoding.DecodeLimit as exc:
        if exc.limit:
            raise EgressLimitExceeded(f"egress: {exc}", request=request) from None
        raise httpx.DecodingError(f"egress: {exc}", request=request) from None


class _Capped:
    """What the async and sync capped body streams share: the request's limits and the connection's meter."""

    def __init__(
        self,
        inner: Any,
        policy: EgressPolicy,
        deadline: float,
        request: httpx.Request,
        decoder: Any = None,
        wire: _MeteredStream | _MeteredSyncStream | None = None,
    ) -> None:
        self._inner, self._policy, self._deadline, self._request = inner, policy, deadline, request
        self._decoder, self._wire = decoder, wire

    def _done(self) -> None:
        """The body is in: the connection's next response gets its own budgets."""
        if self._wire is not None:
            self._wire.body = None


class _CappedAsyncStream(_Capped, httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        iterator = self._inner.__aiter__()
        while True:
            try:
                with anyio.fail_after(max(0.0, self._deadline - time.monotonic())):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                self._done()
                if self._decoder is not None and (tail := _decoded(self._decoder, None, self._request)):
                    yield tail
                return
            except TimeoutError:
                raise EgressLimitExceeded(
                    f"egress: response took longer than timeout_s {self._policy.timeout_s}",
                    request=self._request,
                ) from None
            except httpcore.TimeoutException as exc:
                raise _map_error(exc, self._request) from None
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:  # as httpx's own transport maps them
                raise _map_error(exc, self._request) from None
            total += len(chunk)
            if total > self._policy.max_bytes:
                raise EgressLimitExceeded(
                    f"egress: response exceeds max_bytes {self._policy.max_bytes}", request=self._request
                )
            yield chunk if self._decoder is None else _decoded(self._decoder, chunk, self._request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class SafeTransport(httpx.AsyncBaseTransport):
    """An httpx transport that enforces an `EgressPolicy` on every request it sends.

    `resolver` answers DNS for the checks (default: the system's). `network_backend` opens the TCP
    connections to the pinned addresses (default: httpcore's AnyIO backend); tests pass one that routes a
    reserved address to a loopback server. `ssl_context` verifies servers (default: httpx's).
    """

    def __init__(
        self,
        policy: EgressPolicy | None = None,
        resolver: Resolver | None = None,
        *,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
    ) -> None:
        self.policy = policy or EgressPolicy()
        self.resolver = resolver
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            network_backend=PinnedBackend(network_backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.policy.timeout_s  # the look-up counts against the total
        decision = await check_url(str(request.url), self.policy, self.resolver)
        if not decision.allowed:
            raise EgressBlocked(decision, request=request)
        token = _PINS.set({_pin_key(request): decision.addresses})
        head = _HEAD.set(_head_budget())
        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                response = await self._pool.handle_async_request(_core_request(request, self.policy.timeout_s))
        except TimeoutError:
            raise EgressLimitExceeded(
                f"egress: no response within timeout_s {self.policy.timeout_s}", request=request
            ) from None
        except httpcore.ConnectError as exc:
            raise _map_error(exc, request) from None
        except (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
        ) as exc:
            raise _map_error(exc, request) from None
        finally:
            _HEAD.reset(head)
            _PINS.reset(token)
        try:
            _check_length(response, self.policy, request)
            decoder = _decoder(response.headers, self.policy, request)
        except EgressLimitExceeded:
            await response.aclose()
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers if decoder is None else decoding.without_encoding(response.headers),
            stream=_CappedAsyncStream(
                response.stream, self.policy, deadline, request, decoder, _meter_body(response, self.policy)
            ),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _CappedSyncStream(_Capped, httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        total = 0
        chunks = iter(self._inner)
        try:
            while True:
                with running(self._deadline):
                    chunk = next(chunks, None)
                if chunk is None:
                    self._done()
                    break
                total += len(chunk)
                if total > self._policy.max_bytes:
                    raise EgressLimitExceeded(
                        f"egress: response exceeds max_bytes {self._policy.max_bytes}", request=self._request
                    )
                if time.monotonic() > self._deadline:
                    raise EgressLimitExceeded(
                        f"egress: response took longer than timeout_s {self._policy.timeout_s}",
                        request=self._request,
                    )
                yield chunk if self._decoder is None else _decoded(self._decoder, chunk, self._request)
            if self._decoder is not None and (tail := _decoded(self._decoder, None, self._request)):
                yield tail
        except DeadlineExpired:
            raise EgressLimitExceeded(
                f"egress: response took longer than timeout_s {self._policy.timeout_s}", request=self._request
            ) from None
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _map_error(exc, self._request) from None

    def close(self) -> None:
        self._inner.close()


class SafeSyncTransport(httpx.BaseTransport):
    """The synchronous twin of `SafeTransport`. Its connections' sockets wait at most until the request's
    deadline (`deadline.DeadlineStream`), so `timeout_s` bounds the headers and the body in total."""

    def __init__(
        self,
        policy: EgressPolicy | None = None,
        resolver: Resolver | None = None,
        *,
        network_backend: httpcore.NetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
    ) -> None:
        self.policy = policy or EgressPolicy()
        self.resolver = resolver
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            network_backend=PinnedSyncBackend(network_backend),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.policy.timeout_s
        decision = check_url_sync(str(request.url), self.policy, self.resolver)
        if not decision.allowed:
            raise EgressBlocked(decision, request=request)
        token = _PINS.set({_pin_key(request): decision.addresses})
        head = _HEAD.set(_head_budget())
        try:
            with running(deadline):
                response = self._pool.handle_request(_core_request(request, self.policy.timeout_s))
        except DeadlineExpired:
            raise EgressLimitExceeded(
                f"egress: no response within timeout_s {self.policy.timeout_s}", request=request
            ) from None
        except (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
        ) as exc:
            raise _map_error(exc, request) from None
        finally:
            _HEAD.reset(head)
            _PINS.reset(token)
        try:
            _check_length(response, self.policy, request)
            decoder = _decoder(response.headers, self.policy, request)
        except EgressLimitExceeded:
            response.close()
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers if decoder is None else decoding.without_encoding(response.headers),
            stream=_CappedSyncStream(
                response.stream, self.policy, deadline, request, decoder, _meter_body(response, self.policy)
            ),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
