"""What the gateway counts per (layer, backend) pair: the label values, the histogram buckets, one pair's numbers.

The counting side (prometheus.py, `Metrics`) and the scrape side (exposition.py, `families`) both read
these; they stand here so that neither has to import the other for them.
"""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATUS_CLASSES = ("2xx", "4xx", "5xx", "other")
TOKEN_KINDS = ("prompt", "completion", "reasoning", "cached")
COST_KINDS = ("selfhost", "api", "counterfactual")


class Series:
    """The numbers of one (layer, backend) pair. Histogram counts are per bucket (not cumulative), the
    last slot being +Inf."""

    __slots__ = ("cost", "counted", "lat", "lat_sum", "requests", "tokens", "ttft", "ttft_sum")

    def __init__(self) -> None:
        self.requests = [0, 0, 0, 0]
        self.tokens = [0, 0, 0, 0]  # reported by the upstream (event loop)
        self.counted = [0, 0, 0, 0]  # counted by owstack (writer thread)
        self.cost = [0.0, 0.0, 0.0]  # writer thread
        self.lat = [0] * (len(LATENCY_BUCKETS) + 1)
        self.lat_sum = 0.0
        self.ttft = [0] * (len(TTFT_BUCKETS) + 1)
        self.ttft_sum = 0.0

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def add(self, state: dict[str, Any]) -> None:
        for name in self.__slots__:
            mine, theirs = getattr(self, name), state.get(name)
            if isinstance(mine, list) and isinstance(theirs, list) and len(theirs) == len(mine):
                setattr(self, name, [a + b for a, b in zip(mine, theirs, strict=True)])
            elif isinstance(mine, float) and isinstance(theirs, int | float):
                setattr(self, name, mine + theirs)
