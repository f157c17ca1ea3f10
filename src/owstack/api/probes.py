"""The operations listener (`server.probe_port`): GET /healthz, /readyz and /metrics on a port of their own,
outside the public listener's connection caps, so that a flood of client connections cannot make the
liveness probe fail (and Kubernetes restart a gateway that was serving) nor hide the metrics that show it.
As Envoy's admin listener, Traefik's `ping` entry point and Kubernetes' own probe ports do.

    ProbeServer(app, host=..., port=..., header_timeout_s=..., reuse_port=...)   started and closed by
                                                                                    api/app.py's lifespan

The answers are the main listener's: a request is handed to the same application (`Served`: /readyz says 503
while draining; then the gateway's route table and handlers, api/admin.py), with the connection's own Host
header, client and server addresses. Nothing else is served here: another path is 404, another method 405.

A connection asks one request and is closed after its answer (`connection: close`; a kubelet probe opens a
connection per probe anyway). The listener protects itself, and the gateway's descriptors:

* at most `PROBE_MAX_CONNECTIONS` open at once (more: 503 and closed), with a listen backlog of
  `PROBE_BACKLOG`; the public listener's connection total is lowered by both (api/server.py, `probe_fds`), so
  probes never use `server.limits.fd_reserve`, the audit log's and the ledger's descriptors;
* the request's head (at most `PROBE_MAX_HEAD` bytes) must arrive within `PROBE_HEAD_TIMEOUT_S` (or
  `server.limits.header_timeout_s` if shorter); a connection is aborted `PROBE_LIFETIME_S` after it opened,
  whatever it is doing (a scraper that does not read its answer included).

With several workers (`--workers N`) each worker binds the probe port with SO_REUSEPORT, as they share the
main listener's socket: the kernel hands each probe to one of them, as it hands the main listener's
connections, and a worker that the supervisor restarts binds again. /metrics is the sum of every worker's
(each worker's answer is the same); /healthz and /readyz are the answering worker's, as on the main port.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from typing import Any, cast

from owstack.api.answers import answer

log = logging.getLogger("owstack.server")

#: connections the probe listener holds at most (a kubelet has one or two probes in flight, a scraper one)
PROBE_MAX_CONNECTIONS = 8
#: its listen backlog: connections the kernel queues before the gateway accepts them
PROBE_BACKLOG = 8
PROBE_HEAD_TIMEOUT_S = 2.0
PROBE_LIFETIME_S = 10.0
PROBE_MAX_HEAD = 8192
PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: headers the listener writes itself
_OWN_HEADERS = (b"content-length", b"connection")


def probe_fds(port: int | None) -> int:
    """Descriptors the probe listener may hold beside its socket (0: there is none)."""
    return 0 if port is None else PROBE_MAX_CONNECTIONS + PROBE_BACKLOG


class ProbeServer:
    def __init__(self, app: Any, *, host: str, port: int, header_timeout_s: float, reuse_port: bool) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.head_timeout_s = min(PROBE_HEAD_TIMEOUT_S, header_timeout_s)
        self.reuse_port = reuse_port
        self.open = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ProbeConnection(self),
            self.host.strip("[]"),
            self.port,
            backlog=PROBE_BACKLOG,
            reuse_port=self.reuse_port or None,
        )
        port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        log.info("probes on http://%s:%d (/healthz, /readyz, /metrics)", host, port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self.tasks):
            task.cancel()


class _ProbeConnection(asyncio.Protocol):
    def __init__(self, owner: ProbeServer) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.counted = False
        #: the request's head so far (None once it is in: one request per connection)
        self.head: bytearray | None = bytearray()
        self.timers: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.transport = transport
        owner = self.owner
        if owner.open >= PROBE_MAX_CONNECTIONS:
            owner.refused += 1
            message = f"the probe listener holds its maximum of {PROBE_MAX_CONNECTIONS} connections"
            transport.write(answer(503, message, "too_many_connections", kind="server_error"))
            transport.close()
            return
        owner.open += 1
        self.counted = True
        loop = asyncio.get_running_loop()
        self.timers = [
            loop.call_later(owner.head_timeout_s, self._head_timed_out),
            loop.call_later(PROBE_LIFETIME_S, transport.abort),
        ]

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self.timers:
            timer.cancel()
        if self.counted:
            self.counted = False
            self.owner.open -= 1

    def _head_timed_out(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            message = "the request's header did not arrive in time"
            self.transport.write(answer(408, message, "request_timeout", kind="server_error"))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or self.head is None:
            return
        head = self.head
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > PROBE_MAX_HEAD:
                transport.write(answer(431, "the request's header is too large", "header_too_large"))
                transport.close()
            return
        self.timers.pop(0).cancel()  # the head arrived
        transport.pause_reading()
        lines = bytes(head[:end]).split(b"\r\n")
        self.head = None
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            transport.write(answer(400, "malformed HTTP request", "bad_http_request"))
            transport.close()
            return
        method, target = parts[0], parts[1]
        path, _, query = target.partition(b"?")
        if path.decode("latin-1") not in PATHS:
            message = "the probe port serves GET /healthz, /readyz and /metrics only"
            transport.write(answer(404, message, "not_found", kind="not_found_error"))
            transport.close()
            return
        if method != b"GET":
            transport.write(answer(405, f"{path.decode()} takes GET", "method_not_allowed"))
            transport.close()
            return
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers.append((name.strip().lower(), value.strip()))
        task = asyncio.get_running_loop().create_task(self._answer(path, query, headers, parts[2]))
        self.owner.tasks.add(task)
        task.add_done_callback(self.owner.tasks.discard)

    async def _answer(self, path: bytes, query: bytes, headers: list[tuple[bytes, bytes]], version: bytes) -> None:
        transport = self.transport
        assert transport is not None
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version[5:].decode("latin-1"),
            "method": "GET",
            "scheme": "http",
            "path": path.decode("latin-1"),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": _address(transport.get_extra_info("peername")),
            "server": _address(transport.get_extra_info("sockname")),
            "state": {},
        }
        status, out, body = 500, [], bytearray()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, out
            if message["type"] == "http.response.start":
                status = message["status"]
                out = [(n, v) for n, v in message.get("headers", ()) if n.lower() not in _OWN_HEADERS]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await self.owner.app(scope, receive, send)
        except Exception:
            log.exception("probe %s failed", path.decode("latin-1"))
            with contextlib.suppress(Exception):
                transport.write(answer(500, f"{path.decode()} failed", "internal_error", kind="server_error"))
                transport.close()
            return
        try:
            reason = http.HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b"Status"
        head = [b"HTTP/1.1 %d %s" % (status, reason), *(n + b": " + v for n, v in out)]
        head += [b"content-length: %d" % len(body), b"connection: close", b"", b""]
        if not transport.is_closing():
            transport.write(b"\r\n".join(head) + body)
            transport.close()


def _address(value: Any) -> tuple[str, int] | None:
    return (str(value[0]), int(value[1])) if isinstance(value, tuple) and len(value) >= 2 else None
