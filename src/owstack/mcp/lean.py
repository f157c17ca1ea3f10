"""The lean edge: the hot case of `/mcp` served without the SDK's server machinery.

The SDK's server side costs about 3 ms per request here (session manager, dispatcher, memory streams, a
task per message, pydantic both ways); owstack's bar for a tool call is 1 ms added in all. So one shape of
request is served here, and every other one goes to the SDK unchanged (`handle` returns a `Receive` that
replays the body it read):

    a POST carrying one JSON-RPC `tools/call` (without a progress token) or `tools/list` request,
    on 2026-07-28 (stateless), or on a 2025 session this caller opened (`owstack.mcp.sessions`),
    that passes the SDK's own checks: DNS-rebinding (Host/Origin), Accept and Content-Type, the
    JSON-RPC envelope, the 2026-07-28 envelope ladder and `Mcp-Param-*` headers, and the method's params
    against the negotiated revision's schema (`mcp_types.methods`).

The answer is one `application/json` body, shaped by the SDK's own result serializer for that revision
(2026-07-28 results get `resultType` and the server-info stamp). Every rule of the gateway applies as on
the SDK path, in the same code (`handling.handle`, `McpService`): authentication (the endpoint's, before
this), the allowlist, pins, content checks, secrets, the rate cap, audit, ledger and metrics. A request
that fails any of the SDK's checks goes to the SDK, which answers it exactly as before; a body that is not
JSON as orjson reads it is answered here, with a parse error (`parse_error`), and one nested deeper than
`/v1` allows (`protocols.body.MAX_DEPTH`) with an invalid-request error (`too_deep`), on either path.
Cancelling: on 2026-07-28 the client closes the POST (the edge watches for it); on a session the client
posts `notifications/cancelled`, which the edge routes to the call it names. Any other cancel is the gateway
cutting the request at the end of its shutdown grace: answered with the `shutdown` error (-32068, HTTP 503,
which the SDK's client reads as that JSON-RPC error) and recorded as cut.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, SERVER_INFO_META_KEY
from mcp_types import methods as spec
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request

from owstack.api.answers import json_rpc_error
from owstack.api.http import Message, Receive, Scope, Send
from owstack.mcp.errors import InvalidResult, cut
from owstack.mcp.handling import handle
from owstack.mcp.policy import Caller
from owstack.mcp.records import Recorder
from owstack.mcp.service import McpService
from owstack.mcp.sessions import MESSAGE, LeanCall, Session, Sessions, id_key, in_flight
from owstack.protocols.body import TOO_DEEP, nests_too_deep

log = logging.getLogger("owstack.mcp")
#: a 2026-07-28 call running this long starts watching for its client to close the POST (a cancel)
WATCH_AFTER_S = 0.05
#: what a 2025-era session answers a cancelled request with (as the SDK's transport does)
REQUEST_CANCELLED = -32800
#: the params each lean method may carry (anything else, e.g. a task or input responses, goes to the SDK)
PARAMS = {"tools/call": frozenset({"name", "arguments", "_meta"}), "tools/list": frozenset({"cursor", "_meta"})}
JSON_HEADERS = [(b"content-type", b"application/json")]
#: the fields the SDK's result models fill in when a handler leaves them out (`isError`, `ttlMs`, ...)
_DEFAULTS: dict[str, dict[str, Any]] = {
    method: {
        f.alias or n: f.default for n, f in model.model_fields.items() if not f.is_required() and f.default is not None
    }
    for method, model in (("tools/call", types.CallToolResult), ("tools/list", types.ListToolsResult))
}
Serve = Callable[[LeanCall], Awaitable[bytes]]
#: the answer to a call the gateway cut: its JSON-RPC error object, and its HTTP status (503, from its `data`)
CUT = cut().error.model_dump(mode="json", exclude_none=True)
CUT_STATUS: int = CUT["data"]["status"]


def _accepts(headers: dict[str, str]) -> tuple[bool, bool]:
    """(json, sse) as the SDK's `check_accept_headers` reads the Accept header."""
    kinds = [t.split(";", 1)[0].strip().lower() for t in headers.get("accept", "").split(",")]
    wild = "*/*" in kinds
    return (wild or "application/json" in kinds or "application/*" in kinds), (
        wild or "text/event-stream" in kinds or "text/*" in kinds
    )


class LeanEdge:
    def __init__(
        self,
        service: McpService,
        recorder: Recorder,
        sessions: Sessions,
        security: TransportSecuritySettings | None,
        server_info: dict[str, Any],
        max_body: int,
    ) -> None:
        self.service = service
        self.recorder = recorder
        self.sessions = sessions
        self.security = TransportSecurityMiddleware(security)
        self.stamp = {SERVER_INFO_META_KEY: server_info}
        self.max_body = max_body
        self.served = 0
        self._checked: dict[tuple[str | None, str | None, str | None], bool] = {}

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], caller: Caller, owner: str
    ) -> Receive | None:
        """Serve the request and return None, or return the `Receive` the SDK should read it from."""
        if scope["method"] != "POST" or "application/json" not in headers.get("content-type", ""):
            return receive
        version = headers.get("mcp-protocol-version")
        modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
        session = None if modern else self.sessions.get(headers.get("mcp-session-id"), owner)
        if (not modern and session is None) or _accepts(headers) != (True, True):
            return receive
        if not await self._secure(scope, headers):
            return receive
        read = await _read_json(receive, send, self.max_body)
        if read is None:
            return None
        body, message = read
        scope[MESSAGE] = message
        replay = _replay(body, receive)
        if not isinstance(message, dict):
            return replay
        if session is not None and message.get("method") == "notifications/cancelled" and "id" not in message:
            if not self._cancel(session, message.get("params")):
                return replay
            await _send(send, 202, b"", [])
            return None
        call = self._parse(message, scope, headers, session, caller)
        if call is None:
            return replay
        serve = self._work(caller, call, session is None)
        if session is None:
            await self._serve_modern(receive, send, message["id"], serve)
        else:
            await self._serve_session(send, session, message["id"], serve)
        return None

    # checks ------------------------------------------------------------------------------------------
    async def _secure(self, scope: Scope, headers: dict[str, str]) -> bool:
        """The SDK's DNS-rebinding and content-type check, once per distinct (Content-Type, Host, Origin)."""
        key = (headers.get("content-type"), headers.get("host"), headers.get("origin"))
        ok = self._checked.get(key)
        if ok is None:
            ok = await self.security.validate_request(Request(scope), is_post=True) is None
            if len(self._checked) >= 1024:
                self._checked.clear()
            self._checked[key] = ok
        return ok

    def _parse(
        self, message: dict[str, Any], scope: Scope, headers: dict[str, str], session: Session | None, caller: Caller
    ) -> _Call | None:
        """The request when the SDK would dispatch it (every check passed); None otherwise."""
        method, raw = message.get("method"), message.get("params")
        if not isinstance(method, str) or method not in PARAMS or "id" not in message:
            return None
        allowed = PARAMS[method]
        if raw is not None and not isinstance(raw, dict):
            return None
        raw = raw or {}
        meta = raw.get("_meta")
        if not raw.keys() <= allowed or (isinstance(meta, dict) and "progressToken" in meta):
            return None
        try:
            types.JSONRPCRequest.model_validate(message)
        except ValidationError:
            return None
        if session is not None:
            protocol = session.version
        else:
            raw_headers = ((k.decode("latin-1"), "") for k, _ in scope["headers"])
            if find_duplicated_routing_header(raw_headers) is not None:
                return None
            verdict = classify_inbound_request(message, headers=headers)
            if not hasattr(verdict, "protocol_version"):
                return None
            protocol = verdict.protocol_version
        try:
            spec.validate_client_request(method, protocol, raw)  # the revision's schema of the params
        except (ValidationError, KeyError, ValueError):
            return None
        call = _Call(method, raw.get("name"), raw.get("arguments"), protocol)
        if session is None and method == "tools/call" and self._param_headers_differ(call, headers, caller):
            return None
        return call

    def _param_headers_differ(self, call: _Call, headers: dict[str, str], caller: Caller) -> bool:
        """`Mcp-Param-*` headers that disagree with the arguments of a tool this caller was listed (the SDK
        validates only against a listed tool's `x-mcp-header` annotations: without any, nothing to check)."""
        entry = self.service.catalog.tools.get(call.name or "")
        if entry is None or not entry.param_headers or entry.state != "approved" or not caller.may_use(entry.qualified):
            return False
        return validate_mcp_param_headers(entry.wire.get("inputSchema"), call.arguments or {}, headers) is not None

    def _cancel(self, session: Session, params: Any) -> bool:
        request_id = params.get("requestId") if isinstance(params, dict) else None
        if not isinstance(request_id, str | int):  # names no call (and a list or object is unhashable)
            return False
        target = session.lean.get(request_id)
        if target is None:
            return False
        target.cancelled = True
        target.task.cancel()
        return True

    # serving -----------------------------------------------------------------------------------------
    def _work(self, caller: Caller, call: _Call, modern: bool) -> Serve:
        """The request under `handling.handle`, its result shaped for the revision and serialized inside (so
        that a result that is not valid MCP is recorded as the failure it is, and its size as sent)."""
        service = self.service

        async def work(req: Any) -> bytes:
            if call.method == "tools/call":
                result = await service.call_tool(caller, req, str(call.name), call.arguments, None)
            else:
                result = {"tools": await service.list_tools(caller)}
            shaped = self._result(call.method, call.protocol, result, modern)
            try:
                return orjson.dumps(shaped)
            except orjson.JSONEncodeError as exc:  # e.g. an upstream's integer past 64 bits
                raise InvalidResult(f"the {call.method} result cannot be carried: {exc}") from None

        return lambda mine: handle(self.recorder, caller, call.method, call.name, work, len, "lean", mine)

    def _result(self, method: str, protocol: str, result: dict[str, Any], modern: bool) -> dict[str, Any]:
        """The result as the SDK's runner shapes it for the revision (validated and sieved, then stamped)."""
        try:
            dumped = spec.serialize_server_result(method, protocol, {**_DEFAULTS[method], **result})
        except ValidationError:
            log.warning("mcp: a %s result is not valid MCP %s; refused as the upstream's failure", method, protocol)
            raise InvalidResult(f"the {method} result is not valid MCP {protocol}") from None
        if modern:
            if dumped.get("resultType") is None:
                dumped["resultType"] = "complete"
            meta = dumped.get("_meta")
            dumped["_meta"] = self.stamp if meta is None else {**meta, **self.stamp}
        return dumped

    async def _answer(self, request_id: Any, serve: Serve, mine: LeanCall) -> tuple[bytes, int | None]:
        """The JSON-RPC response's bytes, and its error code if it is one."""
        try:
            result = await serve(mine)
        except MCPError as exc:
            return error_message(request_id, exc.error.model_dump(mode="json", exclude_none=True)), exc.code
        except Exception:
            log.exception("mcp: lean request failed")
            return error_message(
                request_id, {"code": INTERNAL_ERROR, "message": "Internal server error"}
            ), INTERNAL_ERROR
        self.served += 1
        return b'{"jsonrpc":"2.0","id":' + orjson.dumps(request_id) + b',"result":' + result + b"}", None

    async def _serve_modern(self, receive: Receive, send: Send, request_id: Any, serve: Serve) -> None:
        """2026-07-28: closing the POST cancels the call (the spec's cancellation on this revision). Only a
        call still running after `WATCH_AFTER_S` gets a task that watches for it: most are answered sooner."""
        task = asyncio.current_task()
        assert task is not None
        mine = LeanCall(task)
        watching: list[asyncio.Task[None]] = []

        def watch() -> None:
            watching.append(asyncio.ensure_future(_watch_disconnect(receive, mine)))

        timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, watch)
        try:
            reply, code = await self._answer(request_id, serve, mine)
            status = 200 if code is None else ERROR_CODE_HTTP_STATUS.get(code, 200)
        except asyncio.CancelledError:
            task.uncancel()
            if mine.cancelled:  # its client closed the POST: nobody to answer
                return
            reply, status = error_message(request_id, CUT), CUT_STATUS
        finally:
            timer.cancel()
            for watcher in watching:
                watcher.cancel()
        await _send(send, status, reply, JSON_HEADERS)

    async def _serve_session(self, send: Send, session: Session, request_id: Any, serve: Serve) -> None:
        """A 2025 session: `notifications/cancelled` for this id cancels the call, answered REQUEST_CANCELLED.
        An id in flight on the session (on either path) is refused (`sessions.in_flight`); this call's id is
        held until the call is over, its answer about to go out."""
        task = asyncio.current_task()
        assert task is not None
        headers = [*JSON_HEADERS, (b"mcp-session-id", session.id.encode())]
        key = id_key(request_id)
        if key is None or key in session.inflight:
            await _send(send, 400, in_flight(request_id), headers)
            return
        mine = session.inflight[key] = session.lean[request_id] = LeanCall(task)
        status = 200
        try:
            with self.sessions.busy(session):
                reply, _ = await self._answer(request_id, serve, mine)
        except asyncio.CancelledError:
            task.uncancel()
            if mine.cancelled:
                reply = error_message(request_id, {"code": REQUEST_CANCELLED, "message": "Request cancelled"})
            else:  # the gateway cut it
                reply, status = error_message(request_id, CUT), CUT_STATUS
        finally:  # the call is over: free the id before its answer goes out (its client may reuse it at once)
            session.lean.pop(request_id, None)
            if session.inflight.get(key) is mine:
                del session.inflight[key]
        await _send(send, status, reply, headers)


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    name: str | None
    arguments: dict[str, Any] | None
    protocol: str


def error_message(request_id: Any, error: dict[str, Any]) -> bytes:
    """A JSON-RPC error response."""
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


async def _watch_disconnect(receive: Receive, call: LeanCall) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    call.cancelled = True
    call.task.cancel()


#: the answer to a body over the limit (the SDK's 413, as a JSON-RPC error like every other error on `/mcp`)
TOO_LARGE = orjson.dumps(
    {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": "Request body too large"}}
)


def parse_error(reason: str) -> bytes:
    """The JSON-RPC parse error (-32700, HTTP 400, as the SDK answers one) for a body owstack cannot carry.

    orjson is owstack's JSON everywhere a request goes (the audit record, the ledger, this edge); the SDK reads
    bodies with Python's `json`, which takes more: `NaN`, `Infinity`, numbers past a double (`1e400`), lone
    surrogates (`"\\ud800"`) and integers past 64 bits (which orjson reads as a float, Python exactly). Passed
    on, such a value failed the call's audit record (the call refused as if the audit log were down) or its
    serialisation to a stdio upstream, which closed that upstream's connection for every caller until its
    restart. So `/mcp` takes the JSON orjson reads, with integers that fit in 64 bits."""
    error = {"code": PARSE_ERROR, "message": f"Parse error: {reason}"}
    return orjson.dumps({"jsonrpc": "2.0", "id": None, "error": error})


def too_deep(message: Any) -> bytes:
    """The answer to a body nested past `MAX_DEPTH` (`/v1`'s limit, `protocols.body`): an invalid request
    (-32600, HTTP 400, `data.code` `too_deep`), with the request's id when it has a usable one. Such a body
    parses, but orjson cannot write it again (255 levels), so its call's audit record failed deep in the call
    path (-32603 and a traceback, no record); it is refused before anything reads it, on either path."""
    request_id = message.get("id") if isinstance(message, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    return json_rpc_error(400, TOO_DEEP, "too_deep", request_id)


#: a run of digits an integer past 64 bits needs (2**63 has 19); a body without one has no such integer
_LONG_DIGITS = re.compile(rb"\d{19}")


class _Wide(Exception):
    pass


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise _Wide(text)
    return value


def wide_integer(body: bytes) -> str | None:
    """Why `body` (JSON orjson read) holds an integer past 64 bits, or None when it holds none."""
    try:
        json.loads(body, parse_int=_int64)
    except _Wide as exc:
        return f"the integer {str(exc)[:40]} does not fit in 64 bits"
    except ValueError:  # what orjson reads, json reads too; anything else is not this check's business
        return None
    return None


async def checked_body(scope: Scope, receive: Receive, send: Send, limit: int) -> Receive | None:
    """For a JSON POST the lean edge did not read (another method, a request without a session, or no lean
    edge): its body, refused as above when owstack cannot carry it (answered: None), else a `Receive` that
    replays it to the SDK (and the message read, on the scope for the session record: `sessions.MESSAGE`)."""
    read = await _read_json(receive, send, limit)
    if read is None:
        return None
    scope[MESSAGE] = read[1]
    return _replay(read[0], receive)


async def _read_json(receive: Receive, send: Send, limit: int) -> tuple[bytes, Any] | None:
    """The body and what orjson reads of it; None once answered (413 past `limit`, a parse error for a body
    owstack cannot carry, 400 `too_deep` for one nested past `MAX_DEPTH`, nothing when the client left)."""
    try:
        body = await _read(receive, limit)
    except _TooLarge:
        await _send(send, 413, TOO_LARGE, JSON_HEADERS)
        return None
    except _Gone:
        return None
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # orjson stops reading at 1,024 levels: that is nesting too
        deep = str(exc).startswith("depth limit exceeded")
        await _send(send, 400, too_deep(None) if deep else parse_error(str(exc)), JSON_HEADERS)
        return None
    if _LONG_DIGITS.search(body) is not None and (wide := wide_integer(body)) is not None:
        await _send(send, 400, parse_error(wide), JSON_HEADERS)
        return None
    if nests_too_deep(body, message):
        await _send(send, 400, too_deep(message), JSON_HEADERS)
        return None
    return body, message


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


async def _read(receive: Receive, limit: int) -> bytes:
    """The whole body; `_TooLarge` past `limit` (answered 413 as the SDK does), `_Gone` if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = [False]

    async def replay() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start = {"type": "http.response.start", "status": status,
             "headers": [*headers, (b"content-length", str(len(body)).encode())]}  # fmt: skip
    await send(start)
    await send({"type": "http.response.body", "body": body})
