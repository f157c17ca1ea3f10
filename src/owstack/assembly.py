"""The composition root: the one place where the gateway is assembled, in order, from its configuration.

    assemble(config, host=, backends=, keystore=, clock=)
        build_stores      key store (or open mode), the Responses API's store
        build_backends    one per `backends:` entry (unless injected)
        MeterStage        metrics, tokenizers, the ledger writer
        build_routing     breakers, health checks, balancing policies, router, shared state (redis)
        build_stages      the pipeline, top to bottom (`stage_list`)
        build_app         wire protocols, route table (+ /mcp, /ui), services in start order -> Gateway

Every part is built here and handed what it needs; nothing reaches back into the gateway afterwards.
`assemble` takes injected parts (backends, a key store, the breakers' clock), so a test builds the whole
application in process with fakes and drives it as an ASGI app (`httpx.ASGITransport`), no subprocess needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from owstack.api import admin, count_tokens, models, responses
from owstack.api.browser import BrowserGuard
from owstack.api.gateway import Gateway, Protocols
from owstack.api.handler import handle
from owstack.api.http import Receive, Scope, Send
from owstack.api.routes import Handler, Routes
from owstack.backends.registry import build_backend
from owstack.compliance.metrics import AuditCollector
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
from owstack.routing.router import Router
from owstack.routing.slot import Slot
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
    from owstack.tenancy.keys import KeyStore

log = logging.getLogger("owstack")
DAY_S = 86_400.0


def assemble(
    config: Config,
    *,
    host: str = "127.0.0.1",
    backends: Mapping[str, Backend] | None = None,
    keystore: KeyStore | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Gateway:
    """The gateway for `config`, listening on `host` (which decides whether keys are required). Each step
    takes what the steps above it made; `backends` and `keystore` replace the ones the config describes,
    `clock` the monotonic clock the circuit breakers time their reset with."""
    stores = build_stores(config, host, keystore)
    engines = dict(backends) if backends is not None else build_backends(config)
    meter = MeterStage(config)  # metrics (always), tokenizers, and the ledger writer when metering is on
    routing = build_routing(config, engines, meter, clock)
    stages = build_stages(config, stores, routing, meter)
    return build_app(config, host, stores, engines, routing, stages, meter)


# the steps, in the order `assemble` takes them --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stores:
    """The databases the request path reads and writes besides the ledger (the meter stage owns that)."""

    #: API keys -> tenants; None in open mode (no tenants, loopback only)
    keys: KeyStore | None
    #: the Responses API's stored responses
    responses: ResponseStore


def build_stores(config: Config, host: str, keystore: KeyStore | None = None) -> Stores:
    """Keys are required unless no tenants are configured and the gateway listens on loopback only."""
    keys: KeyStore | None = None
    if config.file.tenants:
        from owstack.tenancy.keys import KeyStore  # SQLAlchemy: only a gateway with tenants needs it

        keys = keystore if keystore is not None else KeyStore.for_gateway(config)
    else:
        allowed, sentence = open_mode_allowed(config, host)
        if not allowed:
            raise ConfigError(sentence)
    section = config.file.responses
    return Stores(
        keys=keys,
        responses=ResponseStore(
            config.file.storage.url, section.retention_days * DAY_S, lease_s=section.background_lease_s
        ),
    )


def build_backends(config: Config) -> dict[str, Backend]:
    """One backend per `backends:` entry, not started yet (the gateway starts them at start-up)."""
    return {name: build_backend(name, section, config) for name, section in config.file.backends.items()}


@dataclass(slots=True)
class Routing:
    """A slot (backend and breaker) per backend, health checks, the router, and with `redis:` the state
    shared with the other instances."""

    slots: dict[str, Slot]
    health: HealthChecker
    router: Router
    shared: SharedRouting | None = None


def build_routing(
    config: Config, engines: Mapping[str, Backend], meter: MeterStage, clock: Callable[[], float] = time.monotonic
) -> Routing:
    """A breaker per backend (its events go to the metrics), health checks, replicas and fallbacks; with
    `redis:`, breaker, health, load and prefix decisions are shared with the other instances."""
    section = config.file.routing
    metrics = meter.metrics
    shared: SharedRouting | None = None  # made last (it needs the slots): the callbacks read it when called

    def breaker_changed(backend: str, state: str) -> None:
        log.warning("circuit breaker of backend %s is now %s", backend, state)
        metrics.breaker_event(backend, state)
        if shared is not None:
            shared.breaker_changed(backend, state)

    def health_changed(backend: str, healthy: bool) -> None:
        if shared is not None:
            shared.health_changed(backend, healthy)

    def prefix_recorded(replica: str, hashes: list[int]) -> None:
        if shared is not None:
            shared.prefix_recorded(replica, hashes)

    breaker = section.breaker
    slots = {
        name: Slot(
            name,
            engine,
            CircuitBreaker(name, breaker.failure_threshold, breaker.reset_s, on_change=breaker_changed, clock=clock),
        )
        for name, engine in engines.items()
    }
    checked = [engine for name, engine in engines.items() if config.file.backends[name].health_check]
    health = HealthChecker(
        checked,
        interval_s=section.health.interval_s,
        timeout_s=section.health.timeout_s,
        unhealthy_after=section.health.unhealthy_after,
        on_change=health_changed,
    )
    policies = build_policies(config, on_record=prefix_recorded)
    routing = Routing(slots, health, Router(config, slots, health, policies))
    metrics.registry.register(RoutingCollector(slots, health, prefix_policies(policies)))
    if config.file.redis and section.shared.enabled:
        from owstack.routing.shared import SharedCollector, SharedRouting  # redis-py: only when configured

        index = next(iter(prefix_policies(policies).values()), None)
        shared = routing.shared = SharedRouting(
            config.file.redis,
            key_prefix=config.file.limits.prefix,
            section=section.shared,
            slots=slots,
            health=health,
            index=index.index if index is not None else None,
            reset_s=breaker.reset_s,
        )
        metrics.registry.register(SharedCollector(shared))
    return routing


@dataclass(frozen=True, slots=True)
class Stages:
    """The pipeline, and the stages other parts also hold (the MCP gateway, the console, the services)."""

    pipeline: Pipeline
    audit: AuditStage | None
    auth: AuthenticateStage | None
    limits: LimitStage | None


def build_stages(config: Config, stores: Stores, routing: Routing, meter: MeterStage) -> Stages:
    audit = AuditStage(config) if config.file.audit.enabled else None
    if audit is not None:  # one log for both: the audit record carries the ledger's
        keys = stores.keys
        meter.journal_in(audit, key_ids=(lambda: [k.key_id for k in keys.list()]) if keys is not None else tuple)
        meter.metrics.registry.register(AuditCollector(audit))
    auth = AuthenticateStage(config, stores.keys) if stores.keys is not None else None
    limits = LimitStage(config, meter=meter) if has_limits(config) else None
    if limits is not None:
        meter.metrics.registry.register(LimitsCollector(limits.counters))
    stages = stage_list(
        audit=audit,
        meter=meter,
        auth=auth,
        route=RouteStage(config, routing.router),
        guard=_guard(config),
        shape=ShapeStage(config.file.reasoning),
        limits=limits,
        call=CallStage(Caller(routing.router, config.file.routing.max_attempts)),
    )
    return Stages(Pipeline(stages), audit, auth, limits)


def build_app(
    config: Config,
    host: str,
    stores: Stores,
    engines: Mapping[str, Backend],
    routing: Routing,
    stages: Stages,
    meter: MeterStage,
) -> Gateway:
    """The wire protocols, the route table (with `/mcp` and `/ui` when configured), the services in the order
    they start (closed in reverse) and the ASGI app that holds them."""
    section = config.file.responses
    protocols = Protocols(
        chat=OpenAIChat(),
        messages=AnthropicMessages(),
        responses=OpenAIResponses(section, stores.responses),
        completions=OpenAICompletions(),
        embeddings=OpenAIEmbeddings(),
    )
    background = responses.Background(
        section.max_background, stores.responses, grace_s=config.file.server.shutdown_grace_s
    )
    audit, limits = stages.audit, stages.limits
    services: list[Service] = [  # the authenticate stage reads the key table's revision while it runs
        s for s in (audit, meter, stages.auth, limits, stores.responses, background, routing.shared) if s is not None
    ]
    routes = route_table(protocols)
    if config.file.mcp.servers:  # the agents' tool traffic, under the same keys, limits, ledger and audit
        from owstack.mcp.mount import mount  # the MCP SDK: seconds of imports, only when configured

        services += mount(routes, config, host=host, keystore=stores.keys, audit=audit, meter=meter, limits=limits)
    services += console.mount(routes, config, host=host, keystore=stores.keys, audit=audit)  # /ui (owstack.ui)
    server = config.file.server
    return Gateway(
        config=config,
        host=host,
        routes=routes,
        pipeline=stages.pipeline,
        protocols=protocols,
        router=routing.router,
        slots=routing.slots,
        health=routing.health,
        backends=engines,
        services=services,
        background=background,
        metrics=meter.metrics,
        tokenizers=meter.tokenizers,
        auth=stages.auth,
        guard=BrowserGuard(
            origins=server.cors_allow_origins,
            open_mode=stages.auth is None,
            listen_host=host,
            allowed_hosts=server.allowed_hosts,
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
        audit,  # before: refuse while the log cannot be written; after: one chained record, fsynced, then the
        #         ledger's write-ahead record too (the response completes once both are on disk)
        meter,  # after only: /metrics, and the ledger record (write-ahead log, then the writer's thread)
        auth,  # before: API key -> tenant and its policy (absent in open loopback mode)
        ParseStage(),  # before: body -> ChatRequest by the request's wire protocol; size and nesting limits
        route,  # before: layer, candidates, layer permission, residency (fail closed), endpoint served
        guard,  # before: the candidates' control tokens made inert; injection flagged or blocked (absent: off)
        shape,  # before: the reasoning policy (request > header > tenant > layer)
        limits,  # before: rate caps and budget holds per tenant; after: the hold settled at the real cost
        call,  # before: the backend call, retries and fallback before the first byte; after: stream settled
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


def _guard(config: Config) -> Stage | None:
    section = config.file.security.guard
    if section.mode == "off" and not section.neutralize:
        return None
    return GuardStage(config)
