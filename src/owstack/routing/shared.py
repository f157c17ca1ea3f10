"""Routing state shared by gateway instances through Redis: breakers, health, load, prefix decisions.

Each instance keeps deciding from its own memory (the request path reads nothing remote); what it learns
travels beside the requests, on one Redis channel, `<limits.prefix>routing`:

    a breaker opened or closed       published at once, by a background task (the request that tripped it
    a health check changed verdict   only sets a flag); the others trip/reset their breaker or take the verdict
    requests in flight per backend   every `sync_interval_ms`; a replica's load is ours plus the others' last
                                     reports (an instance silent for `stale_after_s` no longer counts)
    new prefix-index entries         every `sync_interval_ms` (routing/prefix.py)

Open breakers are also kept in the hash `<limits.prefix>routing:breakers` (backend -> when it opened), so an
instance that starts, or reconnects after an outage, learns of the open ones at once.

How stale: a breaker or health change reaches the other instances after one Redis round trip (the
publisher wakes on it); load and prefix entries at most `sync_interval_ms` plus a round trip late.

When Redis cannot be reached, each instance routes on its own knowledge (fail open: sharing makes routing
better, never possible); `/metrics` shows it as `owstack_store_up{store="routing"} 0` with the errors
counted in `owstack_store_errors_total{store="routing"}`, and one warning is logged per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from owstack.routing.breaker import CLOSED, OPEN
from owstack.storage.db import safe_url
from owstack.storage.health import StoreHealth

if TYPE_CHECKING:
    from owstack.routing.config import SharedSection
    from owstack.routing.health import HealthChecker
    from owstack.routing.prefix import PrefixIndex
    from owstack.routing.slot import Slot

log = logging.getLogger("owstack.routing")
_ERRORS = (RedisError, OSError, TimeoutError)
#: prefix entries kept for sending while Redis is away (beyond: dropped, the others learn them later)
MAX_PENDING_HASHES = 100_000


class SharedRouting:
    """A service: started with the gateway, closed with it; never makes the gateway unready."""

    name = "routing-shared"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str,
        section: SharedSection,
        slots: Mapping[str, Slot],
        health: HealthChecker,
        index: PrefixIndex | None,
        reset_s: float,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = secrets.token_hex(6)
        self.channel = f"{key_prefix}routing"
        self.breakers_key = f"{key_prefix}routing:breakers"
        self.interval_s = section.sync_interval_ms / 1000
        self.stale_after_s = section.stale_after_s
        self.slots = slots
        self.health = health
        self.index = index
        self.reset_s = reset_s
        self.wall = wall
        self.clock = clock
        self.store = StoreHealth("routing", f"Redis at {safe_url(url)}", retry_max_s=5.0, clock=clock)
        self._client = aredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._breakers: dict[str, str] = {}  # backend -> its latest local state, not yet sent
        self._health: dict[str, bool] = {}
        self._hashes: dict[str, list[int]] = {}
        self._pending_hashes = 0
        self._peers: dict[str, tuple[float, dict[str, int]]] = {}  # instance -> (received at, its load)
        self._applying = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.sent = 0
        self.received = 0
        self.applied = {"breaker": 0, "health": 0, "prefix": 0}

    # -- what this instance saw (called on the request path or by the health checker: no I/O) ---------------

    def breaker_changed(self, backend: str, state: str) -> None:
        if self._applying or state not in (OPEN, CLOSED):
            return
        self._breakers[backend] = state
        self._wake.set()

    def health_changed(self, backend: str, healthy: bool) -> None:
        self._health[backend] = healthy
        self._wake.set()

    def prefix_recorded(self, replica: str, hashes: list[int]) -> None:
        if self._pending_hashes >= MAX_PENDING_HASHES:
            return
        self._hashes.setdefault(replica, []).extend(hashes)
        self._pending_hashes += len(hashes)

    # -- lifetime -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._publish_loop(), name="owstack-shared-publish"),
            loop.create_task(self._subscribe_loop(), name="owstack-shared-subscribe"),
        ]

    async def aclose(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(*_ERRORS):
            await self._client.aclose()

    def unavailable(self) -> str | None:
        return None  # without Redis each instance routes on what it knows itself

    @property
    def peers(self) -> int:
        """Other instances heard from within `stale_after_s`."""
        oldest = self.clock() - self.stale_after_s
        return sum(1 for seen, _ in self._peers.values() if seen > oldest)

    # -- sending --------------------------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._wake.wait()
            self._wake.clear()
            self._expire_peers()
            if not self.store.should_try():
                continue
            try:
                await self.publish()
            except _ERRORS as exc:
                self.store.failed(exc)
            else:
                self.store.succeeded()

    async def publish(self) -> None:
        """Send what changed since the last message, and this instance's load (one pipelined round trip).
        Breaker and health changes that could not be sent are kept for the next try; prefix entries are
        dropped (the replicas' caches move on meanwhile, and the others learn the next ones)."""
        breakers, self._breakers = self._breakers, {}
        health, self._health = self._health, {}
        hashes, self._hashes = self._hashes, {}
        self._pending_hashes = 0
        message = {
            "i": self.instance,
            "b": breakers,
            "h": health,
            "l": {name: slot.outstanding for name, slot in self.slots.items() if slot.outstanding},
            "p": hashes,
        }
        pipe = self._client.pipeline(transaction=False)
        pipe.publish(self.channel, orjson.dumps(message))
        opened: dict[Any, Any] = {name: repr(self.wall()) for name, state in breakers.items() if state == OPEN}
        closed = [name for name, state in breakers.items() if state == CLOSED]
        if opened:
            pipe.hset(self.breakers_key, mapping=opened)
        if closed:
            pipe.hdel(self.breakers_key, *closed)
        try:
            await pipe.execute()
        except BaseException:
            self._breakers = {**breakers, **self._breakers}
            self._health = {**health, **self._health}
            raise
        self.sent += 1

    # -- receiving ------------------------------------------------------------------------------------------

    async def _subscribe_loop(self) -> None:
        while not self._closing:
            if not self.store.should_try():
                await asyncio.sleep(0.2)
                continue
            try:
                await self._listen()
            except _ERRORS as exc:
                self.store.failed(exc)
                await asyncio.sleep(0.2)

    async def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            await self.load_open_breakers()
            self.store.succeeded()
            while not self._closing:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self.receive(message["data"])
        finally:
            with contextlib.suppress(*_ERRORS):
                await pubsub.aclose()

    async def load_open_breakers(self) -> None:
        """The breakers other instances hold open now (at start, and after a reconnection)."""
        opened: dict[Any, Any] = await self._client.hgetall(self.breakers_key)
        since = self.wall() - self.reset_s
        with self._remote():
            for raw_name, raw_when in opened.items():
                slot = self.slots.get(raw_name.decode())
                if slot is not None and float(raw_when) > since and slot.breaker.state == CLOSED:
                    slot.breaker.trip()
                    self.applied["breaker"] += 1

    def receive(self, data: bytes) -> None:
        """Apply another instance's message (ours come back too: ignored)."""
        try:
            message = orjson.loads(data)
            sender = message["i"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("routing: ignored a malformed message on %s", self.channel)
            return
        if sender == self.instance:
            return
        self.received += 1
        with self._remote():
            self._apply(sender, message)
        self._peers[sender] = (self.clock(), {k: int(v) for k, v in (message.get("l") or {}).items()})
        self._sum_loads()

    def _apply(self, sender: str, message: dict[str, Any]) -> None:
        for name, state in (message.get("b") or {}).items():
            slot = self.slots.get(name)
            if slot is None:
                continue
            before = slot.breaker.state
            if state == OPEN:
                slot.breaker.trip()
            else:
                slot.breaker.reset()
            if slot.breaker.state != before:
                self.applied["breaker"] += 1
                log.warning("backend %s: circuit breaker %s by gateway instance %s", name, slot.breaker.state, sender)
        for name, healthy in (message.get("h") or {}).items():
            if self.health.apply(name, bool(healthy), f"gateway instance {sender}"):
                self.applied["health"] += 1
        if self.index is not None:
            for replica, hashes in (message.get("p") or {}).items():
                if replica in self.slots and isinstance(hashes, list):
                    self.index.learn(hashes, replica)
                    self.applied["prefix"] += len(hashes)

    @contextlib.contextmanager
    def _remote(self) -> Iterator[None]:
        """While applying another instance's news, breaker changes are not sent back out."""
        self._applying = True
        try:
            yield
        finally:
            self._applying = False

    def _expire_peers(self) -> None:
        oldest = self.clock() - self.stale_after_s
        gone = [peer for peer, (seen, _) in self._peers.items() if seen <= oldest]
        for peer in gone:
            del self._peers[peer]
        if gone:
            self._sum_loads()

    def _sum_loads(self) -> None:
        totals: dict[str, int] = {}
        for _, loads in self._peers.values():
            for name, n in loads.items():
                totals[name] = totals.get(name, 0) + n
        for name, slot in self.slots.items():
            slot.remote = totals.get(name, 0)


class SharedCollector:
    """/metrics: the instances heard from, and what came from them (the link's health is `owstack_store_*`)."""

    def __init__(self, shared: SharedRouting) -> None:
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        shared = self.shared
        peers = GaugeMetricFamily("owstack_shared_peers", "Other gateway instances heard from recently")
        peers.add_metric([], shared.peers)
        messages = CounterMetricFamily(
            "owstack_shared_messages", "Routing-state messages sent and received", labels=["direction"]
        )
        messages.add_metric(["sent"], shared.sent)
        messages.add_metric(["received"], shared.received)
        applied = CounterMetricFamily(
            "owstack_shared_applied", "Changes taken from other instances (prefix: index entries)", labels=["kind"]
        )
        for kind, n in shared.applied.items():
            applied.add_metric([kind], n)
        yield from (peers, messages, applied)
