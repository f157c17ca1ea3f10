"""The `mcp` SDK server that clients talk to: one handler per MCP method, each a thin wrapper.

A handler finds the caller the endpoint authenticated (on the ASGI scope of the HTTP request that carried
the message) and runs one `McpService` method under `handling.handle` (audit, rate cap, records, JSON-RPC
errors). Cancellation needs nothing here: the SDK cancels the handler's task when the client cancels, and
the upstream call is cancelled with it.

The server advertises `listChanged` for tools, prompts and resources in every revision (2025 sessions get
the notifications on their GET stream, 2026-07-28 clients on `subscriptions/listen`, `owstack.mcp.changes`),
one middleware tells the session record (`owstack.mcp.sessions`) what an `initialize` negotiated, and another
holds a request's id in flight on its session while its handler runs (`hold_request_id`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError

from owstack import __version__
from owstack.mcp.changes import ChangeFeed
from owstack.mcp.errors import FORBIDDEN, InvalidResult
from owstack.mcp.handling import handle
from owstack.mcp.policy import Caller
from owstack.mcp.records import McpRequest, Recorder
from owstack.mcp.service import McpService
from owstack.mcp.sessions import HOLD, OPENING, Hold, Opening

#: the ASGI scope key under which the endpoint leaves the authenticated `Caller`
CALLER = "owstack.mcp.caller"
INSTRUCTIONS = (
    "owstack MCP gateway: tools of several servers, named server.tool. Calls are authorized per tenant, "
    "tool definitions are pinned, and results are checked for prompt injection and secrets."
)
ALL_CHANGES = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)


class GatewayServer(Server[Any]):
    """The SDK's low-level server, advertising list changes at `initialize` (the gateway forwards them)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or ALL_CHANGES, experimental_capabilities, *args, **kwargs
        )


def _size(result: Any) -> int:
    """The result's size as sent; a result owstack cannot write (an upstream's integer past 64 bits) is the
    upstream's failure here as on the lean edge, whose answer is orjson's."""
    if not isinstance(result, dict | list):
        return 0
    try:
        return len(orjson.dumps(result, default=str))
    except orjson.JSONEncodeError as exc:
        raise InvalidResult(f"the result cannot be carried: {exc}") from None


def caller_of(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    scope = getattr(request, "scope", None)
    caller = scope.get(CALLER) if isinstance(scope, dict) else None
    if not isinstance(caller, Caller):
        raise MCPError(FORBIDDEN, "no authenticated caller for this message", {"code": "invalid_api_key"})
    return caller


def _progress(
    ctx: ServerRequestContext[Any, Any],
) -> Callable[[float, float | None, str | None], Awaitable[None]] | None:
    meta: Any = ctx.meta or {}
    token = meta.get("progress_token", meta.get("progressToken")) if isinstance(meta, dict) else None
    return ctx.session.report_progress if token is not None else None


async def remember_opening(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Middleware: an `initialize` leaves its session channel and negotiated revision for `sessions.track`."""
    result = await call_next(ctx)
    if ctx.method == "initialize" and isinstance(result, dict):
        scope = getattr(ctx.request, "scope", None)
        opening = scope.get(OPENING) if isinstance(scope, dict) else None
        if isinstance(opening, Opening):
            opening.peer, opening.version = ctx.session, str(result.get("protocolVersion") or "")
    return result


async def hold_request_id(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Middleware: the request's id stays in flight on its session until its handler has returned, even when
    its POST ended before (the client left: on a 2025 session that does not cancel the call)."""
    scope = getattr(ctx.request, "scope", None)
    hold = scope.get(HOLD) if isinstance(scope, dict) else None
    if not isinstance(hold, Hold):
        return await call_next(ctx)
    hold.enter()
    try:
        return await call_next(ctx)
    finally:
        hold.leave()


def build_server(service: McpService, recorder: Recorder, feed: ChangeFeed) -> Server[Any]:
    async def run(
        ctx: ServerRequestContext[Any, Any],
        method: str,
        name: str | None,
        fn: Callable[[Caller, McpRequest], Awaitable[Any]],
    ) -> Any:
        caller = caller_of(ctx)
        return await handle(recorder, caller, method, name, lambda req: fn(caller, req), _size)

    async def list_tools(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListToolsResult:
        tools = await run(ctx, "tools/list", None, lambda c, r: service.list_tools(c))
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        progress = _progress(ctx)

        async def go(c: Caller, r: McpRequest) -> dict[str, Any]:
            return await service.call_tool(c, r, params.name, params.arguments, progress)

        return types.CallToolResult.model_validate(await run(ctx, "tools/call", params.name, go))

    async def list_prompts(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListPromptsResult:
        prompts = await run(ctx, "prompts/list", None, lambda c, r: service.list_prompts(c))
        return types.ListPromptsResult(prompts=[types.Prompt.model_validate(p) for p in prompts])

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        found = await run(
            ctx, "prompts/get", params.name, lambda c, r: service.get_prompt(c, r, params.name, params.arguments)
        )
        return types.GetPromptResult.model_validate(found)

    async def list_resources(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListResourcesResult:
        found = await run(ctx, "resources/list", None, lambda c, r: service.list_resources(c))
        return types.ListResourcesResult(resources=[types.Resource.model_validate(r) for r in found])

    async def list_templates(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListResourceTemplatesResult:
        found = await run(ctx, "resources/templates/list", None, lambda c, r: service.list_resource_templates(c))
        return types.ListResourceTemplatesResult(
            resource_templates=[types.ResourceTemplate.model_validate(t) for t in found]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        found = await run(ctx, "resources/read", uri, lambda c, r: service.read_resource(c, r, uri))
        return types.ReadResourceResult.model_validate(found)

    server = GatewayServer(
        "owstack",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscriptions_listen=ListenHandler(feed.bus),
    )
    # no OpenTelemetry span per message (owstack records its own); the session record's two instead
    server.middleware[:] = [remember_opening, hold_request_id]
    return server
