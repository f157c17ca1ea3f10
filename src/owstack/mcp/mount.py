"""Put `/mcp` on the gateway: build the endpoint from the parts the gateway already has, and its routes.

The endpoint shares the gateway's key store (the authenticate stage's), audit log, ledger writer, rate
limiter and Prometheus registry, so that tool traffic is authenticated, recorded and limited exactly like
model traffic. This is the one place that knows where the gateway keeps those parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from owstack.mcp.endpoint import PATHS, McpEndpoint

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway, Handler
    from owstack.api.http import Receive, Scope, Send
    from owstack.pipeline.context import RequestContext


def mount(gw: Gateway) -> dict[str, dict[str, Handler]]:
    """The endpoint (added to the gateway's lifecycle hooks) and its route table entries."""
    from owstack.compliance.stage import AuditStage
    from owstack.metering.stage import MeterStage
    from owstack.tenancy.limits.stage import LimitStage
    from owstack.tenancy.stage import AuthenticateStage

    def find(kind: type[Any]) -> Any:
        return next((h for h in [*gw.hooks, *gw.pipeline.stages] if isinstance(h, kind)), None)

    auth = find(AuthenticateStage)
    proxy_url = None
    section = gw.config.file.mcp.proxy
    if section.enabled:
        from owstack.mcp.proxy import EgressProxy

        proxy = EgressProxy.from_config(gw.config)
        gw.hooks.append(proxy)  # started before the endpoint, so stdio servers find it listening
        proxy_url = proxy.url
    endpoint = McpEndpoint(
        gw.config,
        host=gw.host,
        keystore=auth.keystore if auth is not None else None,
        audit=find(AuditStage),
        meter=find(MeterStage),
        limit=find(LimitStage),
        registry=gw.metrics.registry if gw.metrics is not None else None,
        proxy_url=proxy_url,
    )
    gw.hooks.append(endpoint)

    async def route(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        scope["owstack.request_id"] = ctx.request_id
        await endpoint(scope, receive, send)

    return {PATHS[0]: {"POST": route, "GET": route, "DELETE": route}, **{p: {"GET": route} for p in PATHS[1:]}}
