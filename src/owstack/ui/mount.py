"""Put the console on the gateway: `/ui` and everything below it, served by one `Console` built from the
parts the composition root hands over (its key store, its audit stage), and the service to start.

The console's routes are two exact paths and one template in the gateway's table: requests to `/v1/...`
never look at them. The gateway's routing state (health, breakers, outstanding requests) is read on the
event loop when a page asks for it, never copied or polled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from owstack.api.http import send_error
from owstack.api.routes import Routes
from owstack.errors import ServiceUnavailable

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway
    from owstack.api.http import Receive, Scope, Send
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.pipeline.context import RequestContext
    from owstack.pipeline.stage import Service
    from owstack.tenancy.keys import KeyStore
    from owstack.ui.console import Console

log = logging.getLogger("owstack.ui")
METHODS = ("GET", "HEAD", "POST")


def mount(
    routes: Routes, config: Config, *, host: str, keystore: KeyStore | None, audit: AuditStage | None
) -> list[Service]:
    """Add the console's routes to `routes` (unless `ui.enabled` is false); the service to start."""
    if not config.file.ui.enabled:
        return []
    console = LazyConsole(config, host=host, keystore=keystore, audit=audit)

    async def route(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            started = await console.ready()
        except Exception as exc:  # the gateway serves on; the console says why it cannot (and tries again)
            log.error("console: cannot start: %s", exc)
            await send_error(send, ServiceUnavailable(f"the console cannot start: {exc}"), [])
            return
        await started.handle(scope, receive, send, live=lambda: live_state(gw))

    for method in METHODS:
        for path in ("/ui", "/ui/", "/ui/{path*}"):
            routes.add(method, path, route)
    return [console]


class LazyConsole:
    """The console's service, built and started by the first request to `/ui`: a gateway whose console
    nobody opens never loads its templates, assets, SQL layer or admin audit log (the idle gateway's memory,
    docs/benchmarks.md)."""

    name = "console"

    def __init__(self, config: Config, *, host: str, keystore: KeyStore | None, audit: AuditStage | None) -> None:
        self._args = (config, host, keystore, audit)
        self._console: Console | None = None
        self._starting: asyncio.Future[None] | None = None

    async def ready(self) -> Console:
        """The started console; raises why it could not be built (the next request tries again)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        starting = self._starting
        try:
            await asyncio.shield(starting)
        except Exception:
            if self._starting is starting:
                self._starting = None
            raise
        assert self._console is not None
        return self._console

    async def _start(self) -> None:
        from owstack.ui.console import Console

        config, host, keystore, audit = self._args
        console = await asyncio.to_thread(Console, config, host=host, keystore=keystore, audit=audit)
        await console.start()
        self._console = console

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._console is not None:
            await self._console.aclose()

    def unavailable(self) -> str | None:
        """Never: the console's trouble is shown on its pages, and must not take the gateway out of service."""
        return None


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
