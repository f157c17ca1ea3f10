"""Pipeline stage 6, limit: reserve rate and budget before the call, settle them after it.

    before  tenant without caps: nothing (a dict lookup). Otherwise one `Limiter.reserve`: refused when
            the month's spend is at or over `budget_usd_month`, or when the spend, the holds of requests
            in flight and this request's maximum cost (its hold, `usage.max_cost`: prompt estimate plus
            `max_tokens` at the dearest candidate's price) pass it (429 `budget_exceeded`), or when one
            more request or the request's estimated tokens do not fit (429 `rate_limit_exceeded`).
            Allowed and refused responses carry OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,
            tokens}`; refused ones `retry-after` (seconds) and `retry-after-ms`.
    after   settles the token bucket with the tokens used, releases the hold and charges the request's
            real cost to the month, whatever the outcome (one `Limiter.settle`, skipped when there is
            nothing to correct; on Redis it is held and sent with the tenant's next reservation or within
            `limits.flush_interval_ms`). Never raises.

While the store cannot be reached (Redis down or too slow), `limits.on_redis_error` decides for rate caps
and `limits.on_redis_error_budget` for tenants with a budget (default `deny`: a budget is money): `allow`
serves the request unchecked (`ctx.notes["limit_unchecked"]`, `owstack_limit_unchecked_total`, one
warning per outage), `deny` refuses it with 503 `limits_unavailable`. After an error, requests skip the
store for `limits.redis_retry_s` and follow the same rule, so an outage does not add a timeout to each.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from owstack.errors import ConfigError, RateLimited, ServiceUnavailable
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.storage.health import StoreHealth
from owstack.tenancy.limits.bucket import (
    Decision,
    Hold,
    Limiter,
    LimiterUnavailable,
    Rule,
    drain_s,
    month_of,
    remaining,
)
from owstack.tenancy.limits.config import LimitsSection, check_redis_url, limits_section
from owstack.tenancy.limits.usage import ledger_spend, max_cost, prompt_estimate, request_cost, used_tokens

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.metering.costs import Pricing, Utilization
    from owstack.metering.stage import MeterStage

log = logging.getLogger(__name__)
REASONS = ("requests", "tokens", "budget", "unavailable")
#: budget holds are named `<process prefix>-<counter>`: unique across the processes sharing a Redis
_HOLD_PREFIX = secrets.token_hex(6)
_hold_ids = itertools.count(1)


def rules_of(config: Config) -> dict[str, Rule]:
    """The caps of every tenant that has at least one."""
    rules = {}
    for name, t in config.file.tenants.items():
        if t.requests_per_minute or t.tokens_per_minute or t.budget_usd_month is not None:
            rules[name] = Rule(t.requests_per_minute, t.tokens_per_minute, t.budget_usd_month)
    return rules


def has_limits(config: Config) -> bool:
    return bool(rules_of(config))


def make_limiter(redis_url: str | None, section: LimitsSection) -> Limiter:
    if redis_url is None:
        from owstack.tenancy.limits.memory import MemoryLimiter

        return MemoryLimiter()
    try:
        check_redis_url(redis_url)
    except ValueError as exc:
        raise ConfigError(f"redis: {exc}") from None
    from owstack.tenancy.limits.redis_store import RedisLimiter

    return RedisLimiter(
        redis_url,
        prefix=section.prefix,
        timeout_s=section.redis_timeout_ms / 1000,
        max_connections=section.redis_max_connections,
        flush_interval_s=section.flush_interval_ms / 1000,
    )


@dataclass(slots=True)
class Reservation:
    """What `before` took for an admitted request (kept in `ctx.notes["limit"]` for `after`)."""

    rule: Rule
    tokens: int
    prompt: int
    #: the budget hold (None: no budget, or nothing priced among the candidates)
    hold: Hold | None = None


@dataclass(slots=True)
class Counters:
    """Plain numbers, written by the event loop only; `owstack.tenancy.limits.metrics` exports them."""

    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    unchecked: int = 0
    store_errors: int = 0


class LimitStage(BaseStage):
    name = "limit"

    def __init__(
        self,
        config: Config,
        *,
        meter: MeterStage | None = None,
        section: LimitsSection | None = None,
        limiter: Limiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`meter`: the gateway's meter stage, whose pricing and measured utilization price each request
        (without it, a Pricing of its own is resolved, with utilization taken as 1)."""
        self.section = section if section is not None else limits_section(config)
        self.rules = rules_of(config)
        self.limiter = limiter if limiter is not None else make_limiter(config.file.redis, self.section)
        self.clock = clock
        self.counters = Counters()
        self.storage_url = config.file.storage.url
        self.metering = config.file.metering.enabled
        self.store = _describe(config.file.redis)
        self.pricing: Pricing | None = None
        self.load: Mapping[str, Utilization] = {}
        if any(r.budget_usd is not None for r in self.rules.values()):
            self.pricing = meter.pricing if meter is not None else _pricing(config)
            if meter is not None and meter.writer is not None:
                self.load = meter.writer.load
            self._warn_uncosted(config)
        self._retry_at = 0.0
        self._outage = False
        #: the store's health for /metrics (the stage logs outages itself, with what they mean for requests)
        self.health = StoreHealth("limits", self.store, logs=False) if config.file.redis else None

    # lifecycle (gateway hooks) -------------------------------------------------------------------
    async def start(self) -> None:
        """Seed empty month-to-date spends from the ledger (off the event loop, once)."""
        budgeted = [t for t, r in self.rules.items() if r.budget_usd is not None]
        where = "per process" if self.store == "memory" else f"shared in {self.store}, prefix {self.section.prefix!r}"
        log.info("limits: caps for %d tenant(s), counted %s", len(self.rules), where)
        if budgeted and self.section.seed_from_ledger and self.metering:
            await self.seed(budgeted)

    async def aclose(self) -> None:
        await self.limiter.aclose()

    def unavailable(self) -> str | None:
        """Limits never make the gateway unready: an unreachable store is handled per request (fail mode)."""
        return None

    async def seed(self, tenants: list[str]) -> int:
        """Set each tenant's empty spend counter to its ledger total this month; how many were set."""
        now = self.clock()
        try:
            spends = await asyncio.wait_for(
                asyncio.to_thread(ledger_spend, self.storage_url, tenants, month_of(now).start), 30
            )
        except Exception as exc:
            log.warning("limits: month-to-date spend not read from the ledger (%s); budgets count from 0", exc)
            return 0
        seeded = 0
        for tenant, usd in spends.items():
            try:
                seeded += await self.limiter.seed(tenant, usd, now)
            except LimiterUnavailable as exc:
                self._failed(exc)
                return seeded
        if seeded:
            log.info("limits: month-to-date spend of %d tenant(s) taken from the ledger", seeded)
        return seeded

    # the hooks ----------------------------------------------------------------------------------
    async def before(self, ctx: RequestContext) -> None:
        rule = self.rules.get(ctx.tenant)
        if rule is None or ctx.policy is None:
            return
        prompt = tokens = 0
        hold = None
        if rule.tpm or rule.budget_usd is not None:
            prompt = prompt_estimate(ctx)
            asked = ctx.request.max_tokens if ctx.request is not None else None
            completion = asked if asked is not None else self.section.completion_estimate_tokens
            if rule.tpm:  # more than a minute's worth waits for a full one
                tokens = min(max(prompt + completion, 1), rule.tpm)
            if rule.budget_usd is not None:
                hold = self._hold(ctx, prompt, completion)
        if self._retry_at and time.monotonic() < self._retry_at:  # the store failed a moment ago
            self._unavailable(ctx, rule)
            return
        try:
            decision = await self.limiter.reserve(ctx.tenant, rule, tokens, self.clock(), hold)
        except LimiterUnavailable as exc:
            self._failed(exc)
            self._unavailable(ctx, rule)
            return
        if self._outage:
            self._recovered()
        if decision.allowed:
            _rate_headers(ctx.response_headers, rule, decision)
            ctx.notes["limit"] = Reservation(rule, tokens, prompt, hold)
            return
        reason = decision.reason or "requests"
        self.counters.refused[reason] += 1
        raise _refusal(ctx, rule, decision, tokens, self.clock(), hold)

    def _hold(self, ctx: RequestContext, prompt: int, completion: int) -> Hold | None:
        """The request's budget hold: its maximum cost on any candidate backend (None when that is 0)."""
        candidates = ctx.candidates or ([ctx.backend] if ctx.backend else [])
        usd = max_cost(self.pricing, self.load, candidates, prompt, completion, self.section.reserve_seconds)
        if usd <= 0.0:
            return None
        return Hold(f"{_HOLD_PREFIX}-{next(_hold_ids)}", usd, self.section.reservation_ttl_s)

    async def after(self, ctx: RequestContext) -> None:
        held = ctx.notes.get("limit")
        if not isinstance(held, Reservation):
            return
        try:
            rule = held.rule
            prompt, completion = used_tokens(ctx, held.prompt)
            delta = prompt + completion - held.tokens if rule.tpm else 0
            cost = 0.0
            if rule.budget_usd is not None:
                cost = request_cost(self.pricing, self.load, ctx, prompt, completion)
            if delta or cost > 0.0 or held.hold is not None:
                await self.limiter.settle(ctx.tenant, rule, delta, cost, self.clock(), held.hold)
        except Exception:  # limits must never turn a served request into an error
            log.exception("limits: request %s could not be settled", ctx.request_id)

    # the store's health -------------------------------------------------------------------------
    def _failed(self, exc: LimiterUnavailable) -> None:
        self.counters.store_errors += 1
        if self.health is not None:
            self.health.failed(str(exc))
        self._retry_at = time.monotonic() + self.section.redis_retry_s
        if not self._outage:
            self._outage = True
            rates, budgets = self.section.on_redis_error, self.section.on_redis_error_budget
            then = {
                ("allow", "allow"): "served unchecked",
                ("deny", "deny"): "refused with 503",
                ("allow", "deny"): "served unchecked, except those of tenants with a budget (refused with 503)",
                ("deny", "allow"): "refused with 503, except those of tenants with a budget (served unchecked)",
            }[(rates, budgets)]
            log.warning("limits: %s cannot be reached (%s); requests are %s until it is back", self.store, exc, then)

    def _recovered(self) -> None:
        self._outage = False
        if self.health is not None:
            self.health.succeeded()
        self._retry_at = 0.0
        log.warning("limits: %s is reachable again; caps are enforced", self.store)

    def _unavailable(self, ctx: RequestContext, rule: Rule) -> None:
        """Serve unchecked (`allow`) or raise 503 (`deny`), by the policy for this tenant's caps."""
        section = self.section
        policy = section.on_redis_error_budget if rule.budget_usd is not None else section.on_redis_error
        if policy == "allow":
            self.counters.unchecked += 1
            ctx.notes["limit_unchecked"] = True
            return
        self.counters.refused["unavailable"] += 1
        ctx.response_headers["retry-after"] = str(max(1, math.ceil(self.section.redis_retry_s)))
        raise ServiceUnavailable(
            "rate limits and budgets cannot be checked right now (their shared store is unreachable); "
            "try again shortly",
            code="limits_unavailable",
        )

    def _warn_uncosted(self, config: Config) -> None:
        pricing = self.pricing
        if pricing is None:
            return
        free = sorted(name for name, b in pricing.backends.items() if b.kind == "unknown")
        if free:
            log.warning(
                "limits: requests served by %s cost nothing to budget_usd_month (self-hosted without `hardware:`)",
                ", ".join(free),
            )


def _pricing(config: Config) -> Pricing:
    from owstack.metering.costs import Pricing

    return Pricing.from_config(config)


def _describe(url: str | None) -> str:
    """The store, named without credentials."""
    if url is None:
        return "memory"
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return f"Redis at {parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return "Redis"


def duration(seconds: float) -> str:
    """A wait in OpenAI's header format (Go durations): `0s`, `250ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    ms = math.ceil(seconds * 1000 - 1e-6)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    sec = f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)
    if hours:
        return f"{hours}h{minutes}m{sec}s"
    return f"{minutes}m{sec}s" if minutes else f"{sec}s"


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if abs(amount) >= 10 else f"${amount:.4f}"


def _rate_headers(headers: dict[str, str], rule: Rule, d: Decision) -> None:
    if rule.rpm:
        headers["x-ratelimit-limit-requests"] = str(rule.rpm)
        headers["x-ratelimit-remaining-requests"] = str(remaining(d.request_level, rule.rpm))
        headers["x-ratelimit-reset-requests"] = duration(drain_s(d.request_level, rule.rpm))
    if rule.tpm:
        headers["x-ratelimit-limit-tokens"] = str(rule.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(remaining(d.token_level, rule.tpm))
        headers["x-ratelimit-reset-tokens"] = duration(drain_s(d.token_level, rule.tpm))


def _refusal(ctx: RequestContext, rule: Rule, d: Decision, tokens: int, now: float, hold: Hold | None) -> RateLimited:
    headers = ctx.response_headers
    wait = max(d.retry_after_s, 0.001)
    headers["retry-after"] = str(max(1, math.ceil(wait)))
    headers["retry-after-ms"] = str(math.ceil(wait * 1000))
    tenant = ctx.tenant
    if d.reason == "budget":
        month = month_of(now)
        budget = rule.budget_usd or 0.0
        if d.spent_usd < budget and hold is not None:  # not spent yet: this request's hold does not fit now
            headers["retry-after"] = "1"
            headers["retry-after-ms"] = "1000"
            return RateLimited(
                f"budget: tenant {tenant!r} has spent {_usd(d.spent_usd)} of its {_usd(budget)} monthly budget "
                f"and requests in flight hold {_usd(d.held_usd)}; this request may cost up to {_usd(hold.usd)} "
                "(its prompt plus max_tokens at its backends' prices), which does not fit; lower max_tokens "
                "or retry when requests in flight have finished",
                code="budget_exceeded",
            )
        headers["x-should-retry"] = "false"  # the official SDKs would otherwise retry a 429 at once
        resets = datetime.fromtimestamp(month.end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return RateLimited(
            f"budget exhausted: tenant {tenant!r} has spent {_usd(d.spent_usd)} of its {_usd(rule.budget_usd or 0.0)} "
            f"monthly budget for {month.key} (UTC); it resets at {resets}",
            code="budget_exceeded",
        )
    _rate_headers(headers, rule, d)
    if d.reason == "tokens" and rule.tpm:
        free = remaining(d.token_level, rule.tpm)
        return RateLimited(
            f"rate limit: tenant {tenant!r} may use {rule.tpm:,} tokens per minute; this request reserves "
            f"{tokens:,} (its estimated prompt plus max_tokens) and {free:,} are available now; "
            f"retry in {wait:.1f} s or lower max_tokens"
        )
    return RateLimited(
        f"rate limit: tenant {tenant!r} may send {rule.rpm:,} requests per minute; retry in {wait:.1f} s"
    )
