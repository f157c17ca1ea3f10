"""The limiter backends, memory and the real Redis, through the same scenarios: request and token caps at
their boundaries (a controllable clock), settlement, budgets and the month's rollover, concurrency, and
(Redis) two instances sharing the counters, the NOSCRIPT fallback, key TTLs, an unreachable server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import redis

from owstack.tenancy.limits.autopipe import Script
from owstack.tenancy.limits.bucket import Limiter, LimiterUnavailable, Rule, month_of
from owstack.tenancy.limits.redis_store import RESERVE, SETTLE, RedisLimiter
from procs import free_port

from .limits_support import REDIS_URL, T0, LimiterFactory, keys_under, make_limiter, prefix

__all__ = ["make_limiter", "prefix"]  # fixtures
T = TypeVar("T")


def run(factory: LimiterFactory, scenario: Callable[[Limiter], Awaitable[T]]) -> T:
    async def main() -> T:
        limiter = factory()
        try:
            return await scenario(limiter)
        finally:
            await limiter.aclose()

    return asyncio.run(main())


def test_requests_per_minute_boundary(make_limiter: LimiterFactory) -> None:
    rule = Rule(rpm=3)

    async def scenario(lim: Limiter) -> None:
        for i in range(3):
            d = await lim.reserve("t", rule, 0, T0)
            assert d.allowed and d.request_level == pytest.approx(i + 1)
        d = await lim.reserve("t", rule, 0, T0)
        assert not d.allowed and d.reason == "requests"
        assert d.retry_after_s == pytest.approx(20.0, abs=1e-6)  # one request drains every 60/3 s
        assert not (await lim.reserve("t", rule, 0, T0 + 19.99)).allowed
        d = await lim.reserve("t", rule, 0, T0 + 20.0)
        assert d.allowed and d.request_level == pytest.approx(3.0)
        assert not (await lim.reserve("t", rule, 0, T0 + 20.0)).allowed
        # another tenant has its own bucket
        assert (await lim.reserve("u", rule, 0, T0 + 20.0)).allowed
        # a full minute of silence empties the bucket: the whole burst again, and no more
        allowed = [(await lim.reserve("t", rule, 0, T0 + 80.0)).allowed for _ in range(4)]
        assert allowed == [True, True, True, False]

    run(make_limiter, scenario)


def test_tokens_per_minute_boundary_and_all_or_nothing(make_limiter: LimiterFactory) -> None:
    async def scenario(lim: Limiter) -> None:
        rule = Rule(tpm=1000)
        assert (await lim.reserve("t", rule, 600, T0)).allowed
        d = await lim.reserve("t", rule, 400, T0)  # exactly fills the bucket
        assert d.allowed and d.token_level == pytest.approx(1000)
        d = await lim.reserve("t", rule, 1, T0)
        assert not d.allowed and d.reason == "tokens"
        assert d.retry_after_s == pytest.approx(0.06, abs=1e-6)  # 1000 tokens per 60 s
        assert not (await lim.reserve("t", rule, 1, T0 + 0.059)).allowed
        assert (await lim.reserve("t", rule, 1, T0 + 0.06)).allowed

        both = Rule(rpm=2, tpm=100)
        assert (await lim.reserve("b", both, 60, T0)).allowed
        d = await lim.reserve("b", both, 60, T0)
        assert not d.allowed and d.reason == "tokens"
        d = await lim.reserve("b", both, 40, T0)  # the refusal took neither a request nor tokens
        assert d.allowed and d.request_level == pytest.approx(2) and d.token_level == pytest.approx(100)
        d = await lim.reserve("b", both, 0, T0)
        assert not d.allowed and d.reason == "requests"

    run(make_limiter, scenario)


def test_settlement_refunds_and_charges_debt(make_limiter: LimiterFactory) -> None:
    rule = Rule(tpm=1000)

    async def scenario(lim: Limiter) -> None:
        assert (await lim.reserve("t", rule, 800, T0)).allowed
        await lim.settle("t", rule, -600, 0.0, T0)  # used 200 of the 800 reserved
        d = await lim.reserve("t", rule, 800, T0)
        assert d.allowed and d.token_level == pytest.approx(1000)
        await lim.settle("t", rule, 500, 0.0, T0)  # used 500 more than reserved: a debt
        d = await lim.reserve("t", rule, 1, T0)
        assert not d.allowed and d.retry_after_s == pytest.approx((1500 + 1 - 1000) * 0.06, abs=1e-6)
        await lim.settle("t", rule, -10_000, 0.0, T0)  # a refund never leaves more than a full bucket
        assert (await lim.reserve("t", rule, 1000, T0)).allowed
        assert not (await lim.reserve("t", rule, 1, T0)).allowed

    run(make_limiter, scenario)


def test_budget_exhaustion_and_month_rollover(make_limiter: LimiterFactory) -> None:
    rule = Rule(budget_usd=1.0)
    last_second = datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC).timestamp()
    december = datetime(2026, 12, 1, tzinfo=UTC).timestamp()

    async def scenario(lim: Limiter) -> None:
        assert (await lim.reserve("t", rule, 0, T0)).allowed
        await lim.settle("t", rule, 0, 0.6, T0)
        d = await lim.reserve("t", rule, 0, T0)
        assert d.allowed and d.spent_usd == pytest.approx(0.6)
        await lim.settle("t", rule, 0, 0.4, T0)
        assert await lim.spent("t", T0) == pytest.approx(1.0)
        d = await lim.reserve("t", rule, 0, T0)  # at the budget: refused
        assert not d.allowed and d.reason == "budget" and d.spent_usd == pytest.approx(1.0)
        assert d.retry_after_s == pytest.approx(december - T0)
        d = await lim.reserve("t", rule, 0, last_second)
        assert not d.allowed and d.retry_after_s == pytest.approx(0.5)
        d = await lim.reserve("t", rule, 0, december)  # a new month, a new budget
        assert d.allowed and d.spent_usd == 0.0
        assert await lim.spent("t", december) == 0.0
        assert not (await lim.reserve("zero", Rule(budget_usd=0.0), 0, T0)).allowed

    run(make_limiter, scenario)


def test_seed_only_fills_an_empty_counter(make_limiter: LimiterFactory) -> None:
    async def scenario(lim: Limiter) -> None:
        assert await lim.seed("t", 2.5, T0) is True
        assert await lim.seed("t", 9.0, T0) is False
        await lim.settle("u", Rule(budget_usd=5.0), 0, 0.25, T0)
        assert await lim.seed("u", 9.0, T0) is False
        assert (await lim.spent("t", T0), await lim.spent("u", T0)) == (pytest.approx(2.5), pytest.approx(0.25))
        d = await lim.reserve("t", Rule(budget_usd=2.5), 0, T0)
        assert not d.allowed and d.reason == "budget"

    run(make_limiter, scenario)


def test_concurrent_reservations_never_exceed_the_caps(make_limiter: LimiterFactory) -> None:
    async def scenario(lim: Limiter) -> tuple[int, int, float]:
        rpm = await asyncio.gather(*(lim.reserve("r", Rule(rpm=50), 0, T0) for _ in range(300)))
        sizes = [37 + (i * 7) % 90 for i in range(200)]
        tpm = await asyncio.gather(*(lim.reserve("k", Rule(tpm=5000), n, T0) for n in sizes))
        taken = sum(n for n, d in zip(sizes, tpm, strict=True) if d.allowed)
        assert all(d.reason == "tokens" for d in tpm if not d.allowed)
        charge = Rule(budget_usd=100.0)
        await asyncio.gather(*(lim.settle("c", charge, 0, 0.01, T0) for _ in range(200)))
        return sum(d.allowed for d in rpm), taken, await lim.spent("c", T0)

    allowed, taken, spent = run(make_limiter, scenario)
    assert allowed == 50
    assert 5000 - 127 < taken <= 5000  # full, short of the largest refused request at most
    assert spent == pytest.approx(2.0)


@pytest.mark.redis
def test_two_instances_share_the_counters(prefix: str) -> None:
    rule = Rule(rpm=3, budget_usd=1.0)

    async def main() -> None:
        a = RedisLimiter(REDIS_URL, prefix=prefix)
        b = RedisLimiter(REDIS_URL, prefix=prefix)
        other = RedisLimiter(REDIS_URL, prefix=prefix + "other:")
        try:
            assert (await a.reserve("t", rule, 0, T0)).allowed
            assert (await b.reserve("t", rule, 0, T0)).allowed
            assert (await a.reserve("t", rule, 0, T0)).allowed
            assert not (await b.reserve("t", rule, 0, T0)).allowed
            assert (await other.reserve("t", rule, 0, T0)).allowed  # another prefix, other counters
            await a.settle("t", rule, 0, 0.7, T0)
            await b.settle("t", rule, 0, 0.3, T0)
            d = await b.reserve("t", rule, 0, T0 + 60)  # carries b's charge; a's is still held by a
            assert d.allowed and d.spent_usd == pytest.approx(0.3)
            await a.flush()
            d = await b.reserve("t", rule, 0, T0 + 60)
            assert not d.allowed and d.reason == "budget" and d.spent_usd == pytest.approx(1.0)
            # concurrency across instances: 2 x 100 tasks against one cap of 40 per minute
            cap = Rule(rpm=40)
            results = await asyncio.gather(*(lim.reserve("c", cap, 0, T0) for lim in (a, b) for _ in range(100)))
            assert sum(d.allowed for d in results) == 40
        finally:
            for lim in (a, b, other):
                await lim.aclose()

    asyncio.run(main())


@pytest.mark.redis
def test_settlements_ride_on_the_next_reservation_or_the_background_flush(prefix: str) -> None:
    rule = Rule(tpm=6000, budget_usd=10.0)
    tok_key, usd_key = f"{prefix}{{t}}:tpm", f"{prefix}{{t}}:usd:{month_of(T0).key}"
    r = redis.Redis.from_url(REDIS_URL)

    async def main() -> None:
        lim = RedisLimiter(REDIS_URL, prefix=prefix, flush_interval_s=0.05)
        try:
            assert (await lim.reserve("t", rule, 600, T0)).allowed
            await lim.settle("t", rule, -500, 0.25, T0)
            assert r.get(usd_key) is None and float(r.hget(tok_key, "l") or 0) == 600  # held, not sent
            d = await lim.reserve("t", rule, 50, T0)  # sent with the reservation, applied before the check
            assert d.token_level == pytest.approx(150) and d.spent_usd == pytest.approx(0.25)
            await lim.settle("t", rule, -50, 0.5, T0)
            for _ in range(3000):  # no reservation follows: the background flush sends it (every 0.05 s)
                if float(r.get(usd_key) or 0) > 0.5:
                    break
                await asyncio.sleep(0.02)
            assert float(r.get(usd_key) or 0) == pytest.approx(0.75)
            assert float(r.hget(tok_key, "l") or 0) == pytest.approx(100)
        finally:
            await lim.aclose()

    try:
        asyncio.run(main())
    finally:
        r.close()


@pytest.mark.redis
def test_keys_live_under_the_prefix_and_expire(prefix: str) -> None:
    rule = Rule(rpm=60, tpm=6000, budget_usd=10.0)

    async def main() -> None:
        lim = RedisLimiter(REDIS_URL, prefix=prefix)
        try:
            await lim.reserve("acme", rule, 600, T0)
            await lim.settle("acme", rule, -100, 0.5, T0)
        finally:
            await lim.aclose()

    asyncio.run(main())
    month = month_of(T0)
    names = [k.decode() for k in keys_under(prefix)]
    assert names == [f"{prefix}{{acme}}:rpm", f"{prefix}{{acme}}:tpm", f"{prefix}{{acme}}:usd:{month.key}"]
    r = redis.Redis.from_url(REDIS_URL)
    try:
        rpm_ttl, tpm_ttl = r.pttl(names[0]), r.pttl(names[1])
        assert 0 < rpm_ttl <= 2000  # 1 request at 60/min drains in 1 s, plus 1 s
        assert 0 < tpm_ttl <= 6000  # 500 tokens at 6000/min drain in 5 s, plus 1 s
        assert r.expiretime(names[2]) == int(month.end) + 7 * 86400
        assert float(r.get(names[2]) or 0) == pytest.approx(0.5)
    finally:
        r.close()


@pytest.mark.redis
def test_an_unknown_script_falls_back_to_eval(prefix: str) -> None:
    script = Script(RESERVE + f"\n-- {uuid.uuid4().hex}\n")  # a SHA this server has never seen
    key = f"{prefix}{{t}}"
    args = (int(T0 * 1e6), 5, 0, 0, "", 0, "0", 0, "", "0", 0, 0)  # no budget, nothing pending, no hold

    async def main() -> tuple[list[int], list[bool]]:
        lim = RedisLimiter(REDIS_URL, prefix=prefix)
        try:
            before = await lim.client.script_exists(script.sha)
            keys = (key + ":rpm", key + ":tpm", key + ":usd", key + ":holds", key + ":held")
            reply = await script(lim.client, keys, args)
            after = await lim.client.script_exists(script.sha)
            return [reply[0], int(float(reply[2]))], [*before, *after]
        finally:
            await lim.aclose()

    reply, known = asyncio.run(main())
    assert reply == [0, 1]  # allowed, one request in the bucket
    assert known == [False, True]  # EVAL cached it: the next call is an EVALSHA


@pytest.mark.redis
def test_an_unreachable_redis_is_limiter_unavailable() -> None:
    async def main() -> None:
        lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
        try:
            await lim.settle("t", Rule(tpm=10), 5, 0.1, T0)  # held: settle never fails
            for call in (
                lim.reserve("t", Rule(rpm=1), 0, T0),
                lim.flush(),
                lim.spent("t", T0),
                lim.seed("t", 1.0, T0),
            ):
                with pytest.raises(LimiterUnavailable, match="ConnectionError"):
                    await call
            held = lim._pending["t"]  # kept through every failed try, for when Redis is back
            assert (held.delta, held.cost) == (5, pytest.approx(0.1))
        finally:
            await lim.aclose()  # gives up on the held correction without raising

    asyncio.run(main())


@pytest.mark.redis
def test_concurrent_reservations_share_pipelines_and_survive_noscript(prefix: str) -> None:
    async def main() -> tuple[list[int], int, list[bool]]:
        lim = RedisLimiter(REDIS_URL, prefix=prefix)
        fresh = Script(RESERVE + f"\n-- {uuid.uuid4().hex}\n")  # unknown to the server: NOSCRIPT in a pipeline
        lim._pipe.script = fresh
        sizes: list[int] = []
        send = lim._pipe._send

        async def recording(batch: list[Any]) -> None:
            sizes.append(len(batch))
            await send(batch)

        lim._pipe._send = recording  # type: ignore[method-assign]
        try:
            decisions = await asyncio.gather(*(lim.reserve("t", Rule(rpm=30), 0, T0) for _ in range(100)))
            return sizes, sum(d.allowed for d in decisions), await lim.client.script_exists(fresh.sha)
        finally:
            await lim.aclose()

    sizes, allowed, known = asyncio.run(main())
    assert allowed == 30 and sum(sizes) == 100
    assert max(sizes) > 1 and len(sizes) < 100  # many reservations per round trip
    assert known == [True]


def test_closing_fails_waiting_reservations_instead_of_hanging() -> None:
    async def main() -> list[BaseException | Any]:
        received = asyncio.Event()

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 20)  # accepts the commands, never answers
            received.set()
            await asyncio.sleep(3600)

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        lim = RedisLimiter(f"redis://127.0.0.1:{port}/0", timeout_s=3600)  # waiting it out would hang the test
        try:
            tasks = [asyncio.create_task(lim.reserve("t", Rule(rpm=5), 0, T0)) for _ in range(5)]
            await asyncio.wait_for(received.wait(), 300)  # the reservations are on the wire
            await lim.aclose()
            return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 300)
        finally:
            server.close()

    results = asyncio.run(main())
    assert len(results) == 5 and all(isinstance(r, LimiterUnavailable) for r in results)


@pytest.mark.redis
def test_flush_survives_noscript_and_drops_what_redis_refuses(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    rule = Rule(tpm=6000, budget_usd=10.0)
    month = month_of(T0).key
    r = redis.Redis.from_url(REDIS_URL)
    r.set(f"{prefix}{{broken}}:tpm", "not a hash")  # WRONGTYPE for the script's HMGET

    async def main() -> None:
        lim = RedisLimiter(REDIS_URL, prefix=prefix, flush_interval_s=60)
        lim._settle = Script(SETTLE + f"\n-- {uuid.uuid4().hex}\n")  # unknown to the server
        try:
            await lim.settle("ok", rule, -10, 0.5, T0)
            await lim.settle("broken", rule, -10, 0.25, T0)
            await lim.flush()
            assert lim._pending == {}  # the refused one is not retried forever
            await lim.flush()  # nothing left: the good one is not sent twice
            assert await lim.client.script_exists(lim._settle.sha) == [True]
        finally:
            await lim.aclose()

    try:
        with caplog.at_level(logging.WARNING):
            asyncio.run(main())
        assert float(r.get(f"{prefix}{{ok}}:usd:{month}") or 0) == pytest.approx(0.5)
        assert r.get(f"{prefix}{{broken}}:usd:{month}") is None
        assert "refused a settlement of tenant broken" in caplog.text
    finally:
        r.close()
