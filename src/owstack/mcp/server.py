"""The `mcp` SDK server that clients talk to: one handler per MCP method, each a thin wrapper.

A handler finds the caller the endpoint authenticated (on the ASGI scope of the HTTP request that carried
the message), checks the audit log and the tenant's rate cap, runs one `McpService` method, maps owstack's
typed errors to JSON-RPC errors (`owstack.mcp.errors`), and records the request (audit, ledger, metrics)
before the answer leaves. Cancellation needs nothing here: the SDK cancels the handler's task when the
client cancels, and the upstream client sends `notifications/cancelled` for the call in flight.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError

from owstack import __version__
from owstack.errors import OwstackError
from owstack.mcp.errors import FORBIDDEN, to_mcp
from owstack.mcp.policy import Caller
from owstack.mcp.records import McpRequest, Recorder
from owstack.mcp.service import McpService

#: the ASGI scope key under which the endpoint leaves the authenticated `Caller`
CALLER = "owstack.mcp.caller"
R = TypeVar("R")
INSTRUCTIONS = (
    "owstack MCP gateway: tools of several servers, named server.tool. Calls are authorized per tenant, "
    "tool definitions are pinned, and results are checked for prompt injection and secrets."
)


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


def _fresh(result: dict[str, Any]) -> dict[str, Any]:
    """An upstream's result without the envelope fields its own revision stamped (`resultType`, `ttlMs`,
    the upstream's server info in `_meta`): the SDK stamps this connection's own."""
    out = {k: v for k, v in result.items() if k not in ("resultType", "ttlMs", "cacheScope")}
    meta = out.get("_meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol/")}
        out["_meta"] = meta or None
        if not meta:
            del out["_meta"]
    return out


def build_server(service: McpService, recorder: Recorder) -> Server[Any]:
    async def run(
        ctx: ServerRequestContext[Any, Any],
        method: str,
        name: str | None,
        fn: Callable[[Caller, McpRequest], Awaitable[R]],
    ) -> R:
        caller = caller_of(ctx)
        req = McpRequest(caller.request_id, caller.tenant, caller.key_id, caller.client, method, name=name)
        try:
            recorder.check_audit()
            await recorder.admit(caller.tenant)
            result = await fn(caller, req)
            req.result_bytes = len(json.dumps(result, default=str)) if isinstance(result, dict | list) else 0
        except OwstackError as exc:
            req.fail(exc.code, exc.status, refused=exc.status < 500)
            await recorder.finish(req)
            raise to_mcp(exc) from None
        except MCPError as exc:
            req.fail(f"upstream_{exc.code}", 502, refused=False)
            await recorder.finish(req)
            raise
        except BaseException:  # cancelled by the client, or an unexpected failure
            req.fail("cancelled", 499, refused=False)
            with anyio.CancelScope(shield=True):
                await recorder.finish(req)
            raise
        try:
            await recorder.finish(req)
        except OwstackError as exc:
            raise to_mcp(exc) from None
        return result

    async def list_tools(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListToolsResult:
        tools = await run(ctx, "tools/list", None, lambda c, r: service.list_tools(c))
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        progress = _progress(ctx)

        async def go(c: Caller, r: McpRequest) -> dict[str, Any]:
            return await service.call_tool(c, r, params.name, params.arguments, progress)

        return types.CallToolResult.model_validate(_fresh(await run(ctx, "tools/call", params.name, go)))

    async def list_prompts(ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListPromptsResult:
        prompts = await run(ctx, "prompts/list", None, lambda c, r: service.list_prompts(c))
        return types.ListPromptsResult(prompts=[types.Prompt.model_validate(p) for p in prompts])

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        found = await run(
            ctx, "prompts/get", params.name, lambda c, r: service.get_prompt(c, r, params.name, params.arguments)
        )
        return types.GetPromptResult.model_validate(_fresh(found))

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
        return types.ReadResourceResult.model_validate(_fresh(found))

    server: Server[Any] = Server(
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
    )
    server.middleware.clear()  # no OpenTelemetry span per message: owstack records its own
    return server
