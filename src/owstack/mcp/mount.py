"""Put `/mcp` on the gateway: the endpoint (and the egress proxy, when configured) built from the parts the
composition root hands over, and their routes.

The endpoint shares the gateway's key store, audit log, ledger writer, rate limiter and Prometheus registry,
so that tool traffic is authenticated, recorded and limited exactly like model traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from owstack.api.routes import Routes
from owstack.mcp.endpoint import PATHS, McpEndpoint
from owstack.mcp.proxy import EgressProxy

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway
    from owstack.api.http import Receive, Scope, Send
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.metering.stage import MeterStage
    from owstack.pipeline.context import RequestContext
    from owstack.pipeline.stage import Service
    from owstack.tenancy.keys import KeyStore
    from owstack.tenancy.limits import LimitStage


def mount(
    routes: Routes,
    config: Config,
    *,
    host: str,
    keystore: KeyStore | None,
    audit: AuditStage | None,
    meter: MeterStage,
    limits: LimitStage | None,
) -> list[Service]:
    """Add the MCP routes to `routes`; the services to start, in order (the proxy before the endpoint, so
    that the stdio servers the endpoint starts find it listening)."""
    services: list[Any] = []
    proxy_url = None
    if config.file.mcp.proxy.enabled:
        proxy = EgressProxy.from_config(config, keystore)
        services.append(proxy)
        proxy_url = proxy.url_for  # each stdio server's own credentials, on the port the proxy listens on
    endpoint = McpEndpoint(
        config,
        host=host,
        keystore=keystore,
        audit=audit,
        meter=meter,
        limit=limits,
        registry=meter.metrics.registry,
        proxy_url=proxy_url,
    )
    services.append(endpoint)

    async def route(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        scope["owstack.request_id"] = ctx.request_id
        await endpoint(scope, receive, send, ctx.headers)

    for method in ("POST", "GET", "DELETE"):
        routes.add(method, PATHS[0], route)
    for path in PATHS[1:]:
        routes.add("GET", path, route)
    return services
