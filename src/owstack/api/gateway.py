"""The gateway: built once from a `Config`, served as a plain ASGI application.

Gateway(config)                 backends, breakers, health checks, router, the stage list
await gateway(scope, ...)       a tiny route table -> one thin handler per endpoint
lifespan startup/shutdown       load models, start health checks, flush the ledger, close pools
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from owstack.api import admin
from owstack.api.anthropic_edge import AnthropicEdge
from owstack.api.handler import Edge, handle
from owstack.api.http import Receive, Scope, Send, header_dict, send_error
from owstack.api.openai_edge import OpenAIEdge
from owstack.backends.registry import build_backend
from owstack.config.load import Config
from owstack.errors import MethodNotAllowed, NotFound, OwstackError
from owstack.pipeline.build import build_pipeline
from owstack.pipeline.context import RequestContext
from owstack.routing.breaker import CircuitBreaker
from owstack.routing.call import Caller
from owstack.routing.health import HealthChecker
from owstack.routing.router import Router, Slot

log = logging.getLogger("owstack")
Handler = Callable[["Gateway", RequestContext, Scope, Receive, Send], Awaitable[None]]
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Request ids: a random per-process prefix and a counter, so that making one costs no system call (an
# os.urandom per request releases the GIL to the ledger writer on every request).
_ID_PREFIX = secrets.token_hex(6)
#: the cyclic GC's first-generation threshold once the gateway is up (CPython's default is 700)
GC_YOUNG_THRESHOLD = 10_000
_ids = itertools.count(1)


def _generation(edge: Edge) -> Handler:
    async def endpoint(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        await handle(gw, edge, ctx, scope, receive, send)

    return endpoint


class Gateway:
    def __init__(self, config: Config, *, host: str = "127.0.0.1") -> None:
        self.config = config
        self.host = host
        server = config.file.server
        self.max_body_bytes = server.max_body_bytes
        self.access_log = server.access_log or server.log_content
        self.log_content = server.log_content
        self.ai_marker_header = (b"x-owstack-ai-generated", b"true")
        routing = config.file.routing
        self.backends = {name: build_backend(name, section, config) for name, section in config.file.backends.items()}
        self.hooks: list[Any] = []  # objects with optional start()/aclose(): ledger writer, audit log ...
        self.metrics: Any = None
        self.slots = {
            name: Slot(
                name,
                backend,
                CircuitBreaker(
                    name,
                    routing.breaker.failure_threshold,
                    routing.breaker.reset_s,
                    on_change=self._breaker_changed,
                ),
            )
            for name, backend in self.backends.items()
        }
        self.health = HealthChecker(
            [b for name, b in self.backends.items() if config.file.backends[name].health_check],
            interval_s=routing.health.interval_s,
            timeout_s=routing.health.timeout_s,
            unhealthy_after=routing.health.unhealthy_after,
        )
        self.router = Router(config, self.slots, self.health)
        self.caller = Caller(self.router, routing.max_attempts)
        self._tokenizers: Any = None  # shared with the meter stage's ledger writer when metering is on
        self.pipeline = build_pipeline(self)
        self.ready = False
        self.routes: dict[str, dict[str, Handler]] = {
            "/v1/chat/completions": {"POST": _generation(OpenAIEdge())},
            "/v1/messages": {"POST": _generation(AnthropicEdge())},
            "/v1/models": {"GET": admin.list_models},
            "/healthz": {"GET": admin.healthz},
            "/readyz": {"GET": admin.readyz},
            "/metrics": {"GET": admin.metrics},
        }
        if config.file.mcp.servers:  # /mcp and its OAuth metadata; the mcp SDK loads only when configured
            from owstack.mcp.mount import mount

            self.routes.update(mount(self))

    async def token_counter(self, backend: str | None) -> Any:
        """A token counter for a backend's model (its GGUF vocabulary, or an estimate); loaded off the loop."""
        if self._tokenizers is None:
            from owstack.metering.tokens import Tokenizers

            self._tokenizers = Tokenizers(self.config)
        return await asyncio.to_thread(self._tokenizers.for_backend, backend)

    # events from routing -> metrics -----------------------------------------------------------------
    def _breaker_changed(self, backend: str, state: str) -> None:
        log.warning("circuit breaker of backend %s is now %s", backend, state)
        if self.metrics is not None:
            self.metrics.breaker_event(backend, state)

    # ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_dict(scope)
        client_id = headers.get("x-request-id")
        request_id = client_id if client_id and _CLIENT_ID.match(client_id) else f"req_{_ID_PREFIX}{next(_ids):012x}"
        client = scope.get("client")
        ctx = RequestContext(request_id=request_id, headers=headers, client=client[0] if client else None)
        methods = self.routes.get(scope["path"])
        handler = None if methods is None else methods.get(scope["method"])
        if handler is None:
            error: OwstackError = (
                NotFound(f"no route {scope['path']}")
                if methods is None
                else MethodNotAllowed(f"{scope['method']} is not allowed on {scope['path']}; use {', '.join(methods)}")
            )
            await send_error(send, error, [(b"x-request-id", request_id.encode())])
            return
        await handler(self, ctx, scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.error("start-up failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        for hook in self.hooks:
            start = getattr(hook, "start", None)
            if start is not None:
                await start()
        for backend in self.backends.values():
            await backend.start()
        await self.health.check_all()
        self.health.start()
        # Everything allocated so far lives as long as the process: keep the cyclic GC from rescanning it.
        gc.collect()
        gc.freeze()
        # Records waiting for the ledger writer (up to a batch of them, each a few GC-tracked objects) held
        # the young generation above 700 often enough for 1,239 collections and 0.42 s of CPU in a
        # 20-second benchmark; at 10,000 there was one (docs/metering.md, "Second pass").
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        self.ready = True
        log.info("owstack ready (pid %d): stages %s", os.getpid(), " -> ".join(self.pipeline.names))

    async def shutdown(self) -> None:
        self.ready = False
        await self.health.stop()
        for backend in self.backends.values():
            try:
                await backend.aclose()
            except Exception:
                log.exception("closing backend %s failed", backend.name)
        for hook in reversed(self.hooks):
            aclose = getattr(hook, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.exception("closing %r failed", hook)
