"""The lean lane to an HTTP upstream: `tools/call` and `tools/list` as one pooled POST each.

The SDK's client costs about 0.65 ms per request here (memory streams, a task per POST, httpx2, pydantic
on both ways); a call through owstack must add at most 1 ms in all. So beside the SDK session that every
upstream keeps (negotiation, GET streams, notifications, progress, prompts, resources), an HTTP upstream
gets a lane: owstack's own keep-alive HTTP client (`backends.httpclient`) to the address the egress policy
checked when the lane opened (the check is per connection, not per call: no later DNS answer can move it).

    lane = await HttpLane.open(name, url, headers, address=..., version=client.protocol_version, ...)
    result = await lane.request("tools/call", {"name": "echo", "arguments": {...}}, name="echo")

It speaks the revision the SDK session negotiated. On 2026-07-28 a request is self-contained (the `_meta`
envelope, `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*` headers; cancelling is closing the POST). On 2025-era
revisions the lane holds its own session (its own `initialize`, re-opened when the upstream forgets it)
and cancels with `notifications/cancelled`. Answers may be JSON or an SSE stream; a server-to-client
request inside a stream (sampling, elicitation, roots) is refused with a JSON-RPC error, and an
`input_required` result (their 2026-07-28 form) is refused likewise: owstack declares none of those client
capabilities upstream and relays none of them to its own clients.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    encode_header_value,
)
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    INVALID_REQUEST,
    PROTOCOL_VERSION_META_KEY,
)
from mcp_types.version import LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from owstack import __version__
from owstack.backends import httpclient
from owstack.errors import UpstreamTimeout
from owstack.mcp.errors import UpstreamUnavailable

log = logging.getLogger("owstack.mcp")
CLIENT_INFO = {"name": "owstack", "version": __version__}
#: owstack declares no client capabilities upstream: it relays no sampling, elicitation or roots requests
CAPABILITIES: dict[str, Any] = {}
SESSION = "mcp-session-id"
REFUSED = {
    "sampling/createMessage": "Sampling",
    "elicitation/create": "Elicitation",
    "roots/list": "List roots",
}


def refusal(method: str, server: str) -> str:
    kind = REFUSED.get(method, method)
    return (
        f"{kind} not supported: owstack does not relay server-to-client requests (sampling, elicitation, roots) "
        f"from MCP server {server!r} to its clients"
    )


class HttpLane:
    def __init__(
        self,
        server: str,
        url: str,
        headers: Mapping[str, str],
        *,
        address: str,
        version: str,
        max_bytes: int,
        verify: Any = True,
    ) -> None:
        parts = urlsplit(url)
        self.server = server
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.version = version
        self.modern = version in MODERN_PROTOCOL_VERSIONS
        self.max_bytes = max_bytes
        self.pool = httpclient.Pool(url, max_connections=64, verify=verify, address=address)
        self.base = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            MCP_PROTOCOL_VERSION_HEADER: version,
            **headers,
        }
        self.session_id: str | None = None
        self._ids = itertools.count(1)
        self._opening: asyncio.Lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, server: str, url: str, headers: Mapping[str, str], **kwargs: Any) -> HttpLane:
        lane = cls(server, url, headers, **kwargs)
        if not lane.modern:
            await lane._handshake(10.0)
            lane._spawn(lane._standalone())
        return lane

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.pool.aclose()

    # the 2025-era session --------------------------------------------------------------------------
    async def _handshake(self, timeout_s: float) -> None:
        """`initialize` and `notifications/initialized` on a session of the lane's own."""
        self.session_id = None
        params = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": CAPABILITIES, "clientInfo": CLIENT_INFO}
        result, session = await self._post("initialize", params, {}, timeout_s)
        if not session:
            raise UpstreamUnavailable(f"MCP server {self.server!r} opened no session for the lean lane")
        self.session_id = session
        self.base[MCP_PROTOCOL_VERSION_HEADER] = str(result.get("protocolVersion") or LATEST_HANDSHAKE_VERSION)
        await self._notify("notifications/initialized", None)

    async def _standalone(self) -> None:
        """The GET stream a 2025 client keeps open: a server sends requests that belong to no call there, and
        they are refused like those on a call's stream. Re-opened while the lane lives."""
        while True:
            headers = {**self.base, "Accept": "text/event-stream"}
            if self.session_id:
                headers[SESSION] = self.session_id
            try:
                response = await self.pool.request("GET", self.path, b"", headers, httpclient.Timeouts(5.0, 3600.0))
                try:
                    if response.status == 405:
                        return  # the server offers no such stream
                    if response.status == 200:
                        async for message in self._messages(response, None):
                            if "method" in message and "id" in message:
                                self._refuse(message)
                finally:
                    await response.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("mcp: %s: the lane's GET stream ended: %s", self.server, exc)
            await asyncio.sleep(1.0)

    async def _reopen(self, stale: str | None, timeout_s: float) -> None:
        async with self._opening:
            if self.session_id == stale:  # one re-open however many calls saw the session expire
                await self._handshake(timeout_s)

    # requests --------------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        params: dict[str, Any],
        *,
        timeout_s: float,
        name: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The result of one request, or `MCPError` (the upstream's own JSON-RPC error), `UpstreamTimeout`,
        `UpstreamUnavailable`."""
        headers: dict[str, str] = {}
        if self.modern:
            params = {**params, "_meta": _modern_meta(self.version, params.get("_meta"))}
            headers[MCP_METHOD_HEADER] = method
            if name is not None:
                headers[MCP_NAME_HEADER] = encode_header_value(name)
            if extra_headers:
                headers.update(extra_headers)
        session = self.session_id
        try:
            result, _ = await self._post(method, params, headers, timeout_s)
        except _SessionGone:
            await self._reopen(session, timeout_s)
            result, _ = await self._post(method, params, headers, timeout_s)
        return result

    async def _post(
        self, method: str, params: dict[str, Any], headers: dict[str, str], timeout_s: float
    ) -> tuple[dict[str, Any], str | None]:
        request_id = next(self._ids)
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        sent = {**self.base, **headers}
        if self.session_id:
            sent[SESSION] = self.session_id
        response: httpclient.Response | None = None
        try:
            async with asyncio.timeout(timeout_s):
                response = await self.pool.request("POST", self.path, body, sent, httpclient.Timeouts(5.0, timeout_s))
                return await self._answer(response, request_id), response.headers.get(SESSION)
        except TimeoutError:
            self._cancel_upstream(request_id, "timed out")
            raise UpstreamTimeout(f"MCP server {self.server!r} did not answer within {timeout_s:g} s") from None
        except asyncio.CancelledError:
            self._cancel_upstream(request_id, "cancelled by the client")
            raise
        except (httpclient.ConnectError, httpclient.ConnectionDropped, httpclient.ProtocolError, OSError) as exc:
            raise UpstreamUnavailable(f"MCP server {self.server!r} failed: {exc}") from None
        except httpclient.ReadTimeout:
            raise UpstreamTimeout(f"MCP server {self.server!r} did not answer within {timeout_s:g} s") from None
        finally:
            if response is not None:
                await response.aclose()  # aborts the connection unless the response was read to its end

    async def _answer(self, response: httpclient.Response, request_id: int) -> dict[str, Any]:
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if response.status == 404 and self.session_id and not self.modern:
            raise _SessionGone
        if kind == "text/event-stream" and response.status == 200:
            return self._result(await self._from_stream(response, request_id))
        raw = await self._read(response)
        try:
            message = orjson.loads(raw) if kind == "application/json" and raw else None
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or ("result" not in message and "error" not in message):
            raise UpstreamUnavailable(f"MCP server {self.server!r} answered HTTP {response.status}, not JSON-RPC")
        return self._result(message)

    def _result(self, message: dict[str, Any]) -> dict[str, Any]:
        error = message.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            raise MCPError(code if isinstance(code, int) else -32603, str(error.get("message", "")), error.get("data"))
        result = message.get("result")
        if not isinstance(result, dict):
            raise UpstreamUnavailable(f"MCP server {self.server!r} sent a result that is not an object")
        if result.get("resultType") == "input_required":
            wanted = result.get("inputRequests")
            asked = sorted({str(r.get("method")) for r in wanted.values() if isinstance(r, dict)}
                           if isinstance(wanted, dict) else ())  # fmt: skip
            raise MCPError(INVALID_REQUEST, refusal(asked[0] if asked else "input", self.server))
        return result

    async def _read(self, response: httpclient.Response) -> bytes:
        parts, size = [], 0
        async for piece in response.iter_bytes():
            size += len(piece)
            if size > self.max_bytes:
                raise UpstreamUnavailable(f"MCP server {self.server!r} sent more than {self.max_bytes} bytes")
            parts.append(piece)
        return b"".join(parts)

    async def _from_stream(self, response: httpclient.Response, request_id: int) -> dict[str, Any]:
        """The response for `request_id` from an SSE stream; requests to the client on it are refused."""
        async for message in self._messages(response, self.max_bytes):
            if message.get("id") == request_id and ("result" in message or "error" in message):
                await _drain(response)
                return message
            if "method" in message and "id" in message:
                self._refuse(message)
        raise UpstreamUnavailable(f"MCP server {self.server!r} ended the stream without answering")

    async def _messages(self, response: httpclient.Response, limit: int | None) -> AsyncIterator[dict[str, Any]]:
        """The JSON-RPC messages of an SSE stream, until it ends; past `limit` bytes in all (a call's stream)
        or in one event (the standing stream), `UpstreamUnavailable`."""
        buffer, size = b"", 0
        async for piece in response.iter_bytes():
            size += len(piece)
            buffer = (buffer + piece).replace(b"\r\n", b"\n")
            if (limit is not None and size > limit) or len(buffer) > self.max_bytes:
                raise UpstreamUnavailable(f"MCP server {self.server!r} sent more than {self.max_bytes} bytes")
            while (end := buffer.find(b"\n\n")) >= 0:
                event, buffer = buffer[:end], buffer[end + 2 :]
                message = _event_message(event)
                if message is not None:
                    yield message

    # messages to the upstream beside the request ---------------------------------------------------
    def _refuse(self, message: dict[str, Any]) -> None:
        method = str(message.get("method"))
        log.info("mcp: %s asked the client for %s; refused (owstack relays no server-to-client requests)",
                 self.server, method)  # fmt: skip
        error = {"code": INVALID_REQUEST, "message": refusal(method, self.server)}
        self._spawn(self._send({"jsonrpc": "2.0", "id": message["id"], "error": error}))

    def _cancel_upstream(self, request_id: int, reason: str) -> None:
        """2025-era: `notifications/cancelled`; 2026-07-28: aborting the POST (done by the caller) is it."""
        if not self.modern:
            self._spawn(self._notify("notifications/cancelled", {"requestId": request_id, "reason": reason}))

    async def _notify(self, method: str, params: dict[str, Any] | None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        headers = dict(self.base)
        if self.session_id:
            headers[SESSION] = self.session_id
        try:
            response = await self.pool.request("POST", self.path, orjson.dumps(message), headers,
                                               httpclient.Timeouts(5.0, 10.0))  # fmt: skip
            await response.read()
        except Exception as exc:  # a courtesy message: its failure must not fail anything else
            log.debug("mcp: %s: %s not delivered: %s", self.server, message.get("method", "response"), exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _drain(response: httpclient.Response) -> None:
    """Read a stream's end after its answer (the server closes it next), so the connection is kept; a
    stream left open longer is aborted by the caller instead."""
    try:
        async with asyncio.timeout(0.05):
            async for _ in response.iter_bytes():
                pass
    except TimeoutError:
        pass


class _SessionGone(Exception):
    """The upstream answered 404 for the lane's session: it expired or the server restarted."""


def _modern_meta(version: str, given: Any) -> dict[str, Any]:
    meta = dict(given) if isinstance(given, dict) else {}
    meta[PROTOCOL_VERSION_META_KEY] = version
    meta[CLIENT_INFO_META_KEY] = CLIENT_INFO
    meta[CLIENT_CAPABILITIES_META_KEY] = CAPABILITIES
    return meta


def _event_message(event: bytes) -> dict[str, Any] | None:
    kind, data = b"message", []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            kind = line[6:].strip()
    if kind != b"message" or not data:
        return None
    try:
        message = orjson.loads(b"\n".join(data))
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None
