"""Budgets that hold under concurrency (reserve the maximum cost, settle the real one), in memory and on the
real Redis: 400 concurrent requests against a budget that fits 70 admit 70; a failed request releases its
hold; the holds of a process that died lapse; tokens-per-minute under the same concurrency; and the limit
stage end to end with an API-priced backend and `max_tokens`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from owstack.errors import RateLimited
from owstack.pipeline.context import RequestContext
from owstack.tenancy.limits import LimitStage
from owstack.tenancy.limits.bucket import Hold, Limiter, Rule
from owstack.tenancy.limits.config import LimitsSection
from owstack.tenancy.limits.memory import MemoryLimiter
from owstack.tenancy.limits.redis_store import RedisLimiter
from owstack.types import Usage

from .limits_support import REDIS_URL, T0, Clock, LimiterFactory, config, context, keys_under, make_limiter, prefix

__all__ = ["make_limiter", "prefix"]  # fixtures
T = TypeVar("T")
#: what one request may cost (its hold): the budget below fits exactly 70 of them
H = 0.0125


def run(factory: LimiterFactory, scenario: Callable[[Limiter], Awaitable[T]]) -> T:
    async def main() -> T:
        limiter = factory()
        try:
            return await scenario(limiter)
        finally:
            await limiter.aclose()

    return asyncio.run(main())


def hold(n: int, usd: float = H, ttl_s: float = 900.0) -> Hold:
    return Hold(f"test-{n}", usd, ttl_s)


def test_400_concurrent_requests_against_a_budget_that_fits_70_admit_70(make_limiter: LimiterFactory) -> None:
    rule = Rule(budget_usd=70 * H)

    async def scenario(lim: Limiter) -> tuple[list[Any], float, float, float]:
        decisions = await asyncio.gather(*(lim.reserve("b", rule, 0, T0, hold(i)) for i in range(400)))
        held = await lim.held("b", T0)
        admitted = [i for i, d in enumerate(decisions) if d.allowed]
        # each admitted request costs at most its hold: settle them (real cost 80% of the hold)
        await asyncio.gather(*(lim.settle("b", rule, 0, 0.8 * H, T0, hold(i)) for i in admitted))
        return decisions, held, await lim.held("b", T0), await lim.spent("b", T0)

    decisions, held, after, spent = run(make_limiter, scenario)
    assert sum(d.allowed for d in decisions) == 70
    assert all(d.reason == "budget" for d in decisions if not d.allowed)
    assert held == pytest.approx(70 * H) and after == 0.0
    assert spent == pytest.approx(70 * 0.8 * H) and spent <= rule.budget_usd  # type: ignore[operator]


def test_a_failed_request_releases_its_hold_and_a_settled_one_charges_its_real_cost(
    make_limiter: LimiterFactory,
) -> None:
    rule = Rule(budget_usd=2 * H)

    async def scenario(lim: Limiter) -> list[Any]:
        out = []
        out.append((await lim.reserve("f", rule, 0, T0, hold(1))).allowed)
        out.append((await lim.reserve("f", rule, 0, T0, hold(2))).allowed)
        third = await lim.reserve("f", rule, 0, T0, hold(3))  # two holds in flight fill the budget
        out.append((third.allowed, third.reason, third.held_usd))
        await lim.settle("f", rule, 0, 0.0, T0, hold(1))  # failed upstream: nothing to charge
        out.append((await lim.reserve("f", rule, 0, T0, hold(4))).allowed)
        await lim.settle("f", rule, 0, 0.5 * H, T0, hold(2))
        await lim.settle("f", rule, 0, 0.5 * H, T0, hold(4))
        await lim.settle("f", rule, 0, 0.0, T0, hold(2))  # released twice (a retried settlement): no effect
        out.append((await lim.held("f", T0), await lim.spent("f", T0)))
        small = await lim.reserve("f", rule, 0, T0, hold(5, usd=H))  # H of 2H spent: H fits
        too_big = await lim.reserve("f", rule, 0, T0, hold(6, usd=H))
        out.append((small.allowed, too_big.allowed))
        return out

    got = run(make_limiter, scenario)
    assert got[:2] == [True, True]
    assert got[2][:2] == (False, "budget") and got[2][2] == pytest.approx(2 * H)
    assert got[3] is True
    assert got[4][0] == 0.0 and got[4][1] == pytest.approx(H)
    assert got[5] == (True, False)


def test_the_holds_of_a_process_that_died_lapse(make_limiter: LimiterFactory) -> None:
    """A process that reserved and died never settles: its holds stop counting once their TTL has passed."""
    rule = Rule(budget_usd=10 * H)

    async def scenario(lim: Limiter) -> list[Any]:
        dead = [await lim.reserve("d", rule, 0, T0, hold(i, ttl_s=30.0)) for i in range(10)]
        refused = await lim.reserve("d", rule, 0, T0 + 29.0, hold(99, ttl_s=30.0))
        later = await lim.reserve("d", rule, 0, T0 + 31.0, hold(100, ttl_s=30.0))
        return [all(d.allowed for d in dead), refused.allowed, later.allowed, await lim.held("d", T0 + 31.0)]

    all_in, refused, later, held = run(make_limiter, scenario)
    assert all_in and not refused and later
    assert held == pytest.approx(H)  # only the new hold


def test_tokens_per_minute_under_400_concurrent_requests(make_limiter: LimiterFactory) -> None:
    rule = Rule(tpm=70 * 150)

    async def scenario(lim: Limiter) -> int:
        decisions = await asyncio.gather(*(lim.reserve("k", rule, 150, T0) for _ in range(400)))
        assert all(d.reason == "tokens" for d in decisions if not d.allowed)
        return sum(d.allowed for d in decisions)

    assert run(make_limiter, scenario) == 70


@pytest.mark.redis
def test_holds_live_under_the_prefix_and_go_when_released(prefix: str) -> None:
    rule = Rule(budget_usd=1.0)

    async def main() -> None:
        lim = RedisLimiter(REDIS_URL, prefix=prefix)
        try:
            await lim.reserve("acme", rule, 0, T0, hold(1, usd=0.25))
            assert {k.decode().rsplit(":", 1)[1] for k in keys_under(prefix)} >= {"holds", "held"}
            await lim.settle("acme", rule, 0, 0.1, T0, hold(1, usd=0.25))
            await lim.flush()
        finally:
            await lim.aclose()

    asyncio.run(main())
    names = {k.decode().rsplit(":", 1)[-1] for k in keys_under(prefix)}
    assert "holds" not in names and "held" not in names  # nothing in flight: nothing kept


# the stage, end to end -------------------------------------------------------------------------------


def api_context(cfg: Any, max_tokens: int = 100) -> RequestContext:
    ctx = context("acme", cfg, max_tokens=max_tokens)
    ctx.candidates = ["api"]  # the route stage's choice: an API-priced backend (gpt-5.4, $2.50 / $15 per M)
    return ctx


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Callable[[], Limiter]:
    if request.param == "memory":
        return MemoryLimiter
    p: str = request.getfixturevalue("prefix")
    return lambda: RedisLimiter(REDIS_URL, prefix=p, timeout_s=5.0)


def test_the_stage_admits_what_the_budget_holds_and_settles_the_real_cost(store: Callable[[], Limiter]) -> None:
    probe_cfg = config({"acme": {"budget_usd_month": 1.0, "allow_proprietary": True, "jurisdictions": ["us"]}})
    probe = api_context(probe_cfg)
    one = (len(probe.body) // 4) * 2.5e-6 + 100 * 15e-6  # the hold of one request: prompt estimate + max_tokens
    cfg = config({"acme": {"budget_usd_month": 70 * one, "allow_proprietary": True, "jurisdictions": ["us"]}})

    async def main() -> tuple[int, int, float, float]:
        stage = LimitStage(cfg, clock=Clock(), limiter=store(), section=LimitsSection(prefix="x:"))

        async def request() -> bool:
            ctx = api_context(cfg)
            try:
                await stage.before(ctx)
            except RateLimited as exc:
                assert exc.code == "budget_exceeded"
                return False
            await asyncio.sleep(0)  # the call: every request reserves before any settles
            ctx.backend, ctx.layer = "api", "multimodal"
            ctx.usage = Usage(prompt_tokens=10, completion_tokens=90, reported=True)
            ctx.finished_at = ctx.started + 0.5
            await stage.after(ctx)
            return True

        try:
            admitted = sum(await asyncio.gather(*(request() for _ in range(400))))
            await stage.limiter.flush()
            late = sum([await request() for _ in range(3)])
            lim = stage.limiter
            return admitted, late, await lim.spent("acme", T0), await lim.held("acme", T0)
        finally:
            await stage.aclose()

    admitted, late, spent, held = asyncio.run(main())
    assert admitted == 70
    real = 10 * 2.5e-6 + 90 * 15e-6  # each cost less than it held, so later requests fit in what was left
    assert held == 0.0 and spent == pytest.approx((admitted + late) * real)
    assert spent <= 70 * one
