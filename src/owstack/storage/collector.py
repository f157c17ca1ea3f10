"""The stores' health for `GET /metrics`, read at scrape time from every `StoreHealth` of the process:

    owstack_store_up{store}              1 while the store answers, 0 during an outage (keys, ledger, limits)
    owstack_store_errors_total{store}    calls that failed for the store's sake (unreachable, timed out)
    owstack_store_down_seconds{store}    how long the current outage has lasted (0 while up)

Each worker process reports its own stores (an outage is seen by each).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from owstack.storage.health import tracked


class StoreCollector:
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("owstack_store_up", "1 while the store answers, 0 during an outage", labels=["store"])
        errors = CounterMetricFamily(
            "owstack_store_errors", "Store calls that failed for the store's sake", labels=["store"]
        )
        down = GaugeMetricFamily(
            "owstack_store_down_seconds", "Seconds the current outage of the store has lasted", labels=["store"]
        )
        by_name: dict[str, list[float]] = {}  # several objects may watch one role: down if any is, errors summed
        for health in tracked():
            state = by_name.setdefault(health.name, [1.0, 0.0, 0.0])
            state[0] = min(state[0], 1.0 if health.up else 0.0)
            state[1] += health.errors
            state[2] = max(state[2], health.down_s)
        for name, (is_up, failed, down_s) in by_name.items():
            up.add_metric([name], is_up)
            errors.add_metric([name], failed)
            down.add_metric([name], down_s)
        yield up
        yield errors
        yield down
