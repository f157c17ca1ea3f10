"""LimitStage: headers and refusals, token estimates and settlement with the real usage, costs from the
metering package's pricing, seeding from the ledger, and a Redis that is down (fail open, fail closed)
or goes away and comes back (a redis-server process of the test's own)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from owstack.config.load import Config
from owstack.errors import ConfigError, RateLimited, ServiceUnavailable
from owstack.metering.costs import Pricing, Utilization
from owstack.metering.ledger import write_batch
from owstack.pipeline.context import Attempt, RequestContext
from owstack.storage import migrate
from owstack.storage.db import engine
from owstack.tenancy.limits import LimitStage, has_limits
from owstack.tenancy.limits.bucket import Limiter, Rule
from owstack.tenancy.limits.config import LimitsSection, check_redis_url
from owstack.tenancy.limits.memory import MemoryLimiter
from owstack.tenancy.limits.metrics import LimitsCollector
from owstack.tenancy.limits.redis_store import RedisLimiter
from owstack.tenancy.limits.stage import duration
from owstack.types import Usage
from procs import free_port

from .limits_support import REDIS_URL, T0, Clock, config, context, prefix

__all__ = ["prefix"]  # fixture


def before(stage: LimitStage, ctx: RequestContext) -> RequestContext:
    asyncio.run(stage.before(ctx))
    return ctx


def refused(stage: LimitStage, ctx: RequestContext) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        asyncio.run(stage.before(ctx))
    assert info.value.status == 429 and info.value.body()["error"]["type"] == "rate_limit_error"
    return info.value


def served(stage: LimitStage, ctx: RequestContext, usage: Usage | None = None, backend: str = "gpu") -> None:
    """before, then the call's outcome on ctx, then after (as the pipeline would)."""

    async def main() -> None:
        await stage.before(ctx)
        ctx.backend, ctx.layer = backend, "coding"
        if usage is not None:
            ctx.usage = usage
        ctx.finished_at = ctx.started + 2.0
        await stage.after(ctx)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://:secret@host:6379/0", "unsupported scheme http://"),
        ("redis://:secret@host:notaport/0", "bad port"),
        ("redis://:secret@/0", "no host"),
        ("redis://host:6379/cache", "the database must be a number (/0), got /cache"),
        ("unix://", "unix:// needs a socket path"),
        ("127.0.0.1:6379", "unsupported scheme"),
    ],
)
def test_a_bad_redis_url_is_a_config_error_naming_the_field(url: str, problem: str) -> None:
    # the config fails to load, naming the field, before any stage is built
    with pytest.raises(ConfigError) as info:
        config({"acme": {"requests_per_minute": 1}}, redis=url)
    assert "  redis: " in str(info.value) and problem in str(info.value)
    assert "secret" not in str(info.value) and "use redis://" in str(info.value)


def test_good_redis_urls_pass() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://:pw@cache.internal/2", "redis://h", "unix:///run/redis.sock"):
        assert check_redis_url(url) == url


def test_tenants_without_caps_cost_nothing() -> None:
    cfg = config({"plain": {}, "capped": {"requests_per_minute": 1}})
    assert has_limits(cfg) and not has_limits(config({"plain": {}}))
    stage = LimitStage(cfg, clock=Clock())
    assert set(stage.rules) == {"capped"}
    for _ in range(3):
        ctx = before(stage, context("plain", cfg))
        assert ctx.response_headers == {} and ctx.notes == {}
    open_mode = context("capped", cfg)
    open_mode.policy = None  # a request that did not authenticate as the tenant
    assert before(stage, open_mode).response_headers == {}


def test_request_cap_headers_on_allowed_and_refused_responses() -> None:
    cfg = config({"acme": {"requests_per_minute": 2}})
    clock = Clock()
    stage = LimitStage(cfg, clock=clock)
    h = before(stage, context("acme", cfg)).response_headers
    assert h == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
    }
    h = before(stage, context("acme", cfg)).response_headers
    assert (h["x-ratelimit-remaining-requests"], h["x-ratelimit-reset-requests"]) == ("0", "1m0s")
    clock.advance(0.25)
    ctx = context("acme", cfg)
    err = refused(stage, ctx)
    assert err.code == "rate_limit_exceeded"
    assert "tenant 'acme' may send 2 requests per minute; retry in 29.8 s" in err.message
    h = ctx.response_headers
    assert h["retry-after"] == "30" and h["retry-after-ms"] == "29750"
    assert h["x-ratelimit-remaining-requests"] == "0" and h["x-ratelimit-reset-requests"] == "59.75s"
    assert stage.counters.refused["requests"] == 1
    assert "limit" not in ctx.notes  # nothing reserved: after() has nothing to settle


def test_token_reservation_estimate_and_settlement_with_real_usage() -> None:
    cfg = config({"acme": {"tokens_per_minute": 10_000}})
    stage = LimitStage(cfg, clock=Clock(), section=LimitsSection(completion_estimate_tokens=300))
    ctx = context("acme", cfg, content="x" * 400, max_tokens=100)
    estimate = len(ctx.body) // 4 + 100
    assert before(stage, ctx).response_headers["x-ratelimit-remaining-tokens"] == str(10_000 - estimate)
    assert ctx.notes["limit"].tokens == estimate
    asyncio.run(stage.after(ctx))  # failed: no usage, no output -> the reservation is refunded
    ctx = context("acme", cfg)  # no max_tokens: the configured completion estimate
    served(stage, ctx, Usage(prompt_tokens=11, completion_tokens=7, reported=True))
    assert ctx.notes["limit"].tokens == len(ctx.body) // 4 + 300
    ctx = context("acme", cfg, max_tokens=50)
    h = before(stage, ctx).response_headers
    assert h["x-ratelimit-remaining-tokens"] == str(10_000 - 18 - (len(ctx.body) // 4 + 50))
    # a stream without usage: the prompt estimate plus the output's characters / 4
    ctx.output_text = ["abcd" * 10, "efgh" * 5]
    asyncio.run(stage.after(ctx))
    probe = context("acme", cfg, max_tokens=1)
    h = before(stage, probe).response_headers
    used = 18 + len(ctx.body) // 4 + 15
    assert int(h["x-ratelimit-remaining-tokens"]) == 10_000 - used - (len(probe.body) // 4 + 1)


def test_token_refusal_and_a_request_larger_than_the_cap() -> None:
    cfg = config({"acme": {"tokens_per_minute": 1000, "requests_per_minute": 100}})
    clock = Clock()
    stage = LimitStage(cfg, clock=clock)
    big = before(stage, context("acme", cfg, max_tokens=5000))  # more than a minute's worth: waits for a full one
    assert big.notes["limit"].tokens == 1000 and big.response_headers["x-ratelimit-remaining-tokens"] == "0"
    ctx = context("acme", cfg, max_tokens=10)
    err = refused(stage, ctx)
    need = len(ctx.body) // 4 + 10
    assert f"may use 1,000 tokens per minute; this request reserves {need} " in err.message
    assert "0 are available now" in err.message
    assert ctx.response_headers["retry-after-ms"] == str(round(need * 60))
    assert ctx.response_headers["x-ratelimit-remaining-requests"] == "99"  # the refusal took no request
    assert stage.counters.refused["tokens"] == 1


def test_budget_is_charged_with_the_api_price_and_refused_when_spent() -> None:
    cfg = config({"acme": {"budget_usd_month": 0.03, "allow_proprietary": True, "jurisdictions": ["us"]}})
    clock = Clock()
    stage = LimitStage(cfg, clock=clock)
    usage = Usage(prompt_tokens=1000, completion_tokens=1000, reported=True)
    served(stage, context("acme", cfg), usage, backend="api")  # gpt-5.4: $2.50 / $15 per million
    assert asyncio.run(stage.limiter.spent("acme", T0)) == pytest.approx((1000 * 2.5 + 1000 * 15) / 1e6)
    served(stage, context("acme", cfg), usage, backend="api")  # $0.035 >= $0.03
    ctx = context("acme", cfg)
    err = refused(stage, ctx)
    assert err.code == "budget_exceeded"
    assert err.message == (
        "budget exhausted: tenant 'acme' has spent $0.0350 of its $0.0300 monthly budget for 2026-11 (UTC); "
        "it resets at 2026-12-01T00:00:00Z"
    )
    reset = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    assert ctx.response_headers["retry-after"] == str(int(reset - T0))
    assert ctx.response_headers["x-should-retry"] == "false"
    clock.now = reset
    assert before(stage, context("acme", cfg)).notes["limit"].rule.budget_usd == 0.03


def test_self_hosted_cost_uses_the_measured_utilization_and_unpriced_backends_are_free(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = config({"acme": {"budget_usd_month": 1000}})
    with caplog.at_level(logging.WARNING):
        stage = LimitStage(cfg, clock=Clock())
    assert "requests served by free cost nothing to budget_usd_month" in caplog.text
    stage.load = {"gpu": Utilization(utilization=0.25, concurrency=2.0)}
    ctx = context("acme", cfg)
    ctx.attempts = [Attempt("other", "upstream_error", 0.5), Attempt("gpu", "ok", 1.5)]
    served(stage, ctx, Usage(prompt_tokens=100, completion_tokens=50, reported=True))
    expected = Pricing.from_config(cfg).price("gpu", "coding", (100, 50, 0), 1.5, stage.load["gpu"]).cost_usd
    spent = asyncio.run(stage.limiter.spent("acme", T0))
    assert expected is not None and spent == pytest.approx(expected)
    unloaded = Pricing.from_config(cfg).price("gpu", "coding", (100, 50, 0), 1.5, None).cost_usd
    assert unloaded is not None and spent == pytest.approx(unloaded * 2)  # (1.5 s / 2) / 0.25 = 2 x 1.5 s
    served(stage, context("acme", cfg), Usage(prompt_tokens=100, completion_tokens=50, reported=True), "free")
    assert asyncio.run(stage.limiter.spent("acme", T0)) == pytest.approx(spent)


class Exploding(MemoryLimiter):
    async def settle(self, tenant: str, rule: Rule, token_delta: int, cost_usd: float, now: float) -> None:
        raise RuntimeError("boom")


def test_after_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config({"acme": {"tokens_per_minute": 1000}})
    stage = LimitStage(cfg, clock=Clock(), limiter=Exploding())
    ctx = context("acme", cfg)
    served(stage, ctx, Usage(prompt_tokens=3, completion_tokens=4, reported=True))
    assert "could not be settled" in caplog.text


def dead_redis(cfg: Config, policy: str, retry_s: float = 60.0, budget_policy: str = "deny") -> LimitStage:
    section = LimitsSection(
        on_redis_error=policy,  # type: ignore[arg-type]
        on_redis_error_budget=budget_policy,  # type: ignore[arg-type]
        redis_timeout_ms=200,
        redis_retry_s=retry_s,
    )
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    return LimitStage(cfg, section=section, limiter=limiter, clock=Clock())


@pytest.mark.redis
def test_redis_down_fails_open_by_default(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config({"acme": {"requests_per_minute": 1, "budget_usd_month": 0.0}})
    stage = dead_redis(cfg, "allow", budget_policy="allow")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # over both caps, yet served: the store cannot say no
            ctx = before(stage, context("acme", cfg))
            assert ctx.notes == {"limit_unchecked": True} and ctx.response_headers == {}
    assert stage.counters.unchecked == 3
    assert stage.counters.store_errors == 1  # tried once; the next two within redis_retry_s did not wait
    assert caplog.text.count("cannot be reached") == 1 and "served unchecked" in caplog.text
    registry = CollectorRegistry()
    registry.register(LimitsCollector(stage.counters))
    text = generate_latest(registry).decode()
    assert "owstack_limit_unchecked_total 3.0" in text and "owstack_limit_store_errors_total 1.0" in text


@pytest.mark.redis
def test_redis_down_refuses_tenants_with_a_budget_by_default_and_serves_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = config({"rated": {"requests_per_minute": 1}, "paying": {"budget_usd_month": 100.0}})
    stage = LimitStage(cfg, limiter=RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2), clock=Clock())
    assert (stage.section.on_redis_error, stage.section.on_redis_error_budget) == ("allow", "deny")
    with caplog.at_level(logging.WARNING):
        assert before(stage, context("rated", cfg)).notes == {"limit_unchecked": True}
        ctx = context("paying", cfg)
        with pytest.raises(ServiceUnavailable) as info:
            asyncio.run(stage.before(ctx))
    assert info.value.code == "limits_unavailable" and ctx.notes == {}
    assert "except those of tenants with a budget (refused with 503)" in caplog.text


@pytest.mark.redis
def test_redis_down_fails_closed_when_configured() -> None:
    cfg = config({"acme": {"requests_per_minute": 100}})
    stage = dead_redis(cfg, "deny", retry_s=5)
    for _ in range(2):
        ctx = context("acme", cfg)
        with pytest.raises(ServiceUnavailable) as info:
            asyncio.run(stage.before(ctx))
        assert info.value.status == 503 and info.value.code == "limits_unavailable"
        assert ctx.response_headers["retry-after"] == "5"
    assert stage.counters.refused["unavailable"] == 2
    assert before(stage, context("other", cfg)).notes == {}  # tenants without caps never touch the store


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A redis-server process of this test's own (no persistence), to stop and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    cmd = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    state: dict[str, Any] = {"port": port}

    def start() -> None:
        state["proc"] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        import redis

        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=port).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop() -> None:
        state["proc"].terminate()
        state["proc"].wait(10)

    state["start"], state["stop"] = start, stop
    start()
    yield state
    if state["proc"].poll() is None:
        stop()


@pytest.mark.redis
def test_redis_going_away_and_coming_back(own_redis: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    cfg = config({"acme": {"requests_per_minute": 2}})
    section = LimitsSection(redis_timeout_ms=500, redis_retry_s=0)
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    clock = Clock()

    async def main() -> list[str]:
        stage = LimitStage(cfg, section=section, limiter=RedisLimiter(url, timeout_s=0.5), clock=clock)
        outcomes = []

        async def one() -> str:
            ctx = context("acme", cfg)
            try:
                await stage.before(ctx)
            except RateLimited:
                return "refused"
            return "unchecked" if ctx.notes.get("limit_unchecked") else "allowed"

        try:
            outcomes += [await one() for _ in range(3)]
            own_redis["stop"]()
            outcomes += [await one() for _ in range(2)]
            own_redis["start"]()
            outcomes += [await one() for _ in range(3)]
        finally:
            await stage.aclose()
        return outcomes

    with caplog.at_level(logging.WARNING):
        outcomes = asyncio.run(main())
    # the restarted server kept nothing (no persistence): a fresh bucket of 2
    assert outcomes == ["allowed", "allowed", "refused", "unchecked", "unchecked", "allowed", "allowed", "refused"]
    assert "cannot be reached" in caplog.text and "reachable again" in caplog.text


def ledger_row(tenant: str, when: datetime, cost: float | None) -> dict[str, Any]:
    return {
        "request_id": "r",
        "received_at": when,
        "day": when.date(),
        "tenant": tenant,
        "protocol": "openai",
        "stream": False,
        "status": 200,
        "client_disconnected": False,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "tokens_reported": True,
        "tokens_estimated": False,
        "attempts": 1,
        "fallbacks": 0,
        "cost_usd": cost,
        "cost_kind": "api" if cost is not None else "unknown",
    }


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def seeded_limiter(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryLimiter
    p: str = request.getfixturevalue("prefix")
    return lambda: RedisLimiter(REDIS_URL, prefix=p)


def test_month_to_date_spend_is_seeded_from_the_ledger(tmp_path: Path, seeded_limiter: Any) -> None:
    url = f"sqlite:///{tmp_path}/owstack.db"
    migrate(url)
    rows = [
        ledger_row("acme", datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC), 0.25),
        ledger_row("acme", datetime(2026, 11, 19, 9, tzinfo=UTC), 0.5),
        ledger_row("acme", datetime(2026, 11, 19, 10, tzinfo=UTC), None),  # uncosted
        ledger_row("acme", datetime(2026, 10, 31, 23, 59, tzinfo=UTC), 100.0),  # last month
        ledger_row("beta", datetime(2026, 11, 2, tzinfo=UTC), 7.0),
        ledger_row("nobudget", datetime(2026, 11, 2, tzinfo=UTC), 9.0),
    ]
    write_batch(engine(url), rows)
    tenants = {"acme": {"budget_usd_month": 1.0}, "beta": {"budget_usd_month": 5.0}, "nobudget": {}}
    cfg = config(tenants, storage={"url": url})

    async def main() -> tuple[float, float, float, int]:
        limiter: Limiter = seeded_limiter()
        stage = LimitStage(cfg, limiter=limiter, clock=Clock())
        try:
            await limiter.settle("beta", Rule(budget_usd=5.0), 0, 0.1, T0)  # a counter already running
            await stage.start()
            again = await stage.seed(["acme", "beta"])  # once: the counters are no longer empty
            return (
                await limiter.spent("acme", T0),
                await limiter.spent("beta", T0),
                await limiter.spent("nobudget", T0),
                again,
            )
        finally:
            await stage.aclose()

    acme, beta, nobudget, again = asyncio.run(main())
    assert acme == pytest.approx(0.75) and beta == pytest.approx(0.1) and nobudget == 0.0 and again == 0


def test_seed_without_a_ledger_is_a_no_op(tmp_path: Path) -> None:
    cfg = config({"acme": {"budget_usd_month": 1.0}}, storage={"url": f"sqlite:///{tmp_path}/none.db"})
    stage = LimitStage(cfg, clock=Clock())
    asyncio.run(stage.start())
    assert not (tmp_path / "none.db").exists()  # reading never creates the database
    assert asyncio.run(stage.limiter.spent("acme", T0)) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.0004, "1ms"), (0.25, "250ms"), (1, "1s"), (1.5, "1.5s"), (59.999, "59.999s"), (60, "1m0s"),
     (61.25, "1m1.25s"), (3723, "1h2m3s")],
)  # fmt: skip
def test_durations_in_openai_header_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text
