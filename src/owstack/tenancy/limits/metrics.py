"""The limit stage's numbers for `GET /metrics` (per process), read at scrape time:

    owstack_limit_refusals_total{reason}   requests, tokens, budget, unavailable (503: store down, deny)
    owstack_limit_unchecked_total          requests served without a check (store down, on_redis_error: allow)
    owstack_limit_store_errors_total       reservations and seeds the store failed (timeouts, refused connections)

Plain integers written by the event loop (`stage.Counters`); with several workers each reports its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from owstack.tenancy.limits.stage import Counters


class LimitsCollector:
    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        refused = CounterMetricFamily(
            "owstack_limit_refusals", "Requests refused by the limit stage", labels=["reason"]
        )
        for reason, n in c.refused.items():
            refused.add_metric([reason], n)
        yield refused
        yield CounterMetricFamily(
            "owstack_limit_unchecked", "Requests served without a limit check (store unreachable)", value=c.unchecked
        )
        yield CounterMetricFamily("owstack_limit_store_errors", "Limit store calls that failed", value=c.store_errors)
