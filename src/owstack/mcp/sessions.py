"""Streamable HTTP sessions (the 2025 revisions) as owstack sees them, beside the SDK's session manager.

The SDK's `StreamableHTTPSessionManager` opens, serves and closes sessions; owstack keeps its own record of
each so that the lean edge can serve a session's `tools/call` and `tools/list` without the SDK (owner,
negotiated revision), so that cancelling such a call reaches it, and so that list changes reach the
session's client. Every request that goes to the SDK passes `track`, which notes what it did:

    opened     an `initialize` without a session id that the SDK answered with one: the owner (the key),
               the revision the SDK negotiated and the session's channel for notifications (`Opening`,
               filled in by the server's middleware, `owstack.mcp.server`)
    used       busy while a request (or a GET stream) is in flight, last used when it ends
    closed     a DELETE the SDK accepted, or a 404 for the id

One id in flight at a time: JSON-RPC forbids a client to reuse the id of a request still in flight, and the
SDK's session transport keys each request's answer stream by its id (a second request with the id took the
first one's stream, and some of those POSTs were never answered). So a request whose id is in flight on its
session, on either path, is refused at once, before the SDK sees it: HTTP 400, JSON-RPC -32600 naming the id
(`in_flight`). Ids compare as the SDK correlates them (`coerce_request_id`: 7 and "7" are one id). An id is
held (`Hold`) until its answer goes out (a result, an error, a refusal; or its client is gone) and the
handler the SDK runs for it has returned (`hold_request_id`, the server's middleware: a client that leaves
does not cancel its call on a 2025 session, and the call's answer would otherwise be routed to a new request
with its id); a lean call holds it until the call is over.

Idle sessions are closed here (the SDK's own idle timer sees only the requests it serves, so it is off):
with nothing in flight for `idle_s`, the session is ended through the SDK with a DELETE of its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from mcp.shared.dispatcher import coerce_request_id
from mcp_types import INVALID_REQUEST

from owstack.api.http import Message, Receive, Scope, Send

log = logging.getLogger("owstack.mcp")
#: the ASGI scope key under which an `Opening` waits for the middleware
OPENING = "owstack.mcp.opening"
#: the ASGI scope key of a POST's JSON body as read (by the lean edge or `lean.checked_body`)
MESSAGE = "owstack.mcp.message"
#: the ASGI scope key of the `Hold` on a POST's request id, for the server's middleware
HOLD = "owstack.mcp.hold"
SESSION_HEADER = b"mcp-session-id"
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(slots=True)
class Opening:
    """What the server's middleware learns while the SDK serves an `initialize`."""

    peer: Any = None
    version: str | None = None
    #: the session is in owstack's record (`Sessions._opened`)
    recorded: bool = False


@dataclass(slots=True)
class LeanCall:
    """A request the lean edge serves on a session; `cancelled` once the client cancelled it."""

    task: asyncio.Task[Any]
    cancelled: bool = False


class Hold:
    """A request id held in flight on a session by a request the SDK serves: released once the POST's answer is
    complete or the POST has ended (`posted`) and no handler for it runs (`enter`/`leave`, the server's
    middleware)."""

    __slots__ = ("handlers", "key", "posting", "session")

    def __init__(self, session: Session, key: str) -> None:
        self.session, self.key = session, key
        self.posting = True
        self.handlers = 0

    def enter(self) -> None:
        self.handlers += 1

    def leave(self) -> None:
        self.handlers -= 1
        self._release()

    def posted(self) -> None:
        """The POST's answer is out (or the POST ended without one)."""
        self.posting = False
        self._release()

    def _release(self) -> None:
        if not self.posting and self.handlers <= 0 and self.session.inflight.get(self.key) is self:
            del self.session.inflight[self.key]


def request_key(message: Any) -> str | None:
    """The key under which a JSON-RPC request's id is held in flight; None for anything else (a notification,
    a response, an id that is not a string or an integer: the SDK refuses those itself)."""
    if not isinstance(message, dict) or "method" not in message:
        return None
    return id_key(message.get("id"))


def id_key(request_id: Any) -> str | None:
    """`request_key` of a request with this id."""
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    return str(coerce_request_id(request_id))


def answers(message: Message) -> bool:
    """A body chunk carries a JSON-RPC response (a result or an error; the SDK streams one SSE event a chunk),
    not a notification or a request of the server's (which name a `method`)."""
    chunk = bytes(message.get("body", b""))
    if b'"jsonrpc"' not in chunk:
        return False
    if b'"method"' not in chunk:
        return True
    for line in chunk.splitlines():  # "method" in the answer's content, or a notification: read it
        if line.startswith(b"data:"):
            try:
                found = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if isinstance(found, dict) and "method" not in found and ("result" in found or "error" in found):
                return True
    return False


def in_flight(request_id: Any) -> bytes:
    """The refusal of a request whose id is in flight on its session (JSON-RPC -32600, sent with HTTP 400)."""
    message = (
        f"request id {request_id!r} is already in flight on this session: "
        "JSON-RPC ids must be unique among a session's requests in flight"
    )
    error = {"code": INVALID_REQUEST, "message": message, "data": {"code": "request_id_in_flight", "status": 400}}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


@dataclass(slots=True)
class Session:
    id: str
    owner: str
    user: Any
    version: str
    host: bytes
    #: the SDK's `ServerSession` of one of the session's requests: its standalone channel (the client's
    #: GET stream) carries `notifications/*/list_changed`
    peer: Any
    last_used: float
    busy: int = 0
    lean: dict[Any, LeanCall] = field(default_factory=dict)
    #: the ids of the requests in flight (`request_key`), on either path: a `Hold` or a `LeanCall`
    inflight: dict[str, Hold | LeanCall] = field(default_factory=dict)


class Sessions:
    def __init__(self, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.clock = clock
        self.open: dict[str, Session] = {}

    def get(self, session_id: str | None, owner: str) -> Session | None:
        """The session if it is open and `owner` opened it."""
        found = self.open.get(session_id) if session_id else None
        return found if found is not None and found.owner == owner else None

    @contextlib.contextmanager
    def busy(self, session: Session) -> Iterator[None]:
        session.busy += 1
        try:
            yield
        finally:
            session.busy -= 1
            session.last_used = self.clock()

    async def track(self, app: App, scope: Scope, receive: Receive, send: Send, owner: str, user: Any) -> None:
        """Let the SDK serve one request, and note what it did to sessions."""
        session_id = _header(scope, SESSION_HEADER)
        status: list[int] = []
        answered: list[str] = []
        hold: Hold | None = None
        opening: Opening | None = None

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                given = next((v for k, v in message.get("headers", ()) if k.lower() == SESSION_HEADER), None)
                if given is not None:
                    answered.append(given.decode("latin-1"))
            elif message["type"] == "http.response.body":
                # the client may act on the answer as soon as it has it (an SDK client as soon as it reads the
                # answer's SSE event, before the stream ends), while the SDK still tidies up after this POST:
                # note now what the answer does (a session opened, the id free again)
                if opening is not None:
                    self._opened(scope, status, answered, opening, owner, user)
                if hold is not None and hold.posting and (not message.get("more_body") or answers(message)):
                    hold.posted()  # the SDK's stream for the id is gone by now
            await send(message)

        known = self.get(session_id, owner)  # another key's request (answered 404 by the SDK) changes nothing
        if known is not None:
            key = request_key(scope.get(MESSAGE)) if scope["method"] == "POST" else None
            if key is not None:
                if key in known.inflight:
                    await refuse_in_flight(send, known, scope[MESSAGE]["id"])
                    return
                hold = known.inflight[key] = scope[HOLD] = Hold(known, key)
            try:
                with self.busy(known):
                    await app(scope, receive, watch)
            finally:
                if hold is not None:
                    hold.posted()
        elif session_id is None and scope["method"] == "POST":
            opening = scope[OPENING] = Opening()
            await app(scope, receive, watch)
            self._opened(scope, status, answered, opening, owner, user)  # no complete answer seen (client gone)
            return
        else:
            await app(scope, receive, watch)
        if known is not None and status and (status[0] == 404 or (scope["method"] == "DELETE" and status[0] < 300)):
            self.open.pop(known.id, None)

    def _opened(
        self, scope: Scope, status: list[int], answered: list[str], opening: Opening, owner: str, user: Any
    ) -> None:
        """Record the session an `initialize` opened (once): before its client can use it, so that its first
        requests are known to be the session's (the lean edge, the rule on ids in flight)."""
        if opening.recorded or not (status and status[0] < 400 and answered and opening.version is not None):
            return
        opening.recorded = True
        host = (_header(scope, b"host") or "").encode("latin-1")
        self.open[answered[0]] = Session(answered[0], owner, user, opening.version, host, opening.peer, self.clock())

    def peers(self) -> list[Session]:
        return [s for s in self.open.values() if s.peer is not None]

    # idle sessions ----------------------------------------------------------------------------------
    def idle(self) -> list[Session]:
        now = self.clock()
        return [s for s in self.open.values() if not s.busy and not s.lean and now - s.last_used >= self.idle_s]

    async def close(self, app: App, session: Session) -> None:
        """End a session through the SDK, as its owner's client would (DELETE)."""
        self.open.pop(session.id, None)
        scope: Scope = {
            "type": "http", "method": "DELETE", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
            "headers": [(b"host", session.host), (SESSION_HEADER, session.id.encode())],
            "http_version": "1.1", "scheme": "http", "user": session.user, "client": None, "server": None,
        }  # fmt: skip

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            return None

        try:
            await app(scope, receive, send)
        except Exception as exc:
            log.warning("mcp: closing idle session %s failed: %s", session.id[:12], exc)

    async def reap(self, app: App, stop: asyncio.Event, every_s: float = 30.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            for session in self.idle():
                log.info("mcp: session %s idle for %.0f s; closing it", session.id[:12], self.idle_s)
                await self.close(app, session)


async def refuse_in_flight(send: Send, session: Session, request_id: Any) -> None:
    body = in_flight(request_id)
    headers = [(b"content-type", b"application/json"), (SESSION_HEADER, session.id.encode()),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
