"""`/mcp`: the gateway's MCP edge, an ASGI handler object with a lifecycle (`start`, `aclose`).

    endpoint = McpEndpoint(config, host=..., keystore=..., audit=..., meter=..., limit=..., registry=...)
    await endpoint.start()          pins migrated, upstreams started, the SDK's session manager running
    await endpoint(scope, receive, send)      /mcp (POST, GET, DELETE) and the OAuth metadata paths
    await endpoint.aclose()

Authentication happens here, before anything else: an owstack key (as for `/v1`), or none in open mode.
The caller is left on the scope for the handlers, and as the SDK's authenticated user so that a Streamable
HTTP session can only be used with the key that opened it. Then the lean edge (`owstack.mcp.lean`) serves
the hot case, a `tools/call` or `tools/list` POST, and everything else, the three protocol revisions
(2025-06-18 and 2025-11-25 with sessions, SSE streams and DELETE; the stateless 2026-07-28), JSON-RPC
parsing and its error codes, body limits and DNS-rebinding checks, is the `mcp` SDK's
`StreamableHTTPSessionManager`, with owstack's record of its sessions beside it (`owstack.mcp.sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from owstack.api.disconnect import uncancel
from owstack.api.http import Receive, Scope, Send, header_dict, send_json
from owstack.errors import AuthenticationFailed, OwstackError
from owstack.mcp.catalog import Catalog
from owstack.mcp.changes import ChangeFeed
from owstack.mcp.lean import CUT, CUT_STATUS, LeanEdge, checked_body, error_message
from owstack.mcp.metrics import McpCollector, McpMetrics
from owstack.mcp.pins import PinStore
from owstack.mcp.policy import OPEN_TENANT, Caller, policy_for
from owstack.mcp.records import Recorder
from owstack.mcp.server import CALLER, build_server
from owstack.mcp.service import McpService
from owstack.mcp.sessions import MESSAGE, Sessions
from owstack.mcp.upstreams import Upstream
from owstack.security.egress import EgressPolicy, Resolver, StaticResolver, SystemResolver

if TYPE_CHECKING:
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.metering.stage import MeterStage
    from owstack.tenancy.keys import KeyStore
    from owstack.tenancy.limits.stage import LimitStage

log = logging.getLogger("owstack.mcp")
PATH = "/mcp"
METADATA = "/.well-known/oauth-protected-resource"
PATHS = (PATH, METADATA, METADATA + PATH)
PIN_REFRESH_S = 1.0


class McpEndpoint:
    def __init__(
        self,
        config: Config,
        *,
        host: str = "127.0.0.1",
        keystore: KeyStore | None = None,
        audit: AuditStage | None = None,
        meter: MeterStage | None = None,
        limit: LimitStage | None = None,
        registry: Any = None,
        resolver: Resolver | None = None,
        environ: dict[str, str] | None = None,
        proxy_url: Callable[[str], str] | None = None,
    ) -> None:
        self.config = config
        self.section = section = config.file.mcp
        self.keystore = keystore
        self.open_mode = keystore is None
        egress = EgressPolicy.from_section(config.file.security.egress)
        if resolver is None and section.resolve:
            resolver = StaticResolver(section.resolve, SystemResolver())
        self.metrics = McpMetrics(frozenset(config.file.tenants) | {OPEN_TENANT}, frozenset(section.servers))
        if registry is not None:
            registry.register(McpCollector(self.metrics))
        self.recorder = Recorder(self.metrics, audit=audit, meter=meter, limit=limit)
        self.store: PinStore | None = None
        self.upstreams: dict[str, Upstream] = {}
        for name, s in section.servers.items():
            policy = egress
            if s.allow_networks:
                extra = tuple(str(n) for n in policy.allow_networks) + s.allow_networks
                policy = EgressPolicy.from_section(config.file.security.egress, allow_networks=extra)
            self.upstreams[name] = Upstream(
                name, s, section, egress=policy, resolver=resolver,
                proxy_url=None if proxy_url is None else functools.partial(proxy_url, name),
                environ=environ if environ is not None else dict(os.environ), on_change=self._changed,
            )  # fmt: skip
        self.metrics.upstreams.extend(self.upstreams.values())
        self.sessions = Sessions(section.session_idle_s)
        self.feed = ChangeFeed(self.sessions)
        self.service: McpService | None = None
        self.manager: StreamableHTTPSessionManager | None = None
        self.lean: LeanEdge | None = None
        self._users: dict[str, AuthenticatedUser] = {}
        self._host = host
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._running = asyncio.Event()

    # lifecycle ------------------------------------------------------------------------------------
    name = "mcp"

    def unavailable(self) -> str | None:
        return None  # an upstream that is down is refused per call; the gateway keeps serving

    async def start(self) -> None:
        self.store = await asyncio.to_thread(PinStore, self.config.file.storage.url)
        catalog = Catalog(self.section, self.store, self.recorder.event)
        await catalog.refresh_pins()
        self.service = McpService(self.upstreams, catalog, self.feed)
        server = build_server(self.service, self.recorder, self.feed)
        security = _transport_security(self._host)
        max_body = self.config.file.server.max_body_bytes
        self.manager = StreamableHTTPSessionManager(
            server, security_settings=security, max_request_body_size=max_body, session_idle_timeout=None
        )
        if self.section.lean:
            self.lean = LeanEdge(
                self.service, self.recorder, self.sessions, security, server.server_info_stamp, max_body
            )
        self._tasks.append(asyncio.create_task(self._run_manager(), name="mcp-sessions"))
        await self._running.wait()
        await asyncio.gather(*(u.start() for u in self.upstreams.values()))
        self._tasks.append(asyncio.create_task(self._refresh_pins(), name="mcp-pins"))
        self._tasks.append(asyncio.create_task(self.sessions.reap(self.manager.handle_request, self._stop)))
        log.info("mcp: /mcp serving %d upstream server(s): %s", len(self.upstreams), ", ".join(self.upstreams))

    async def _run_manager(self) -> None:
        assert self.manager is not None
        async with self.manager.run():
            self._running.set()
            await self._stop.wait()

    async def _refresh_pins(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(PIN_REFRESH_S)
            if self.service is not None:
                try:
                    await self.service.pins_changed()
                except Exception as exc:
                    log.warning("mcp: pins not refreshed: %s", exc)

    def cut(self) -> None:
        """The gateway is cutting its requests (its shutdown grace is over): record their cancels as cuts."""
        self.recorder.cutting = True

    async def aclose(self) -> None:
        """The SDK's sessions first (the handlers still running are cut, and recorded so, while their upstreams
        are still there to cancel the calls), then the upstreams."""
        self.recorder.cutting = True
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 10.0)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception as exc:
                log.warning("mcp: %s ended with %s", task.get_name(), exc)
        await asyncio.gather(*(u.aclose() for u in self.upstreams.values()), return_exceptions=True)

    async def _changed(self, server: str, kind: str) -> None:
        if self.service is not None:
            await self.service.upstream_changed(server, kind)

    # ASGI -----------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str] | None = None) -> None:
        """`headers`: the request's headers as a dict of lower-case names, when the caller has them already."""
        path = scope["path"].rstrip("/") or "/"
        request_id = str(scope.get("owstack.request_id") or "")
        if path in (METADATA, METADATA + PATH):
            await send_json(send, 200, orjson.dumps(self.metadata(scope)), [(b"cache-control", b"max-age=300")])
            return
        headers = header_dict(scope) if headers is None else headers
        try:
            caller = await self.authenticate(headers, request_id, scope)
        except OwstackError as exc:
            challenge = f'Bearer realm="owstack", resource_metadata="{self._base(scope)}{METADATA}{PATH}"'
            body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32060, "message": exc.message,
                                 "data": {"code": exc.code, "status": exc.status}}})  # fmt: skip
            await send_json(send, exc.status, body, [(b"www-authenticate", challenge.encode())])
            return
        if self.manager is None or not self._running.is_set():
            await send_json(send, 503, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32063,"message":"starting"}}', [])
            return
        scope[CALLER] = caller
        owner = caller.key_id or f"open:{caller.tenant}"
        user = self._users.get(owner)
        if user is None:
            user = self._users[owner] = AuthenticatedUser(AccessToken(token="owstack", client_id=owner, scopes=["mcp"]))
        scope["user"] = user
        rest: Receive | None = receive
        if self.lean is not None:
            rest = await self.lean.handle(scope, receive, send, headers, caller, owner)
        if rest is receive and scope["method"] == "POST" and "application/json" in headers.get("content-type", ""):
            rest = await checked_body(scope, receive, send, self.config.file.server.max_body_bytes)  # not read yet
        if rest is None:
            return
        if scope["method"] == "GET" and "last-event-id" in headers:
            _drop_resume(scope)
        receive = rest
        sent = _Sent(send)
        try:
            await self.sessions.track(self.manager.handle_request, scope, receive, _json_rpc_errors(sent), owner, user)
        except asyncio.CancelledError:
            if not self.recorder.cutting:
                raise
            uncancel()  # the gateway cut it: answer so (uvicorn's would be a plain-text 500 and a traceback)
            await sent.cut(scope.get(MESSAGE))

    async def authenticate(self, headers: dict[str, str], request_id: str, scope: Scope) -> Caller:
        client = scope.get("client")
        address = client[0] if client else None
        if self.keystore is None:
            policy = policy_for(self.section, OPEN_TENANT, open_mode=True)
            return Caller(OPEN_TENANT, None, policy, request_id, address)
        from owstack.tenancy.stage import presented_key

        record = await self.keystore.authenticate_async(presented_key(headers))
        if record.tenant not in self.config.file.tenants:
            raise AuthenticationFailed(f"API key {record.key_id} belongs to a tenant that is no longer configured")
        policy = policy_for(self.section, record.tenant, open_mode=False)
        return Caller(record.tenant, record.key_id, policy, request_id, address)

    def _base(self, scope: Scope) -> str:
        if self.section.public_url:
            return self.section.public_url.rstrip("/").removesuffix(PATH)
        host = header_dict(scope).get("host") or f"{self._host}"
        return f"{scope.get('scheme', 'http')}://{host}"

    def metadata(self, scope: Scope) -> dict[str, Any]:
        """OAuth 2.0 Protected Resource Metadata (RFC 9728) for `/mcp`, so clients find how to authenticate."""
        out: dict[str, Any] = {
            "resource": f"{self._base(scope)}{PATH}",
            "bearer_methods_supported": ["header"],
            "resource_name": "owstack MCP gateway",
            "scopes_supported": ["mcp"],
        }
        if self.section.authorization_servers:
            out["authorization_servers"] = list(self.section.authorization_servers)
        return out


class _Sent:
    """`send` for the SDK's path, noting how far the answer got, so that a request the gateway cuts is answered
    properly: the JSON-RPC `shutdown` error, as the body of an HTTP 503 before the answer started, or as the
    last event of the SSE stream that carries the answer; then the body is ended (never a broken chunked
    encoding, never uvicorn's plain-text 500)."""

    __slots__ = ("ended", "send", "sse", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = self.ended = self.sse = False

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.sse = dict(message.get("headers") or ()).get(b"content-type", b"").startswith(b"text/event-stream")
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.ended = True
        await self.send(message)

    async def cut(self, message: Any) -> None:
        request_id = message.get("id") if isinstance(message, dict) else None
        error = error_message(request_id, CUT)
        with contextlib.suppress(OSError, RuntimeError):  # the connection may be gone too
            if not self.started:
                await send_json(self.send, CUT_STATUS, error, [])
            elif not self.ended:
                last = self.sse and request_id is not None
                event = b"event: message\r\ndata: " + error + b"\r\n\r\n" if last else b""
                await self.send({"type": "http.response.body", "body": event, "more_body": False})


def _drop_resume(scope: Scope) -> None:
    """A GET that asks to resume a stream after an event (`Last-Event-ID`) opens a fresh one: owstack keeps no
    event store (its streams carry no event ids to resume from), and the SDK's transport, asked to replay
    without one, returned without answering: uvicorn's plain-text 500 ("ASGI callable returned without
    starting response")."""
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"last-event-id"]


def _json_rpc_errors(send: Send) -> Send:
    """`send` for the SDK's answers, with its plain-text refusals ("Invalid Content-Type header", "Invalid Host
    header", ...) turned into JSON-RPC error objects, the shape of every other error on `/mcp`."""
    held: list[MutableMapping[str, Any]] = []
    text = bytearray()

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            kind = dict(message.get("headers") or ()).get(b"content-type", b"")
            if message["status"] >= 400 and not kind.startswith((b"application/json", b"text/event-stream")):
                held.append(message)
                return
        elif held and message["type"] == "http.response.body":
            text.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            start = held.pop()
            reason = text.decode("utf-8", "replace").strip() or "request refused"
            body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": reason}})
            await send_json(send, start["status"], body, [])
            return
        await send(message)

    return wrapped


def _transport_security(host: str) -> TransportSecuritySettings | None:
    """On loopback, the SDK's DNS-rebinding protection: only loopback Host and Origin headers."""
    from owstack.tenancy import is_loopback

    if not is_loopback(host):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
