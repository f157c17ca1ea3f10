"""Upstream MCP servers: started (stdio) or connected (HTTP) with the `mcp` SDK's client, and supervised.

Each `Upstream` holds one `mcp.Client` session that every tenant's requests share. A supervisor task
connects it, pings it every `HEALTH_S` seconds, and reconnects (restarting a stdio process) after a crash,
a failed ping or a lost connection, waiting `mcp.restart_s` doubling up to a minute between attempts.
A call that outlives its timeout is cancelled (the SDK sends `notifications/cancelled` upstream) and
answered with a timeout error; a hung stdio server fails its next ping and is restarted.

stdio servers get a scrubbed environment (`launch_env`): the SDK's minimal set (PATH, HOME, USER, ...),
the variables the config names, and HTTP(S)_PROXY when owstack's egress proxy runs. The command line is the
configured list, passed without a shell. HTTP servers are reached through the egress policy
(`egress_http.egress_client`), and get a lean lane (`owstack.mcp.lane`) for `tools/call` and `tools/list`
once the session is up: opened to the address the egress policy checks then, re-opened with every new
session. List changes from the upstream (2025 notifications, or 2026-07-28 `subscriptions/listen` events
followed by `owstack.mcp.listen`) go to `on_change(server, kind)`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import anyio
import httpx
import mcp_types as types
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp import Client
from owstack import __version__
from owstack.errors import UpstreamTimeout
from owstack.mcp.config import McpSection, UpstreamSection
from owstack.mcp.egress_http import egress_client
from owstack.mcp.errors import InvalidResult, UpstreamUnavailable
from owstack.mcp.lane import HttpLane
from owstack.mcp.listen import follow
from owstack.security.egress import EgressPolicy, Resolver, check_url

log = logging.getLogger("owstack.mcp")
T = TypeVar("T")
Change = Callable[[str, str], Awaitable[None]]
#: the upstream notifications that change what the gateway lists, by the kind of list they change
CHANGES: dict[type[Any], str] = {
    types.ToolListChangedNotification: "tools",
    types.PromptListChangedNotification: "prompts",
    types.ResourceListChangedNotification: "resources",
}
#: seconds between health pings of a connected upstream, and how long one may take
HEALTH_S = 5.0
PING_TIMEOUT_S = 10.0
#: how long a request waits for an upstream that is (re)connecting
CONNECT_WAIT_S = 10.0
MAX_RESTART_S = 60.0


def launch_env(section: UpstreamSection, source: Mapping[str, str], proxy_url: str | None) -> dict[str, str]:
    """The variables a stdio server gets beyond the SDK's minimal set: only what the config names."""
    env: dict[str, str] = {}
    for name, value in section.env.items():
        if value is None:
            resolved = source.get(name)
        elif value.startswith("env."):
            resolved = source.get(value.removeprefix("env."))
        else:
            resolved = value
        if resolved is not None:
            env[name] = resolved
    if proxy_url is not None:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.setdefault(name, proxy_url)
    return env


class Upstream:
    def __init__(
        self,
        name: str,
        section: UpstreamSection,
        mcp: McpSection,
        *,
        egress: EgressPolicy,
        resolver: Resolver | None = None,
        proxy_url: Callable[[], str] | None = None,
        environ: Mapping[str, str] | None = None,
        on_change: Change | None = None,
    ) -> None:
        self.name = name
        self.section = section
        self.kind = "stdio" if section.command else "http"
        self.timeout_s = section.timeout_s or mcp.call_timeout_s
        self.restart_s = mcp.restart_s
        self.egress = EgressPolicy.from_section(None, **_policy_fields(egress, self.timeout_s))
        self.resolver = resolver
        self.proxy_url = proxy_url
        self.environ = environ if environ is not None else os.environ
        self.on_change = on_change
        self.client: Client | None = None
        self.lane: HttpLane | None = None
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.restarts = 0
        #: tool calls and listings sent, by channel: lane (owstack.mcp.lane) or session (the SDK client)
        self.sent: Counter[str] = Counter()
        self.connected_at: float | None = None
        self._broken = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()  # set by aclose: ends a restart back-off at once
        #: set once the first connection attempt has ended, connected or not: `start` waits no longer
        self._tried = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # the connection ------------------------------------------------------------------------------
    def _server(self) -> StdioServerParameters | AbstractAsyncContextManager[Any]:
        s = self.section
        if s.command is not None:
            return StdioServerParameters(
                command=s.command[0],
                args=list(s.command[1:]),
                env=launch_env(s, self.environ, None if self.proxy_url is None else self.proxy_url()),
                cwd=s.cwd,
            )
        assert s.url is not None
        headers = self._headers()
        if s.transport == "sse":

            def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
                return egress_client(self.egress, self.resolver, headers)

            return sse_client(s.url, headers=headers, httpx_client_factory=factory)
        return streamable_http_client(s.url, http_client=egress_client(self.egress, self.resolver, headers))

    def _headers(self) -> dict[str, str]:
        return {k: self._header(k, v) for k, v in self.section.headers.items()}

    def _header(self, name: str, value: str) -> str:
        if not value.startswith("env."):
            return value
        resolved = self.environ.get(value.removeprefix("env."))
        if resolved is None:
            raise UpstreamUnavailable(f"mcp.servers.{self.name}.headers.{name}: {value.removeprefix('env.')} is unset")
        return resolved

    async def _message(self, message: Any) -> None:
        if isinstance(message, Exception):  # a line the SDK's client could not read (the SDK's traceback dropped)
            log.warning("mcp: upstream %s sent what is not a JSON-RPC message: %s", self.name, _describe(message))
            return
        kind = CHANGES.get(type(message))
        if kind is not None and self.on_change is not None:
            await self.on_change(self.name, kind)

    async def _open_lane(self, client: Client) -> None:
        """The lean lane of an HTTP upstream, to the address the egress policy allows now; without one (a
        refusal, a failed handshake) every request takes the SDK session."""
        s = self.section
        if s.url is None or s.transport != "streamable-http" or not s.lean:
            return
        decision = await check_url(s.url, self.egress, self.resolver)
        if not decision.allowed or not decision.addresses:
            log.warning("mcp: no lean lane to %s: %s", self.name, decision.reason)
            return
        try:
            self.lane = await HttpLane.open(
                self.name, s.url, self._headers(), address=decision.addresses[0], version=client.protocol_version,
                max_bytes=self.egress.max_bytes, verify=httpx.create_ssl_context(),
            )  # fmt: skip
        except Exception as exc:
            log.warning("mcp: no lean lane to %s: %s", self.name, _describe(exc))

    async def start(self) -> None:
        """Start the supervisor and wait (briefly) for the first connection; never raises."""
        self._task = asyncio.create_task(self._supervise(), name=f"mcp-upstream-{self.name}")
        try:  # an upstream that failed its first attempt (refused by egress, not listening) holds nothing up
            await asyncio.wait_for(self._tried.wait(), CONNECT_WAIT_S)
        except TimeoutError:
            pass
        if not self.ready.is_set():
            log.warning("mcp: upstream %s is not connected yet (%s); retrying in the background", self.name, self.error)

    async def aclose(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._broken.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10.0)
            except TimeoutError:
                self._task.cancel()

    async def _supervise(self) -> None:
        delay = self.restart_s
        while not self._stopping:
            try:
                await self._session()
                delay = self.restart_s
            except Exception as exc:  # the upstream's failure must never reach the gateway
                self.error = _describe(exc)
                log.warning("mcp: upstream %s failed: %s", self.name, self.error)
            self._tried.set()
            if self._stopping:
                return
            self.restarts += 1
            try:  # back off, but stop at once on aclose (a dead upstream must not hold up shutdown)
                await asyncio.wait_for(self._stopped.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, MAX_RESTART_S)

    async def _session(self) -> None:
        self._broken.clear()
        client = Client(
            self._server(),
            mode=self.section.protocol,
            cache=None,
            message_handler=self._message,
            client_info=types.Implementation(name="owstack", version=__version__),
        )
        async with client:
            self.client, self.error, self.connected_at = client, None, time.monotonic()
            self.ready.set()
            self._tried.set()
            log.info("mcp: upstream %s connected (%s, %s)", self.name, self.kind, client.protocol_version)
            follower = None
            try:
                await self._open_lane(client)
                if self.on_change is not None:
                    await self.on_change(self.name, "connected")
                    follower = asyncio.create_task(follow(client, self.name, self.on_change))
                await self._watch(client)
            finally:
                if follower is not None:
                    follower.cancel()
                self.ready.clear()
                self.client = None
                lane, self.lane = self.lane, None
                if lane is not None:
                    await lane.aclose()

    async def _watch(self, client: Client) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._broken.wait(), HEALTH_S)
                return
            except TimeoutError:
                pass
            try:
                with anyio.fail_after(PING_TIMEOUT_S):
                    await _probe(client)
            except Exception as exc:
                self.error = f"health ping failed: {_describe(exc)}"
                log.warning("mcp: upstream %s: %s; restarting it", self.name, self.error)
                return

    # requests ------------------------------------------------------------------------------------
    async def request(self, fn: Callable[[Client], Awaitable[T]], *, timeout_s: float | None = None) -> T:
        """Run one request on the shared session; typed errors for an unavailable or slow upstream.

        An error the upstream itself answered (`MCPError`) is raised as it is, for the client to see; an answer
        the SDK's client finds invalid (a 2026-07-28 result without `resultType`, content of the wrong kind) is
        the upstream's failure (`InvalidResult`), not the gateway's (it was a -32603 and a traceback)."""
        client = self.client
        if client is None:
            try:
                await asyncio.wait_for(self.ready.wait(), CONNECT_WAIT_S)
            except TimeoutError:
                raise UpstreamUnavailable(
                    f"MCP server {self.name!r} is not connected ({self.error or 'starting'}); try again shortly"
                ) from None
            client = self.client
            if client is None:
                raise UpstreamUnavailable(f"MCP server {self.name!r} is restarting; try again shortly")
        limit = timeout_s or self.timeout_s
        try:
            with anyio.fail_after(limit):
                return await fn(client)
        except TimeoutError:
            raise UpstreamTimeout(f"MCP server {self.name!r} did not answer within {limit:g} s") from None
        except ValidationError as exc:
            log.warning("mcp: upstream %s answered with what is not valid MCP: %s", self.name, _problem(exc))
            raise InvalidResult(
                f"MCP server {self.name!r} answered with what is not valid MCP: {_problem(exc)}"
            ) from None
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise
            self._broken.set()
            raise UpstreamUnavailable(
                f"MCP server {self.name!r} closed the connection; it is being restarted"
            ) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            self._broken.set()
            raise UpstreamUnavailable(f"MCP server {self.name!r} failed: {_describe(exc)}; restarting it") from None

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        progress: Any = None,
        param_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One `tools/call`: on the lean lane, or on the SDK session when the caller wants progress
        notifications (or there is no lane)."""
        lane = self.lane
        if lane is not None and progress is None:
            self.sent["lane"] += 1
            params: dict[str, Any] = {"name": name}
            if arguments is not None:
                params["arguments"] = arguments
            return await lane.request(
                "tools/call", params, timeout_s=self.timeout_s, name=name, extra_headers=param_headers
            )
        self.sent["session"] += 1
        result = await self.request(lambda c: c.call_tool(name, arguments, progress_callback=progress))
        return dict(result.model_dump(by_alias=True, mode="json", exclude_none=True))

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every page of the upstream's tools."""
        lane = self.lane
        self.sent["session" if lane is None else "lane"] += 1
        if lane is None:
            return await self.request(_list_all_tools)
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang a listing
            page = await lane.request("tools/list", {"cursor": cursor} if cursor else {}, timeout_s=self.timeout_s)
            tools.extend(t for t in page.get("tools") or () if isinstance(t, dict))
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return tools

    def status(self) -> dict[str, Any]:
        return {
            "server": self.name,
            "kind": self.kind,
            "connected": self.client is not None,
            "lane": None if self.lane is None else self.lane.version,
            "restarts": self.restarts,
            "error": self.error,
        }


async def _list_all_tools(client: Client) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):  # a paginator that never ends cannot hang a listing
        result = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools.extend(t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in result.tools)
        cursor = result.next_cursor
        if not cursor:
            break
    return tools


async def _probe(client: Client) -> None:
    """A liveness check: `ping` where the revision has it; 2026-07-28 removed it, so a tools/list there."""
    if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await client.list_tools()
    else:
        await client.send_ping()


def _unreadable_line(record: logging.LogRecord) -> bool:
    """The SDK's stdio client logs a line from its server it cannot read (JSON nested past pydantic's 200
    levels, a lone surrogate, a result that is not an object) with a traceback: an upstream's failure, which
    `Upstream._message` logs in one line naming the server; the call it answered waits out its timeout."""
    return not record.getMessage().startswith("Failed to parse JSONRPC message")


logging.getLogger("mcp.client.stdio").addFilter(_unreadable_line)


def _policy_fields(policy: EgressPolicy, timeout_s: float) -> dict[str, Any]:
    """The gateway's egress policy, with a total time long enough for the upstream's slowest call."""
    return {
        "allow_schemes": policy.allow_schemes,
        "allow_hosts": policy.allow_hosts,
        "deny_hosts": policy.deny_hosts,
        "allow_networks": tuple(str(n) for n in policy.allow_networks),
        "max_redirects": 0,
        "max_bytes": policy.max_bytes,
        "timeout_s": max(policy.timeout_s, timeout_s + 5.0),
    }


def _problem(exc: ValidationError) -> str:
    """The first problem pydantic found, in one line (never the value: it is the upstream's data)."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))


def _describe(exc: BaseException) -> str:
    """One line for a failure, unwrapping anyio's exception groups to their first cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
