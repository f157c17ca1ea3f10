"""Put the console on the gateway: `/ui` and everything below it, served by one `Console` built from the
parts the composition root hands over (its key store, its audit stage), and the service to start.

The console's routes are two exact paths and one template in the gateway's table: requests to `/v1/...`
never look at them. The gateway's routing state (health, breakers, outstanding requests) is read on the
event loop when a page asks for it, never copied or polled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from owstack.api.routes import Routes
from owstack.ui.console import Console

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway
    from owstack.api.http import Receive, Scope, Send
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.pipeline.context import RequestContext
    from owstack.pipeline.stage import Service
    from owstack.tenancy.keys import KeyStore

METHODS = ("GET", "HEAD", "POST")


def mount(
    routes: Routes, config: Config, *, host: str, keystore: KeyStore | None, audit: AuditStage | None
) -> list[Service]:
    """Add the console's routes to `routes` (unless `ui.enabled` is false); the service to start."""
    if not config.file.ui.enabled:
        return []
    console = Console(config, host=host, keystore=keystore, audit=audit)

    async def route(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        await console.handle(scope, receive, send, live=lambda: live_state(gw))

    for method in METHODS:
        for path in ("/ui", "/ui/", "/ui/{path*}"):
            routes.add(method, path, route)
    return [console]


def live_state(gw: Gateway) -> dict[str, Any]:
    """The gateway's routing state now: per backend its breaker, health check and outstanding requests."""
    backends = {}
    for name, slot in gw.slots.items():
        breaker = slot.breaker
        health = gw.health.state.get(name)
        backends[name] = {
            "breaker": breaker.state,
            "breaker_failures": breaker.failures,
            "available": breaker.available(),
            "outstanding": slot.outstanding,
            "checked": health is not None and health.checked,
            "health_checked": health is not None,
            "healthy": gw.health.healthy(name),
            "health_failures": health.failures if health is not None else 0,
        }
    return {"ready": gw.ready, "backends": backends, "unavailable": gw.unavailable()}
