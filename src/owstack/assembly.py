"""The composition root: the one place where the gateway is assembled, in order, from its configuration.

    config -> backends -> metering (metrics, tokenizers, ledger) -> routing (breakers, health, router, caller)
           -> stages (the pipeline, top to bottom) -> wire protocols and their stores -> routes -> Gateway

Every part is built here and handed what it needs; nothing reaches back into the gateway afterwards.
`assemble` takes injected parts (backends, a key store), so a test builds the whole application in process
with fakes and drives it as an ASGI app (`httpx.ASGITransport`), no subprocess needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from owstack.api import admin, count_tokens, models, responses
from owstack.api.browser import BrowserGuard
from owstack.api.gateway import Gateway, Protocols
from owstack.api.handler import handle
from owstack.api.http import Receive, Scope, Send
from owstack.api.routes import Handler, Routes
from owstack.backends.registry import build_backend
from owstack.compliance.stage import AuditStage
from owstack.errors import ConfigError
from owstack.metering.stage import MeterStage
from owstack.pipeline.call import CallStage
from owstack.pipeline.guard import GuardStage
from owstack.pipeline.parse import ParseStage
from owstack.pipeline.pipeline import Pipeline
from owstack.pipeline.route import RouteStage
from owstack.pipeline.shape import ShapeStage
from owstack.pipeline.stage import Service, Stage
from owstack.protocols.anthropic import AnthropicMessages
from owstack.protocols.base import WireProtocol
from owstack.protocols.openai_chat import OpenAIChat
from owstack.protocols.openai_legacy import OpenAICompletions, OpenAIEmbeddings
from owstack.protocols.responses import OpenAIResponses
from owstack.protocols.responses.store import ResponseStore
from owstack.routing.balance import build_policies, prefix_policies
from owstack.routing.breaker import CircuitBreaker
from owstack.routing.call import Caller
from owstack.routing.collector import RoutingCollector
from owstack.routing.health import HealthChecker
from owstack.routing.router import Router, Slot
from owstack.tenancy.keys import KeyStore
from owstack.tenancy.limits import LimitStage, has_limits
from owstack.tenancy.limits.metrics import LimitsCollector
from owstack.tenancy.openmode import open_mode_allowed
from owstack.tenancy.stage import AuthenticateStage
from owstack.ui import mount as console

if TYPE_CHECKING:
    from owstack.backends.base import Backend
    from owstack.config.load import Config
    from owstack.pipeline.context import RequestContext
    from owstack.routing.shared import SharedRouting

log = logging.getLogger("owstack")
DAY_S = 86_400.0


def assemble(
    config: Config,
    *,
    host: str = "127.0.0.1",
    backends: Mapping[str, Backend] | None = None,
    keystore: KeyStore | None = None,
) -> Gateway:
    """The gateway for `config`, listening on `host` (which decides whether keys are required)."""
    engines = dict(backends) if backends is not None else _backends(config)
    meter = MeterStage(config)  # metrics (always), tokenizers, and the ledger writer when metering is on

    # routing: a breaker per backend (its events go to the metrics), health checks, replicas and fallbacks;
    # with `redis:`, breaker, health, load and prefix decisions are shared with the other instances
    routing = config.file.routing
    shared: SharedRouting | None = None

    def breaker_changed(backend: str, state: str) -> None:
        log.warning("circuit breaker of backend %s is now %s", backend, state)
        meter.metrics.breaker_event(backend, state)
        if shared is not None:
            shared.breaker_changed(backend, state)

    def health_changed(backend: str, healthy: bool) -> None:
        if shared is not None:
            shared.health_changed(backend, healthy)

    def prefix_recorded(replica: str, hashes: list[int]) -> None:
        if shared is not None:
            shared.prefix_recorded(replica, hashes)

    slots = {
        name: Slot(
            name,
            engine,
            CircuitBreaker(name, routing.breaker.failure_threshold, routing.breaker.reset_s, on_change=breaker_changed),
        )
        for name, engine in engines.items()
    }
    checked = [engine for name, engine in engines.items() if config.file.backends[name].health_check]
    health = HealthChecker(
        checked,
        interval_s=routing.health.interval_s,
        timeout_s=routing.health.timeout_s,
        unhealthy_after=routing.health.unhealthy_after,
        on_change=health_changed,
    )
    policies = build_policies(config, on_record=prefix_recorded)
    router = Router(config, slots, health, policies)
    meter.metrics.registry.register(RoutingCollector(slots, health, prefix_policies(policies)))
    if config.file.redis and routing.shared.enabled:
        from owstack.routing.shared import SharedCollector, SharedRouting  # redis-py: only when configured

        index = next(iter(prefix_policies(policies).values()), None)
        shared = SharedRouting(
            config.file.redis,
            key_prefix=config.file.limits.prefix,
            section=routing.shared,
            slots=slots,
            health=health,
            index=index.index if index is not None else None,
            reset_s=routing.breaker.reset_s,
        )
        meter.metrics.registry.register(SharedCollector(shared))

    # the stages, top to bottom (see `stage_list` for why in this order)
    audit = AuditStage(config) if config.file.audit.enabled else None
    auth = _authenticate(config, host, keystore)
    limits = LimitStage(config, meter=meter) if has_limits(config) else None
    if limits is not None:
        meter.metrics.registry.register(LimitsCollector(limits.counters))
    pipeline = Pipeline(
        stage_list(
            audit=audit,
            meter=meter,
            auth=auth,
            route=RouteStage(config, router),
            guard=_guard(config),
            shape=ShapeStage(config.file.reasoning),
            limits=limits,
            call=CallStage(Caller(router, routing.max_attempts)),
        )
    )

    # wire protocols, and the Responses API's store of responses
    section = config.file.responses
    store = ResponseStore(config.file.storage.url, section.retention_days * DAY_S)
    protocols = Protocols(
        chat=OpenAIChat(),
        messages=AnthropicMessages(),
        responses=OpenAIResponses(section, store),
        completions=OpenAICompletions(),
        embeddings=OpenAIEmbeddings(),
    )
    background = responses.Background(section.max_background)

    server = config.file.server
    open_mode = auth is None
    services: list[Service] = [s for s in (audit, meter, auth, limits, store, background, shared) if s is not None]
    routes = route_table(protocols)
    if config.file.mcp.servers:  # the agents' tool traffic, under the same keys, limits, ledger and audit
        from owstack.mcp.mount import mount  # the MCP SDK: seconds of imports, only when configured

        keys = auth.keystore if isinstance(auth, AuthenticateStage) else None
        services += mount(routes, config, host=host, keystore=keys, audit=audit, meter=meter, limits=limits)
    keystore = auth.keystore if isinstance(auth, AuthenticateStage) else None
    services += console.mount(routes, config, host=host, keystore=keystore, audit=audit)  # /ui (owstack.ui)
    return Gateway(
        config=config,
        host=host,
        routes=routes,
        pipeline=pipeline,
        protocols=protocols,
        router=router,
        slots=slots,
        health=health,
        backends=engines,
        services=services,
        background=background,
        metrics=meter.metrics,
        tokenizers=meter.tokenizers,
        auth=auth,
        guard=BrowserGuard(
            origins=server.cors_allow_origins, open_mode=open_mode, listen_host=host, allowed_hosts=server.allowed_hosts
        ),
    )


def stage_list(
    *,
    audit: Stage | None,
    meter: Stage,
    auth: Stage | None,
    route: Stage,
    guard: Stage | None,
    shape: Stage,
    limits: Stage | None,
    call: Stage,
) -> list[Stage]:
    """The request pipeline, an onion: befores top to bottom, afters bottom to top (pipeline/stage.py).

    Audit and meter sit outermost so that their after-hooks see every request, refused ones included, and
    audit's before-hook can refuse service while the log cannot be written; the backend call sits innermost.
    Guard follows route because the control tokens it neutralises are those of the candidates' templates.
    """
    stages: list[Stage | None] = [
        audit,  # before: refuse if the log cannot be written; after: one chained record, durable
        meter,  # after: tokens, latency, costs -> ledger (off the hot path) and /metrics
        auth,  # API key -> tenant and its policy (absent in open loopback mode)
        ParseStage(),  # body -> ChatRequest, by the request's wire protocol; size and depth limits
        route,  # layer, candidates, layer permission, residency (fail closed)
        guard,  # neutralise the candidates' control tokens; flag or block injection
        shape,  # reasoning policy (request > header > tenant > layer)
        limits,  # rate caps and monthly budgets per tenant (memory, or Redis when shared)
        call,  # backend call: retries and fallback before the first byte; breakers settled after
    ]
    return [stage for stage in stages if stage is not None]


def route_table(protocols: Protocols) -> Routes:
    routes = Routes()
    routes.add("POST", "/v1/chat/completions", generation(protocols.chat))
    routes.add("POST", "/v1/completions", generation(protocols.completions))
    routes.add("POST", "/v1/embeddings", generation(protocols.embeddings))
    routes.add("POST", "/v1/messages", generation(protocols.messages))
    routes.add("POST", "/v1/messages/count_tokens", count_tokens.count_tokens)
    routes.add("POST", "/v1/responses", responses.create)
    routes.add("GET", "/v1/responses/{id}", responses.retrieve)
    routes.add("DELETE", "/v1/responses/{id}", responses.delete)
    routes.add("POST", "/v1/responses/{id}/cancel", responses.cancel)
    routes.add("GET", "/v1/responses/{id}/input_items", responses.input_items)
    routes.add("GET", "/v1/models", models.list_models)
    routes.add("GET", "/v1/models/{id*}", models.get_model)
    routes.add("GET", "/healthz", admin.healthz)
    routes.add("GET", "/readyz", admin.readyz)
    routes.add("GET", "/metrics", admin.metrics)
    return routes


def generation(wire: WireProtocol) -> Handler:
    """The route handler of a generation endpoint: the one handler, speaking `wire`."""

    async def endpoint(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        await handle(gw, wire, ctx, scope, receive, send)

    return endpoint


def _backends(config: Config) -> dict[str, Backend]:
    return {name: build_backend(name, section, config) for name, section in config.file.backends.items()}


def _authenticate(config: Config, host: str, keystore: KeyStore | None) -> AuthenticateStage | None:
    """Keys are required unless no tenants are configured and the gateway listens on loopback only."""
    if not config.file.tenants:
        allowed, sentence = open_mode_allowed(config, host)
        if allowed:
            return None
        raise ConfigError(sentence)
    return AuthenticateStage(config, keystore if keystore is not None else KeyStore.for_gateway(config))


def _guard(config: Config) -> Stage | None:
    section = config.file.security.guard
    if section.mode == "off" and not section.neutralize:
        return None
    return GuardStage(config)
