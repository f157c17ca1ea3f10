"""Metric families from one or more processes' numbers (`Metrics.state()`), summed, for one scrape."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from owstack.metering.series import COST_KINDS, LATENCY_BUCKETS, STATUS_CLASSES, TOKEN_KINDS, TTFT_BUCKETS, Series

LB = ["layer", "backend"]
#: another worker's queue depth counts while its file is younger than this (seconds)
LIVE_S = 60.0


def _merge(states: list[dict[str, Any]], now: float) -> dict[str, Any]:
    series: dict[tuple[str, str], Series] = {}
    counters: dict[str, dict[tuple[str, ...], float]] = {"fallbacks": {}, "breaker": {}, "upstream_errors": {}}
    ledger: dict[str, float] = {}
    depth = journaled = 0.0
    for i, st in enumerate(states):
        for layer, backend, numbers in st.get("series", []):
            series.setdefault((layer, backend), Series()).add(numbers)
        for layer, n in st.get("fallbacks", {}).items():
            counters["fallbacks"][(layer,)] = counters["fallbacks"].get((layer,), 0) + n
        for name in ("breaker", "upstream_errors"):
            for a, b, n in st.get(name, []):
                counters[name][(a, b)] = counters[name].get((a, b), 0) + n
        for name, n in st.get("ledger", {}).items():
            ledger[name] = ledger.get(name, 0) + n
        if i == 0 or st.get("time", 0) >= now - LIVE_S:  # the first state is this process's own
            depth += st.get("queue_depth", 0)
            journaled += st.get("journal_rows", 0)
    return {"series": series, **counters, "ledger": ledger, "queue_depth": depth, "journal_rows": journaled}


def _histogram(
    name: str, doc: str, bounds: tuple[float, ...], rows: list[tuple[list[str], list[int], float]]
) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=LB)
    for labels, counts, total in rows:
        cumulative = list(accumulate(counts))
        buckets = [(str(b), float(c)) for b, c in zip(bounds, cumulative, strict=False)]
        buckets.append(("+Inf", float(cumulative[-1])))
        family.add_metric(labels, buckets, total)
    return family


def families(states: list[dict[str, Any]], *, now: float) -> list[Metric]:
    m = _merge(states, now)
    series: dict[tuple[str, str], Series] = m["series"]
    requests = CounterMetricFamily("owstack_requests", "Requests by outcome.", labels=[*LB, "status_class"])
    tokens = CounterMetricFamily("owstack_tokens", "Tokens by kind.", labels=[*LB, "kind"])
    cost = CounterMetricFamily("owstack_cost_usd", "Cost in US dollars by kind.", labels=[*LB, "kind"])
    lat, ttft = [], []
    for (layer, backend), s in sorted(series.items()):
        for cls, n in zip(STATUS_CLASSES, s.requests, strict=True):
            if n or cls != "other":
                requests.add_metric([layer, backend, cls], n)
        for kind, a, b in zip(TOKEN_KINDS, s.tokens, s.counted, strict=True):
            tokens.add_metric([layer, backend, kind], a + b)
        for kind, usd in zip(COST_KINDS, s.cost, strict=True):
            cost.add_metric([layer, backend, kind], usd)
        lat.append(([layer, backend], s.lat, s.lat_sum))
        ttft.append(([layer, backend], s.ttft, s.ttft_sum))
    out: list[Metric] = [
        requests,
        tokens,
        _histogram("owstack_request_latency_seconds", "Request latency.", LATENCY_BUCKETS, lat),
        _histogram("owstack_ttft_seconds", "Time to first token.", TTFT_BUCKETS, ttft),
        cost,
    ]
    for name, doc, labels in (
        ("fallbacks", "Moves to another backend.", ["layer"]),
        ("breaker", "Circuit-breaker state changes.", ["backend", "state"]),
        ("upstream_errors", "Failed attempts by backend and error code.", ["backend", "code"]),
    ):
        metric = "owstack_breaker_transitions" if name == "breaker" else f"owstack_{name}"
        family = CounterMetricFamily(metric, doc, labels=labels)
        for key, n in sorted(m[name].items()):
            family.add_metric(list(key), n)
        out.append(family)
    ledger = m["ledger"]
    out.append(GaugeMetricFamily("owstack_ledger_queue_depth", "Ledger records not yet written.", m["queue_depth"]))
    out.append(
        GaugeMetricFamily(
            "owstack_ledger_journal_rows",
            "Ledger records journaled by the ledger process, not yet moved into the ledger table.",
            m["journal_rows"],
        )
    )
    for name, doc in (
        ("written", "Ledger records written."),
        ("rejected", "Ledger records the database refused (logged by request id)."),
        ("dropped", "Ledger records lost: buffer full, or database down at shutdown."),
    ):
        out.append(CounterMetricFamily(f"owstack_ledger_{name}_records", doc, ledger.get(name, 0)))
    out.append(
        CounterMetricFamily(
            "owstack_ledger_write_failures", "Batch writes that failed and were retried.", ledger.get("failures", 0)
        )
    )
    return out
