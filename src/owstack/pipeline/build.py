"""The request pipeline, top to bottom. This list is the one place that says what happens to a request.

It is an onion: `before` hooks run top to bottom on the way in, `after` hooks bottom to top on the way out
(see pipeline/stage.py). Audit and meter sit outermost so that their after-hooks see every request, refused
ones included, and audit's before-hook can refuse service while the log cannot be written; the backend call
sits innermost. Guard follows route because the control tokens it neutralises are those of the candidate
backends' template families.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from owstack.errors import ConfigError
from owstack.pipeline.call import CallStage
from owstack.pipeline.parse import ParseStage
from owstack.pipeline.pipeline import Pipeline
from owstack.pipeline.route import RouteStage
from owstack.pipeline.shape import ShapeStage
from owstack.pipeline.stage import Stage

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway


def build_pipeline(gw: Gateway) -> Pipeline:
    config = gw.config
    stages: list[Stage] = [
        *audit(gw),  # 9 before: refuse if the log cannot be written; after: one chained record, durable
        *meter(gw),  # 8 after: tokens, latency, costs -> ledger (off the hot path) and /metrics
        *authenticate(gw),  # 1 API key -> tenant and its policy
        ParseStage(),  # 2 body -> ChatRequest; size limit, schema, `param` on errors
        RouteStage(config, gw.router),  # 4 layer, candidates, residency (fail closed)
        *guard(gw),  # 3 neutralise the candidates' control tokens; flag or block injection
        ShapeStage(config.file.reasoning),  # 5 reasoning policy
        *limit(gw),  # 6 rate caps and monthly budgets per tenant (memory, or Redis when shared)
        CallStage(gw.caller),  # 7 backend call: retries and fallback before the first byte
    ]
    return Pipeline(stages)


def audit(gw: Gateway) -> list[Stage]:
    if not gw.config.file.audit.enabled:
        return []
    from owstack.compliance.stage import AuditStage

    stage = AuditStage(gw.config)
    gw.hooks.append(stage)  # opens the log and records `config.loaded` at start, seals it at shutdown
    return [stage]


def meter(gw: Gateway) -> list[Stage]:
    """Always present for /metrics; the ledger writer only with `metering.enabled`."""
    from owstack.metering.stage import MeterStage
    from owstack.routing.collector import RoutingCollector

    stage = MeterStage(gw.config)
    gw.metrics = stage.metrics
    gw._tokenizers = stage.tokenizers  # one vocabulary per model, for the ledger and for counted usage
    stage.metrics.registry.register(RoutingCollector(gw.slots, gw.health))
    gw.hooks.append(stage)  # migrates and starts the ledger writer at start, flushes it at shutdown
    return [stage]


def authenticate(gw: Gateway) -> list[Stage]:
    """Keys are required unless no tenants are configured and the gateway listens on loopback only."""
    from owstack.tenancy import open_mode_allowed

    config = gw.config
    if not config.file.tenants:
        allowed, sentence = open_mode_allowed(config, gw.host)
        if allowed:
            return []
        raise ConfigError(sentence)
    from owstack.tenancy.keys import KeyStore
    from owstack.tenancy.stage import AuthenticateStage

    return [AuthenticateStage(config, KeyStore(config.file.storage.url))]


def guard(gw: Gateway) -> list[Stage]:
    section = gw.config.file.security.guard
    if section.mode == "off" and not section.neutralize:
        return []
    from owstack.pipeline.guard import GuardStage

    return [GuardStage(gw.config)]


def limit(gw: Gateway) -> list[Stage]:
    """Rate caps and monthly budgets; absent unless some tenant has one (docs/tenancy.md)."""
    from owstack.tenancy.limits import LimitStage, has_limits

    if not has_limits(gw.config):
        return []
    from owstack.metering.stage import MeterStage
    from owstack.tenancy.limits.metrics import LimitsCollector

    meter = next((hook for hook in gw.hooks if isinstance(hook, MeterStage)), None)
    stage = LimitStage(gw.config, meter=meter)  # priced like the ledger, with its measured utilization
    if gw.metrics is not None:
        gw.metrics.registry.register(LimitsCollector(stage.counters))
    gw.hooks.append(stage)  # seeds month-to-date spend from the ledger at start, closes Redis at shutdown
    return [stage]
