"""Active health checks: each backend is probed every `interval_s`; `unhealthy_after` consecutive
failures mark it unhealthy (skipped by the balancer while another replica is healthy), one success
marks it healthy again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger("owstack.health")


class Probe(Protocol):
    name: str

    async def health(self, timeout: float = 2.0) -> bool: ...


class HealthState:
    __slots__ = ("checked", "failures", "healthy")

    def __init__(self) -> None:
        self.healthy = True  # optimistic until the first probe says otherwise
        self.failures = 0
        self.checked = False


class HealthChecker:
    def __init__(
        self,
        backends: Iterable[Probe],
        *,
        interval_s: float,
        timeout_s: float,
        unhealthy_after: int,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.backends = list(backends)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.unhealthy_after = unhealthy_after
        self.state = {b.name: HealthState() for b in self.backends}
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    def healthy(self, name: str) -> bool:
        state = self.state.get(name)
        return True if state is None else state.healthy

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(b) for b in self.backends))

    async def _check(self, backend: Probe) -> None:
        try:
            ok = await asyncio.wait_for(backend.health(self.timeout_s), self.timeout_s + 1)
        except Exception:
            ok = False
        state = self.state[backend.name]
        state.checked = True
        if ok:
            state.failures = 0
            if not state.healthy:
                state.healthy = True
                log.info("backend %s is healthy again", backend.name)
                self._notify(backend.name, True)
            return
        state.failures += 1
        if state.healthy and state.failures >= self.unhealthy_after:
            state.healthy = False
            log.warning("backend %s failed %d health checks: marked unhealthy", backend.name, state.failures)
            self._notify(backend.name, False)

    def apply(self, name: str, healthy: bool, source: str) -> bool:
        """Another instance's health check changed its verdict: take it (until a newer check of ours
        disagrees). No `on_change` call: the news came from outside. True if it changed anything."""
        state = self.state.get(name)
        if state is None or state.healthy == healthy:
            return False
        state.healthy = healthy
        state.failures = 0 if healthy else self.unhealthy_after
        log.info("backend %s marked %s by %s", name, "healthy" if healthy else "unhealthy", source)
        return True

    def _notify(self, name: str, healthy: bool) -> None:
        if self._on_change is not None:
            self._on_change(name, healthy)

    def start(self) -> None:
        if self.backends and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="owstack-health")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_all()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
