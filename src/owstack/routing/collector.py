"""Prometheus gauges of the routing state, read at scrape time: outstanding requests, health, breaker
state per backend, the embedded engine's queue and token counters, and prefix routing's outcomes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from owstack.routing.breaker import CLOSED, HALF_OPEN, OPEN
from owstack.routing.health import HealthChecker
from owstack.routing.prefix import PrefixPolicy
from owstack.routing.slot import Slot

_BREAKER = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class RoutingCollector:
    def __init__(
        self, slots: dict[str, Slot], health: HealthChecker, prefix: Mapping[str, PrefixPolicy] | None = None
    ) -> None:
        self.slots = slots
        self.health = health
        self.prefix = dict(prefix or {})

    def collect(self) -> Iterator[Metric]:
        outstanding = GaugeMetricFamily(
            "owstack_backend_outstanding_requests", "Requests in flight from this process", labels=["backend"]
        )
        remote = GaugeMetricFamily(
            "owstack_backend_remote_requests",
            "Requests in flight from the other gateway instances, as last reported",
            labels=["backend"],
        )
        healthy = GaugeMetricFamily("owstack_backend_healthy", "1 when the health check passes", labels=["backend"])
        breaker = GaugeMetricFamily(
            "owstack_backend_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", labels=["backend"]
        )
        queue = GaugeMetricFamily(
            "owstack_engine_queue_depth", "Embedded engine: queued or running", labels=["backend"]
        )
        tokens = CounterMetricFamily(
            "owstack_engine_tokens_generated", "Embedded engine: tokens generated", labels=["backend"]
        )
        cancelled = CounterMetricFamily(
            "owstack_engine_generations_cancelled",
            "Embedded engine: generations stopped by a client going away",
            labels=["backend"],
        )
        for name, slot in self.slots.items():
            outstanding.add_metric([name], slot.outstanding)
            remote.add_metric([name], slot.remote)
            healthy.add_metric([name], 1.0 if self.health.healthy(name) else 0.0)
            breaker.add_metric([name], _BREAKER[slot.breaker.state])
            backend = slot.backend
            if hasattr(backend, "queue_depth"):
                queue.add_metric([name], backend.queue_depth)
                tokens.add_metric([name], getattr(backend, "tokens_generated", 0))
                cancelled.add_metric([name], getattr(backend, "generations_cancelled", 0))
        yield from (outstanding, remote, healthy, breaker, queue, tokens, cancelled)
        if self.prefix:
            yield from self._prefix()

    def _prefix(self) -> Iterator[Metric]:
        routed = CounterMetricFamily(
            "owstack_prefix_routing",
            "Prefix routing: hit (the prefix's replica), miss (none remembered), overloaded (too busy)",
            labels=["layer", "outcome"],
        )
        matched = CounterMetricFamily(
            "owstack_prefix_matched_bytes", "Prompt bytes routed to a replica that had them", labels=["layer"]
        )
        entries = GaugeMetricFamily("owstack_prefix_index_entries", "Prefix hashes remembered", labels=["layer"])
        for layer, policy in self.prefix.items():
            for outcome, n in policy.outcomes.items():
                routed.add_metric([layer, outcome], n)
            matched.add_metric([layer], policy.matched_bytes)
            entries.add_metric([layer], len(policy.index))
        yield from (routed, matched, entries)
