"""The HTTP server's protection of the gateway: uvicorn's httptools protocol with connection limits.

    raise_fd_limit()                     soft RLIMIT_NOFILE up to the hard limit (once, before listening)
    uvicorn.run(..., http=GuardedHttpToolsProtocol, timeout_keep_alive=limits.idle_timeout_s)

Per connection, on top of uvicorn's own protocol (`server.limits`, api/limits.py):

* admission: a new connection is answered `503` with `connection: close` (and closed) when the process
  already holds `max_connections` (lowered to what the file limit allows, less `fd_reserve` and the
  descriptors open at start), or its client address `max_connections_per_client`: the descriptors the audit
  log, the ledger and the upstream pools need are never taken by clients;
* header timeout: a request's whole header must arrive within `header_timeout_s` of its first byte (of the
  connection's opening for the first request); a silent or slow client gets `408` and is closed. One sweep
  per quarter of the timeout checks every waiting connection (a request costs a dict insert and delete,
  not a timer of its own);
* body timeout: a request's body may pause `body_timeout_s` at most (408, closed; the request waiting for it
  ends as a 408); send timeout: a client that reads nothing of a response for `send_timeout_s` is dropped
  (the request ends as abandoned and frees its backend slot);
* head size: a request line or header fields over `max_header_bytes` are 414/431 (an incomplete head is
  counted as it arrives); what the parser refuses is a JSON 400 saying why, in the API's shape;
* idle timeout: uvicorn's keep-alive timeout (`idle_timeout_s`) closes connections with nothing in flight;
* shutdown: idle kept-alive connections linger a second, answering at most one more request (with
  `connection: close`), instead of being cut under a request a load balancer is sending;
* PROXY protocol (`server.proxy_protocol`, `ProxiedHttpToolsProtocol`, api/proxy.py): a connection from a
  trusted proxy names its client in a header read before HTTP; the per-client cap and the request's client
  are that client's. The probe listener (api/probes.py) is apart, and `max_connections` leaves it room.

The limits are read from the gateway the server runs (its `config.file.server.limits`), found through the
loaded ASGI app; the counts live on uvicorn's per-process `ServerState`. Refusals and timeouts are counted
there (`Guard.refused`, `Guard.timed_out`) and logged at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from owstack.api.answers import answer, parse_problem
from owstack.api.http import BODY_TIMED_OUT
from owstack.api.limits import ServerLimits
from owstack.api.probes import probe_fds
from owstack.api.proxy import BadHeader, Trusted, looks_like, parse

log = logging.getLogger("owstack.server")


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose head is over `max_header_bytes`."""


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one (the default soft 1,024 is what ran out); the
    limits after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft, hard


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


class Guard:
    """The process's connection accounting (one per uvicorn `ServerState`)."""

    def __init__(
        self,
        limits: ServerLimits,
        *,
        fd_soft: int,
        fds_at_start: int,
        trusted: Trusted | None = None,
        probe_fds: int = 0,
    ) -> None:
        self.limits = limits
        #: `server.trusted_proxies`: the peers whose PROXY header is read (ProxiedHttpToolsProtocol)
        self.trusted = trusted if trusted is not None else Trusted(())
        # the probe listener's connections (api/probes.py) come out of the clients' share, never the reserve
        by_fds = fd_soft - limits.fd_reserve - fds_at_start - probe_fds
        self.max_connections = max(1, min(limits.max_connections, by_fds))
        if by_fds < limits.max_connections:
            log.info(
                "server: at most %d connections (the open-file limit %d, less %d reserved and %d open)",
                self.max_connections,
                fd_soft,
                limits.fd_reserve,
                fds_at_start,
            )
        self.per_client: dict[str, int] = {}
        #: connections waiting for a request's header, and when it is due (the loop's clock)
        self.waiting: dict[GuardedHttpToolsProtocol, float] = {}
        #: connections waiting for the rest of a request's body, and when its last piece arrived
        self.bodies: dict[GuardedHttpToolsProtocol, float] = {}
        #: connections whose client reads nothing of the response (writing paused), and since when
        self.stalled: dict[GuardedHttpToolsProtocol, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        self._logged_at = 0.0

    def admit(self, client: str | None) -> str | None:
        """Count a new connection in, or say why it is refused. `client` None: its client is not known yet
        (a PROXY header will say), only the total is checked; `admit_client` counts it once known."""
        if self.open >= self.max_connections:
            return self.refuse(f"the gateway holds its maximum of {self.max_connections} connections")
        if client is not None:
            refused = self.admit_client(client)
            if refused is not None:
                return refused
        self.open += 1
        return None

    def admit_client(self, client: str) -> str | None:
        held = self.per_client.get(client, 0)
        if held >= self.limits.max_connections_per_client:
            return self.refuse(f"client {client} holds {held} connections, its maximum")
        self.per_client[client] = held + 1
        return None

    def release(self, client: str | None) -> None:
        self.open -= 1
        if client is None:
            return
        held = self.per_client.get(client, 0) - 1
        if held > 0:
            self.per_client[client] = held
        else:
            self.per_client.pop(client, None)

    def expect_header(self, protocol: GuardedHttpToolsProtocol) -> None:
        loop = protocol.loop
        self.waiting[protocol] = loop.time() + self.limits.header_timeout_s
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._interval(), self._sweep, loop)

    def expect_body(self, protocol: GuardedHttpToolsProtocol) -> None:
        """A request's header arrived and its body has yet to (called again for each piece of it)."""
        loop = protocol.loop
        self.bodies[protocol] = loop.time()
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._interval(), self._sweep, loop)

    def expect_reader(self, protocol: GuardedHttpToolsProtocol) -> None:
        """The client stopped reading (the transport paused writing)."""
        loop = protocol.loop
        self.stalled[protocol] = loop.time()
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._interval(), self._sweep, loop)

    def _interval(self) -> float:
        limits = self.limits
        return max(0.05, min(limits.header_timeout_s, limits.body_timeout_s, limits.send_timeout_s) / 4)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = [p for p, due in self.waiting.items() if due <= now]
        for protocol in late:
            self.waiting.pop(protocol, None)
            protocol.header_timed_out()
        since = now - self.limits.body_timeout_s
        for protocol in [p for p, last in self.bodies.items() if last <= since]:
            if protocol.body_held_up():  # the gateway, not the client, is why no more body arrived
                self.bodies[protocol] = now
                continue
            self.bodies.pop(protocol, None)
            protocol.body_timed_out()
        since = now - self.limits.send_timeout_s
        for protocol in [p for p, paused in self.stalled.items() if paused <= since]:
            self.stalled.pop(protocol, None)
            protocol.send_timed_out()
        busy = self.waiting or self.bodies or self.stalled
        self._sweeper = loop.call_later(self._interval(), self._sweep, loop) if busy else None

    def refuse(self, why: str, what: str = "refusing new connections") -> str:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= 60.0:
            self._logged_at = now
            log.warning("server: %s: %s (%d refused so far)", what, why, self.refused)
        return why


def guard_of(protocol: HttpToolsProtocol) -> Guard:
    """The process's guard, made on the first connection from the gateway's own config."""
    state = protocol.server_state
    guard: Guard | None = getattr(state, "owstack_guard", None)
    if guard is None:
        server = _server_of(protocol.app)
        limits = server.limits if server is not None else ServerLimits()
        guard = Guard(
            limits,
            fd_soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            fds_at_start=open_fds(),
            trusted=Trusted(server.trusted_proxies if server is not None else ()),
            probe_fds=probe_fds(server.probe_port if server is not None else None),
        )
        state.owstack_guard = guard  # type: ignore[attr-defined]
    return guard


def _server_of(app: Any) -> Any:
    """The `server` section of the gateway uvicorn serves: found through uvicorn's middleware (`.app`) and
    owstack's reloadable wrapper (`.gateway`, api/app.py). None, with a warning, for any other app (the
    limits are then the defaults)."""
    todo, seen = [app], 0
    while todo and seen < 16:
        obj = todo.pop()
        seen += 1
        server = getattr(getattr(getattr(obj, "config", None), "file", None), "server", None)
        if isinstance(getattr(server, "limits", None), ServerLimits):
            return server
        todo += [inner for inner in (getattr(obj, "app", None), getattr(obj, "gateway", None)) if inner is not None]
    log.warning("server: no owstack gateway found in the served app; connection limits are the defaults")
    return None


#: how long an idle kept-alive connection stays open once the server shuts down (see `shutdown`)
SHUTDOWN_LINGER_S = 1.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with admission by connection counts and a header timeout."""

    _guard: Guard | None = None
    _admitted = False
    #: the client address the connection is counted under (None: not known yet, see ProxiedHttpToolsProtocol)
    _client_key: str | None = ""
    _closing: asyncio.TimerHandle | None = None
    #: bytes of a request head received so far while it is incomplete
    _head_bytes = 0
    #: what to answer instead of uvicorn's plain-text 400 when a parser callback stopped the request
    _refusal: tuple[int, str, str] | None = None

    @property
    def _url(self) -> bytes:
        """The request target so far: uvicorn sets `url` only once a request begins (a silent client's
        connection, or bytes the parser refused at once, have none)."""
        return getattr(self, "url", b"") or b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self._guard = guard_of(self)
        self._admit(guard, self.client[0] if self.client else "")

    def _admit(self, guard: Guard, client: str | None) -> None:
        self._client_key = client
        refused = guard.admit(client)
        if refused is not None:
            self._too_many(refused)
            return
        self._admitted = True
        guard.expect_header(self)

    def _too_many(self, refused: str) -> None:
        message = f"too many connections: {refused}; retry shortly"
        self.transport.write(answer(503, message, "too_many_connections", kind="server_error"))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closing is not None:
            self._closing.cancel()
        guard = self._guard
        if guard is not None:
            guard.waiting.pop(self, None)
            guard.bodies.pop(self, None)
            guard.stalled.pop(self, None)
            if self._admitted:
                self._admitted = False
                guard.release(self._client_key)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        guard = self._guard
        if guard is not None and self not in guard.waiting:  # a keep-alive connection's next request
            guard.expect_header(self)

    def data_received(self, data: bytes) -> None:
        guard = self._guard
        waiting = guard is not None and self in guard.waiting
        super().data_received(data)
        # A head still incomplete after this piece: its size so far (httptools buffers a header field until
        # it ends, so an endless one is stopped here rather than by the callbacks below). The piece that
        # began a request is not counted: it may end the previous request's body.
        if waiting and guard is not None and self in guard.waiting and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > guard.limits.max_header_bytes:
                self._refusal = self._too_large(len(self._url) > guard.limits.max_header_bytes)
                self.send_400_response("")

    def on_headers_complete(self) -> None:
        guard = self._guard
        if guard is not None:
            guard.waiting.pop(self, None)
            self._head_bytes = 0
            limit = guard.limits.max_header_bytes
            if len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) > limit:
                self._refusal = self._too_large(len(self.url) > limit)
                raise _HeadTooLarge
        super().on_headers_complete()
        if self._closing is not None and self.cycle is not None:  # shutting down: the connection's last one
            self.cycle.keep_alive = False
        if guard is not None and self.cycle is not None and self.cycle.more_body:
            guard.expect_body(self)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        guard = self._guard
        if guard is not None and self in guard.bodies:
            guard.bodies[self] = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._guard is not None:
            self._guard.bodies.pop(self, None)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._guard is not None:
            self._guard.expect_reader(self)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._guard is not None:
            self._guard.stalled.pop(self, None)

    def send_timed_out(self) -> None:
        """The client has read nothing for `send_timeout_s` while a response waits: drop the connection. The
        application sees a disconnect (the request ends as abandoned, its upstream call is cancelled), rather
        than holding its backend slot for as long as the client keeps the connection open."""
        if not self.flow.write_paused:
            return
        if self._guard is not None:
            self._guard.timed_out += 1
        self.transport.abort()  # not close(): that would wait for the buffer to drain, which it never does

    def _too_large(self, url: bool) -> tuple[int, str, str]:
        limit = self._guard.limits.max_header_bytes if self._guard is not None else 0
        if url:
            return 414, f"the request line is over {limit} bytes (server.limits.max_header_bytes)", "uri_too_long"
        return 431, f"the request's header is over {limit} bytes (server.limits.max_header_bytes)", "header_too_large"

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse (called in its `except HttpParserError:`), as JSON in
        the API's shape, with what the parser found wrong; or the limit a callback above found exceeded."""
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            refusal = (400, f"malformed HTTP request: {parse_problem(sys.exc_info()[1]) or msg}", "bad_http_request")
        status, message, code = refusal
        self.transport.write(answer(status, message, code, url=self._url))
        self.transport.close()

    def shutdown(self) -> None:
        """Graceful shutdown, the listener closed: a connection with a request in flight closes after its
        response (as in uvicorn). An idle kept-alive one is not cut at once, which races a request a load
        balancer may be sending on it (a POST it will not retry: a 502 for its client); it answers at most
        one more request, with `connection: close`, and closes after `SHUTDOWN_LINGER_S` if none comes. By
        then the balancer has found the listener closed (a refused connection, which it does retry) and
        stopped choosing this instance."""
        if self.cycle is None or self.cycle.response_complete:
            if self._closing is None:
                self._closing = self.loop.call_later(SHUTDOWN_LINGER_S, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def header_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered on this connection; its header did arrive
        if self._guard is not None:
            self._guard.timed_out += 1
        message = "the request's header did not arrive in time"
        self.transport.write(answer(408, message, "request_timeout", url=self._url, kind="server_error"))
        self.transport.close()

    def body_held_up(self) -> bool:
        """No body arrives because of the gateway: reading is paused (the application has not taken what came,
        or a pipelined request waits its turn), or the client waits for our `100 Continue`."""
        cycle = self.cycle
        return self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)

    def body_timed_out(self) -> None:
        """A request's body stopped arriving for `body_timeout_s`: 408 and close. The application, waiting
        for the body, sees a disconnect that the scope marks as this timeout (api/http.py says 408 too)."""
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        if cycle.response_started:  # answered without waiting for the body: this connection takes no more
            if cycle.response_complete:
                self.transport.close()
            else:
                cycle.keep_alive = False
            return
        if self._guard is not None:
            self._guard.timed_out += 1
        cycle.scope[BODY_TIMED_OUT] = True  # type: ignore[literal-required]
        cycle.disconnected = True
        cycle.message_event.set()
        message = "the request's body stopped arriving; send it whole within server.limits.body_timeout_s"
        self.transport.write(answer(408, message, "request_timeout", url=self._url))
        self.transport.close()


class ProxiedHttpToolsProtocol(GuardedHttpToolsProtocol):
    """The guarded protocol for `server.proxy_protocol: true` (owstack serve picks it; without the setting
    the plain one runs and pays nothing for this). A connection from a peer in `server.trusted_proxies`
    must begin with a PROXY header (v1 or v2, api/proxy.py), read before httptools sees a byte, within the
    header timeout: it is counted in the total at once, and under the client the header names once it
    has arrived (503 if that client holds its share); the request's `client` is that client (the audit
    log, the logs). Anything else from a trusted peer (plain HTTP included) closes the connection, and so
    does a PROXY header from any other peer (never trusted): both counted as refused. A peer that is not
    trusted is otherwise served as a direct client, its own address counted."""

    #: a trusted peer's PROXY header, as received so far (None: nothing more to read before HTTP)
    _preface: bytearray | None = None
    #: an untrusted peer's first bytes are yet to be checked for a PROXY header
    _sniff = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        HttpToolsProtocol.connection_made(self, transport)
        guard = self._guard = guard_of(self)
        peer = self.client[0] if self.client else ""
        if peer not in guard.trusted:
            self._sniff = True
            self._admit(guard, peer)
            return
        self._preface = bytearray()
        self._admit(guard, None)  # the total now; the client once its header names it

    def data_received(self, data: bytes) -> None:
        if self._preface is not None:
            data = self._read_preface(data)
            if not data:
                return
        elif self._sniff:
            self._sniff = False
            if looks_like(data):
                self._drop(f"a PROXY header from {self.client[0] if self.client else '?'}, not a trusted proxy")
                return
        super().data_received(data)

    def _read_preface(self, data: bytes) -> bytes:
        """The bytes after the PROXY header once it is complete (b"" until then, or once refused)."""
        buf = self._preface
        guard = self._guard
        if buf is None or guard is None or self.transport.is_closing():
            return b""
        buf += data
        try:
            parsed = parse(buf)
        except BadHeader as exc:
            self._drop(f"{exc} (from the trusted proxy {self.client[0] if self.client else '?'})")
            return b""
        if parsed is None:
            return b""
        used, source = parsed
        self._preface = None
        if source is not None:
            self.client = source
        client = self.client[0] if self.client else ""
        refused = guard.admit_client(client)
        if refused is not None:
            self._admitted = False
            guard.release(None)
            guard.waiting.pop(self, None)
            self._too_many(refused)
            return b""
        self._client_key = client
        return bytes(buf[used:])

    def _drop(self, why: str) -> None:
        self._preface = None
        if self._guard is not None:
            self._guard.refuse(why, "closed a connection")
        self.transport.close()

    def header_timed_out(self) -> None:
        if self._preface is None:
            super().header_timed_out()
            return
        if not self.transport.is_closing() and self._guard is not None:  # no PROXY header in time: no answer
            self._guard.timed_out += 1
            self._preface = None
            self.transport.close()
