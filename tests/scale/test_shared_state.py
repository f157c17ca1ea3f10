"""Routing state shared through the real Redis: what one gateway instance sees (a breaker opening or
closing, a health verdict, its load, its prefix decisions) reaches the others, a late starter learns the
open breakers, and an unreachable Redis leaves every instance routing on its own knowledge."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from owstack.routing.breaker import CLOSED, OPEN, CircuitBreaker
from owstack.routing.config import PrefixSection, SharedSection
from owstack.routing.health import HealthChecker
from owstack.routing.prefix import PrefixIndex, PrefixPolicy
from owstack.routing.shared import SharedCollector, SharedRouting
from owstack.routing.slot import Slot
from owstack.types import ChatRequest

from .conftest import REDIS_URL

pytestmark = pytest.mark.redis
NAMES = ("x", "y", "z")


class Probe:
    def __init__(self, name: str) -> None:
        self.name = name
        self.engine = "vllm"
        self.model = "m"
        self.ok = True

    async def health(self, timeout: float = 2.0) -> bool:
        return self.ok


class Instance:
    """What one gateway holds of routing: slots with breakers, a health checker, a prefix index, the link."""

    def __init__(self, prefix: str, url: str = REDIS_URL, stale_after_s: float = 3.0) -> None:
        self.probes = {n: Probe(n) for n in NAMES}
        shared: list[SharedRouting] = []
        self.slots = {
            n: Slot(n, self.probes[n], CircuitBreaker(n, 2, 30, on_change=lambda b, s: shared[0].breaker_changed(b, s)))  # type: ignore[arg-type]
            for n in NAMES
        }
        self.health = HealthChecker(
            list(self.probes.values()),
            interval_s=60,
            timeout_s=1,
            unhealthy_after=1,
            on_change=lambda b, h: shared[0].health_changed(b, h),
        )
        self.index = PrefixIndex(max_entries=1000, ttl_s=600)
        self.shared = SharedRouting(
            url,
            key_prefix=prefix,
            section=SharedSection(sync_interval_ms=20, stale_after_s=stale_after_s),
            slots=self.slots,
            health=self.health,
            index=self.index,
            reset_s=30,
        )
        shared.append(self.shared)
        self.policy = PrefixPolicy("coding", PrefixSection(), self.index, self.shared.prefix_recorded)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for `check` (a deadline for failing, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


def run(prefix: str, scenario: Callable[[Instance, Instance], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        a, b = Instance(prefix), Instance(prefix)
        await a.shared.start()
        await b.shared.start()
        try:
            await until(lambda: a.shared.peers == 1 and b.shared.peers == 1, "the two instances hear each other")
            return await scenario(a, b)
        finally:
            await a.shared.aclose()
            await b.shared.aclose()

    return asyncio.run(main())


def test_a_breaker_that_opens_on_one_instance_opens_on_the_other_and_closes_with_it(redis_prefix: str) -> None:
    async def scenario(a: Instance, b: Instance) -> None:
        a.slots["x"].breaker.failure()
        a.slots["x"].breaker.failure()  # threshold 2: open on a
        assert a.slots["x"].breaker.state == OPEN
        await until(lambda: b.slots["x"].breaker.state == OPEN, "b learns that x is down")
        assert b.slots["x"].breaker.failures == 0, "b spent none of its own requests on x"
        assert b.slots["y"].breaker.state == CLOSED
        a.slots["x"].breaker.success()  # a's probe succeeds: closed, and sent
        await until(lambda: b.slots["x"].breaker.state == CLOSED, "b learns that x is back")
        assert a.shared.applied["breaker"] == 0, "a's own news coming back is ignored, and b does not echo it"
        assert b.shared.applied["breaker"] == 2

    run(redis_prefix, scenario)


def test_a_health_verdict_travels_and_a_newer_local_check_overrides_it(redis_prefix: str) -> None:
    async def scenario(a: Instance, b: Instance) -> None:
        a.probes["z"].ok = False
        await a.health.check_all()
        assert not a.health.healthy("z")
        await until(lambda: not b.health.healthy("z"), "b marks z unhealthy")
        await b.health.check_all()  # b's own probe of z passes (b's view of the network differs)
        assert b.health.healthy("z")

    run(redis_prefix, scenario)


def test_load_is_summed_across_instances_and_a_silent_instance_stops_counting(redis_prefix: str) -> None:
    async def main() -> None:
        a, b = Instance(redis_prefix, stale_after_s=0.5), Instance(redis_prefix, stale_after_s=0.5)
        await a.shared.start()
        await b.shared.start()
        try:
            a.slots["y"].outstanding = 4
            await until(lambda: b.slots["y"].remote == 4, "b counts a's requests to y")
            assert b.slots["y"].load == 4 and b.slots["x"].load == 0
            a.slots["y"].outstanding = 1
            await until(lambda: b.slots["y"].remote == 1, "b sees a's load fall")
            await a.shared.aclose()  # a dies: its last report stops counting after stale_after_s
            await until(lambda: b.slots["y"].remote == 0, "a's load forgotten")
        finally:
            await a.shared.aclose()
            await b.shared.aclose()

    asyncio.run(main())


def test_prefix_decisions_of_one_instance_route_the_next_turn_on_another(redis_prefix: str) -> None:
    async def scenario(a: Instance, b: Instance) -> None:
        system = {"role": "system", "content": "agent instructions " * 60}
        turn1 = ChatRequest(model="coding", messages=[system, {"role": "user", "content": "task 1 " * 40}])
        turn2 = ChatRequest(model="coding", messages=[*turn1.messages, {"role": "assistant", "content": "ok " * 50}])
        # b would send turn 2 elsewhere on its own: make its choice differ by load unless it learned the prefix
        chosen = a.policy.choose(list(a.slots.values()), turn1)
        await until(lambda: b.shared.applied["prefix"] > 0, "b learns a's prefix entries")
        for slot in b.slots.values():
            slot.outstanding = 0 if slot.name != chosen.name else 3  # busier, yet within max_imbalance (8)
        assert b.policy.choose(list(b.slots.values()), turn2).name == chosen.name
        assert b.policy.outcomes["hit"] == 1

    run(redis_prefix, scenario)


def test_an_instance_that_starts_later_learns_the_open_breakers(redis_prefix: str) -> None:
    async def scenario(a: Instance, b: Instance) -> None:
        for _ in range(2):
            a.slots["y"].breaker.failure()
        await until(lambda: b.slots["y"].breaker.state == OPEN, "b learns")
        late = Instance(redis_prefix)
        await late.shared.start()
        try:
            await until(lambda: late.slots["y"].breaker.state == OPEN, "the late instance reads the open breakers")
            assert late.slots["x"].breaker.state == CLOSED
        finally:
            await late.shared.aclose()

    run(redis_prefix, scenario)


def test_without_redis_each_instance_routes_on_its_own_and_says_so(redis_prefix: str) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"

    async def main() -> None:
        lone = Instance(redis_prefix, url=dead)
        await lone.shared.start()
        try:
            await until(lambda: not lone.shared.store.up, "the link is reported down")
            for _ in range(2):
                lone.slots["x"].breaker.failure()  # local routing goes on
            assert lone.slots["x"].breaker.state == OPEN
            assert lone.shared.unavailable() is None, "the gateway stays ready"
            await until(lambda: lone.shared.store.errors >= 2, "retries are counted")
            metrics = {m.name: m for m in SharedCollector(lone.shared).collect()}
            assert metrics["owstack_shared_peers"].samples[0].value == 0
        finally:
            await lone.shared.aclose()

    asyncio.run(main())
