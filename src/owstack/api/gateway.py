"""The gateway as a plain ASGI application, made of parts the composition root (`owstack.assembly`) built.

    await gateway(scope, receive, send)     the route table -> one thin handler per endpoint
    lifespan startup/shutdown               services started in order (then backends and health checks),
                                            closed in reverse

Nothing here constructs a part: tests assemble a gateway with fake backends and drive it in process. Nor
does it import the handlers' modules (they import it: a handler takes the gateway): the route table is
whatever `RouteTable` describes (`api/routes.Routes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from owstack.api import browser
from owstack.api.answers import is_mcp, json_rpc_error
from owstack.api.http import Receive, Scope, Send, error_headers, header_dict, send_json
from owstack.errors import InternalError, MethodNotAllowed, NotFound, OwstackError
from owstack.pipeline.context import RequestContext
from owstack.pipeline.pipeline import Pipeline
from owstack.pipeline.stage import Service, Stage
from owstack.protocols.base import WireProtocol

if TYPE_CHECKING:
    from owstack.backends.base import Backend
    from owstack.config.load import Config
    from owstack.routing.health import HealthChecker
    from owstack.routing.router import Router
    from owstack.routing.slot import Slot

log = logging.getLogger("owstack")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Request ids: a random per-process prefix and a counter, so that making one costs no system call (an
# os.urandom per request releases the GIL to the ledger writer on every request).
_ID_PREFIX = secrets.token_hex(6)
#: the cyclic GC's first-generation threshold once the gateway is up (CPython's default is 700)
GC_YOUNG_THRESHOLD = 10_000
_ids = itertools.count(1)


#: a route's handler: the gateway, the request's context and the ASGI triple
Handler = Callable[["Gateway", RequestContext, Scope, Receive, Send], Awaitable[None]]


class RouteTable(Protocol):
    def find(self, path: str, /) -> tuple[Mapping[str, Handler] | None, dict[str, str]]:
        """The handlers by method for `path` (None: no such path) and its path parameters."""
        ...


@dataclass(frozen=True, slots=True)
class Protocols:
    """The wire protocols the gateway speaks (one object each, shared by all requests)."""

    chat: WireProtocol
    messages: WireProtocol
    responses: WireProtocol
    completions: WireProtocol
    embeddings: WireProtocol


class Gateway:
    def __init__(
        self,
        *,
        config: Config,
        host: str,
        routes: RouteTable,
        pipeline: Pipeline,
        protocols: Protocols,
        router: Router,
        slots: Mapping[str, Slot],
        health: HealthChecker,
        backends: Mapping[str, Backend],
        services: Sequence[Service],
        background: Any,
        metrics: Any,
        tokenizers: Any,
        auth: Stage | None,
        guard: browser.BrowserGuard,
    ) -> None:
        self.config = config
        self.host = host
        server = config.file.server
        self.max_body_bytes = server.max_body_bytes
        self.access_log = server.access_log or server.log_content
        self.log_content = server.log_content
        self.ai_marker_header = (b"x-owstack-ai-generated", b"true")
        self.routes = routes
        self.pipeline = pipeline
        self.protocols = protocols
        self.router = router
        self.slots = slots
        self.health = health
        self.backends = backends
        self.services = tuple(services)
        #: the Responses API's background tasks (`api.responses.Background`, typed where it is used)
        self.background = background
        self.metrics = metrics
        self.tokenizers = tokenizers
        self._counters: dict[str | None, Any] = {}
        self.auth = auth
        self.browser = guard
        self.ready = False

    async def authenticate(self, ctx: RequestContext) -> None:
        """For endpoints outside the pipeline (stored responses, models, token counts): key -> tenant."""
        if self.auth is not None:
            await self.auth.before(ctx)

    async def token_counter(self, backend: str | None) -> Any:
        """A token counter for a backend's model (its GGUF vocabulary, or an estimate); loaded off the loop
        the first time, a dictionary lookup after that."""
        counter = self._counters.get(backend)
        if counter is None:
            counter = self._counters[backend] = await asyncio.to_thread(self.tokenizers.for_backend, backend)
        return counter

    async def count(self, counter: Any, fn: Any, *args: Any) -> int:
        """Run a counting function: inline for an estimate (microseconds), on a thread for a real vocabulary."""
        if not counter.exact:
            return int(fn(*args))
        return int(await asyncio.to_thread(fn, *args))

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
        path, method = scope["path"], scope["method"]
        methods, params = self.routes.find(path)
        try:
            if method == "OPTIONS" and self.browser.preflight(headers):
                await self.browser.answer_preflight(headers, methods, send)
                return
            send = self.browser.wrap(scope, headers, send)
            self.browser.check(scope, headers, methods)
            handler = None if methods is None else methods.get(method)
            if handler is None:
                raise (
                    NotFound(f"no route {method} {path}")
                    if methods is None
                    else MethodNotAllowed(f"{method} is not allowed on {path}; use {', '.join(methods)}")
                )
            scope["path_params"] = params
            await handler(self, ctx, scope, receive, send)
        except OwstackError as exc:
            await self.send_error(ctx, path, exc, send)
        except Exception:
            # A bug outside the generation handler (which has its own): logged once with its traceback, and
            # the client gets a 500 in its API's shape with the request id, never the server's bare text.
            log.exception("request %s (%s %s) failed", ctx.request_id, method, path)
            with contextlib.suppress(Exception):  # fails when the response had started: the server closes it
                await self.send_error(ctx, path, InternalError(ctx.request_id), send)

    async def send_error(self, ctx: RequestContext, path: str, error: OwstackError, send: Send) -> None:
        """An error outside the pipeline, in the shape of the protocol the path (or the client) speaks."""
        if is_mcp(path):
            extra = [(b"x-request-id", ctx.request_id.encode())]
            body = json_rpc_error(error.status, error.message, error.code or error.type)
            await send_json(send, error.status, body, error_headers(error, extra))
            return
        anthropic = path.startswith("/v1/messages") or "anthropic-version" in ctx.headers
        wire = self.protocols.messages if anthropic else self.protocols.chat
        status, body = wire.error(error, ctx.request_id)
        extra = [(b"x-request-id", ctx.request_id.encode())]
        if anthropic:
            extra.append((b"request-id", ctx.request_id.encode()))
        await send_json(send, status, body, error_headers(error, extra))

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
        for service in self.services:
            await service.start()
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
        if self.background is not None:  # its responses call the backends: they finish (or are cut) first
            try:
                await self.background.aclose()
            except Exception:
                log.exception("closing the background responses failed")
        await self.health.stop()
        for backend in self.backends.values():
            try:
                await backend.aclose()
            except Exception:
                log.exception("closing backend %s failed", backend.name)
        for service in reversed(self.services):
            try:
                await service.aclose()
            except Exception:
                log.exception("closing %s failed", service.name)

    def cut(self) -> None:
        """The requests in flight are about to be cut (the shutdown grace is over): tell the services that
        serve requests of their own (the MCP edge), so that they record the cancels that follow as cuts."""
        for service in self.services:
            cut = getattr(service, "cut", None)
            if cut is not None:
                cut()

    def unavailable(self) -> dict[str, str]:
        """The services that cannot serve right now, and why (for /readyz)."""
        problems = {}
        for service in self.services:
            problem = service.unavailable()
            if problem:
                problems[service.name] = problem
        return problems
