"""Prometheus metrics for `GET /metrics`, on a registry of their own (never the process-global one).

    owstack_requests_total{layer,backend,status_class}           status_class: 2xx, 4xx, 5xx, other
    owstack_tokens_total{layer,backend,kind}                     kind: prompt, completion, reasoning, cached
    owstack_request_latency_seconds{layer,backend}               histogram
    owstack_ttft_seconds{layer,backend}                          histogram
    owstack_cost_usd_total{layer,backend,kind}                   kind: selfhost, api, counterfactual
    owstack_fallbacks_total{layer}
    owstack_breaker_transitions_total{backend,state}             state: closed, open, half_open, other
    owstack_upstream_errors_total{backend,code}                  code: owstack's error codes, else other
    owstack_ledger_queue_depth, owstack_ledger_journal_rows, owstack_ledger_{written,rejected,dropped}_records_total,
    owstack_ledger_write_failures_total
    owstack_store_up{store}, owstack_store_errors_total{store}, owstack_store_down_seconds{store}   (storage.collector)

Label sets are bounded: `layer` is one of the layers, `backend` one of the configured backend names;
a missing value is "none", anything else "other". Tokens the upstream reported count when the response
ends; tokens owstack counted itself and all costs count when the ledger writer has priced the request
(within `metering.flush_interval_ms`).

The counters are plain Python numbers turned into metric families at scrape time (a custom collector):
`observe` costs about a microsecond, where prometheus_client's locked counters and histograms cost
about 8 for the same eight updates. Each number has one writing thread (the event loop: requests,
latency, reported tokens, fallbacks, errors, breaker; the ledger writer: counted tokens, costs), so
no update is lost without locks.

Several worker processes on one port: give `Metrics(..., shared_dir=DIR)` (`metering.metrics_dir`).
Each process then saves its numbers to DIR/owstack-metrics-<pid>.json (by the writer thread, at every
flush, and at each scrape) and `render()` sums every file, so any worker answers for all of them
(other workers' numbers are at most one flush interval old). Without it, each process reports its own.
"""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric

from owstack.errors import OwstackError
from owstack.layers import LAYERS
from owstack.metering.exposition import families
from owstack.metering.series import COST_KINDS, LATENCY_BUCKETS, TTFT_BUCKETS, Series
from owstack.storage.collector import StoreCollector

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.pipeline.context import RequestContext

BREAKER_STATES = frozenset({"closed", "open", "half_open"})
NONE, OTHER = "none", "other"
_STATUS_INDEX = {2: 0, 4: 1, 5: 2}
_LEDGER = ("written", "rejected", "dropped", "failures")


class LedgerCounters(Protocol):
    """What `Metrics` reports of the ledger writer (metering/writer.py, which attaches itself)."""

    written: int
    rejected: int
    dropped: int
    failures: int

    @property
    def depth(self) -> int: ...

    @property
    def journal_rows(self) -> int: ...


def _error_codes() -> frozenset[str]:
    """Every default code of owstack's typed errors: the value set of the `code` label."""
    codes: set[str] = {"api_error"}
    todo: list[type[OwstackError]] = [OwstackError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.default_code:
            codes.add(cls.default_code)
    return frozenset(codes)


class Metrics:
    """The gateway's metrics. `observe(ctx)` is called by `MeterStage.after` for every request."""

    def __init__(
        self, backends: Iterable[str] = (), *, layers: Iterable[str] = LAYERS, shared_dir: str | None = None
    ) -> None:
        self._layers = frozenset(layers)
        self._backends = frozenset(backends)
        self._codes = _error_codes()
        self._series: dict[tuple[str, str], Series] = {}
        self.fallbacks: dict[str, int] = {}
        self.breaker: dict[tuple[str, str], int] = {}
        self.upstream_errors: dict[tuple[str, str], int] = {}
        #: the ledger writer whose counters and queue depth are reported (set by `attach`)
        self.writer: LedgerCounters | None = None
        self.shared_dir = Path(shared_dir) if shared_dir else None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self.registry.register(StoreCollector())  # owstack_store_{up,errors_total,down_seconds}{store}

    @classmethod
    def from_config(cls, config: Config) -> Metrics:
        """Metrics bounded to the backends of a loaded `owstack.config.load.Config`."""
        m = config.file.metering
        return cls(config.file.backends.keys(), layers=LAYERS, shared_dir=m.metrics_dir)

    def attach(self, writer: LedgerCounters) -> None:
        self.writer = writer

    # labels ----------------------------------------------------------------------------------------
    def layer_label(self, layer: str | None) -> str:
        return NONE if layer is None else layer if layer in self._layers else OTHER

    def backend_label(self, backend: str | None) -> str:
        return NONE if backend is None else backend if backend in self._backends else OTHER

    def _get(self, layer: str | None, backend: str | None) -> Series:
        key = (self.layer_label(layer), self.backend_label(backend))
        series = self._series.get(key)
        if series is None:  # setdefault: two threads creating the same pair end up with one object
            series = self._series.setdefault(key, Series())
        return series

    # updates ---------------------------------------------------------------------------------------
    def observe(self, ctx: RequestContext) -> None:
        """Count one finished request: outcome, latency, TTFT, upstream-reported tokens, fallbacks and
        failed attempts. Call from the event loop's thread. No I/O, no locks."""
        s = self._get(ctx.layer, ctx.backend)
        s.requests[_STATUS_INDEX.get(ctx.status // 100, 3)] += 1
        if ctx.finished_at is not None:
            value = ctx.finished_at - ctx.started
            s.lat[bisect_left(LATENCY_BUCKETS, value)] += 1
            s.lat_sum += value
        if ctx.first_byte_at is not None:
            value = ctx.first_byte_at - ctx.started
            s.ttft[bisect_left(TTFT_BUCKETS, value)] += 1
            s.ttft_sum += value
        usage = ctx.usage
        if usage.reported:
            t = s.tokens
            t[0] += usage.prompt_tokens
            t[1] += usage.completion_tokens
            t[2] += usage.reasoning_tokens
            t[3] += usage.cached_tokens
        attempts = ctx.attempts
        if attempts:
            if len(attempts) > 1:
                layer = self.layer_label(ctx.layer)
                self.fallbacks[layer] = self.fallbacks.get(layer, 0) + len(attempts) - 1
            for attempt in attempts:
                if attempt.outcome != "ok":
                    code = attempt.outcome if attempt.outcome in self._codes else OTHER
                    key = (self.backend_label(attempt.backend), code)
                    self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def add_tokens(
        self, layer: str | None, backend: str | None, prompt: int, completion: int, reasoning: int, cached: int
    ) -> None:
        """Tokens owstack counted itself (the upstream reported none). Ledger writer thread only."""
        c = self._get(layer, backend).counted
        c[0] += prompt
        c[1] += completion
        c[2] += reasoning
        c[3] += cached

    def add_cost(self, layer: str | None, backend: str | None, kind: str, usd: float) -> None:
        """Add to owstack_cost_usd_total (`kind`: selfhost, api, counterfactual). Writer thread only."""
        if usd > 0 and kind in COST_KINDS:
            self._get(layer, backend).cost[COST_KINDS.index(kind)] += usd

    def breaker_event(self, backend: str, state: str) -> None:
        """Count a circuit-breaker transition of `backend` into `state` (closed, open, half_open).
        Call from the event loop's thread."""
        state = state.replace("-", "_").lower()
        key = (self.backend_label(backend), state if state in BREAKER_STATES else OTHER)
        self.breaker[key] = self.breaker.get(key, 0) + 1

    # exposition ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """This process's numbers as plain JSON-able data (for the shared directory)."""
        w = self.writer
        return {
            "pid": os.getpid(),
            "time": time.time(),
            "series": [[k[0], k[1], s.state()] for k, s in list(self._series.items())],
            "fallbacks": dict(self.fallbacks),
            "breaker": [[k[0], k[1], n] for k, n in list(self.breaker.items())],
            "upstream_errors": [[k[0], k[1], n] for k, n in list(self.upstream_errors.items())],
            "ledger": {name: getattr(w, name) for name in _LEDGER} if w is not None else {},
            "queue_depth": w.depth if w is not None else 0,
            "journal_rows": w.journal_rows if w is not None else 0,
        }

    def save(self) -> None:
        """Write this process's numbers to the shared directory (atomically); no-op without one."""
        if self.shared_dir is None:
            return
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        final = self.shared_dir / f"owstack-metrics-{os.getpid()}.json"
        tmp = final.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state()), encoding="utf-8")
        os.replace(tmp, final)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4

    def states(self) -> list[dict[str, Any]]:
        """Every process's numbers: this one's, live, plus the shared directory's other files."""
        own = self.state()
        if self.shared_dir is None:
            return [own]
        self.save()
        out = [own]
        for path in self.shared_dir.glob("owstack-metrics-*.json"):
            if path.name == f"owstack-metrics-{own['pid']}.json":
                continue
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # being replaced right now, or not ours
        return out


class _Collector:
    """Turns the merged numbers into metric families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(families(self.metrics.states(), now=time.time()))
