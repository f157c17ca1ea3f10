"""GET /metrics' body, parsed with prometheus_client's own parser: values, bounded labels, workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from metering_helpers import make_ctx, sample
from prometheus_client.parser import text_string_to_metric_families

from owstack.metering.prometheus import Metrics
from owstack.metering.series import LATENCY_BUCKETS
from owstack.pipeline.context import Attempt
from owstack.types import Usage

BACKENDS = ("gpu", "edge-local")


def observe_mixed(m: Metrics) -> None:
    m.observe(make_ctx("a", usage=Usage(100, 20, 5, 10, True), latency=0.3, ttft=0.02))
    m.observe(make_ctx("b", usage=Usage(50, 10, 0, 0, True), latency=7.0, ttft=1.5))
    fallback = [Attempt("gpu", "upstream_timeout", 1.0), Attempt("edge-local", "ok", 0.5)]
    m.observe(make_ctx("c", backend="edge-local", attempts=fallback, latency=1.5, ttft=1.2))
    m.observe(make_ctx("d", layer=None, backend=None, status=401, latency=0.001, ttft=None))
    m.observe(make_ctx("e", status=502, attempts=[Attempt("gpu", "weird_code", 0.1)], latency=0.09, ttft=None))


def test_values_parse_with_prometheus_clients_parser() -> None:
    m = Metrics(BACKENDS)
    observe_mixed(m)
    m.add_tokens("coding", "edge-local", 30, 40, 0, 0)
    m.add_cost("coding", "gpu", "selfhost", 0.25)
    m.add_cost("coding", "gpu", "counterfactual", 1.5)
    body, content_type = m.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    gpu = {"layer": "coding", "backend": "gpu"}
    assert sample(body, "owstack_requests_total", **gpu, status_class="2xx") == 2
    assert sample(body, "owstack_requests_total", **gpu, status_class="5xx") == 1
    assert sample(body, "owstack_requests_total", layer="none", backend="none", status_class="4xx") == 1
    assert sample(body, "owstack_tokens_total", **gpu, kind="prompt") == 150
    assert sample(body, "owstack_tokens_total", **gpu, kind="reasoning") == 5
    assert sample(body, "owstack_tokens_total", **gpu, kind="cached") == 10
    assert sample(body, "owstack_tokens_total", layer="coding", backend="edge-local", kind="completion") == 40
    assert sample(body, "owstack_request_latency_seconds_count", **gpu) == 3
    assert sample(body, "owstack_request_latency_seconds_sum", **gpu) == pytest.approx(7.39)
    assert sample(body, "owstack_request_latency_seconds_bucket", **gpu, le="0.1") == 1
    assert sample(body, "owstack_request_latency_seconds_bucket", **gpu, le="0.5") == 2
    assert sample(body, "owstack_request_latency_seconds_bucket", **gpu, le="5.0") == 2
    assert sample(body, "owstack_request_latency_seconds_bucket", **gpu, le="10.0") == 3
    assert sample(body, "owstack_request_latency_seconds_bucket", **gpu, le="+Inf") == 3
    assert sample(body, "owstack_ttft_seconds_count", **gpu) == 2
    assert sample(body, "owstack_ttft_seconds_bucket", **gpu, le="0.025") == 1
    assert sample(body, "owstack_cost_usd_total", **gpu, kind="selfhost") == 0.25
    assert sample(body, "owstack_cost_usd_total", **gpu, kind="counterfactual") == 1.5
    assert sample(body, "owstack_fallbacks_total", layer="coding") == 1
    assert sample(body, "owstack_upstream_errors_total", backend="gpu", code="upstream_timeout") == 1
    assert sample(body, "owstack_upstream_errors_total", backend="gpu", code="other") == 1


def test_histogram_buckets_are_cumulative_and_complete() -> None:
    m = Metrics(BACKENDS)
    # (latency comes from perf_counter differences, so exact bucket edges are not representable: stay clear)
    for latency in (0.049, 0.051, 299.0, 301.0):
        m.observe(make_ctx("x", latency=latency, ttft=None))
    [family] = [
        f for f in text_string_to_metric_families(m.render()[0].decode()) if f.name == "owstack_request_latency_seconds"
    ]
    buckets = [(s.labels["le"], s.value) for s in family.samples if s.name.endswith("_bucket")]
    assert [le for le, _ in buckets] == [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]
    values = [v for _, v in buckets]
    assert values == sorted(values) and values[0] == 1 and values[1] == 2 and values[-2] == 3 and values[-1] == 4


def test_label_values_stay_bounded() -> None:
    m = Metrics(BACKENDS)
    for i in range(50):
        ctx = make_ctx(f"r{i}")
        ctx.layer, ctx.backend = f"layer-{i}", f"backend-{i}"  # values no config names
        m.observe(ctx)
    m.breaker_event("gpu", "half-open")
    m.breaker_event("gpu", "OPEN")
    m.breaker_event("unknown-backend", "exploded")
    body = m.render()[0]
    assert sample(body, "owstack_requests_total", layer="other", backend="other", status_class="2xx") == 50
    assert sample(body, "owstack_breaker_transitions_total", backend="gpu", state="half_open") == 1
    assert sample(body, "owstack_breaker_transitions_total", backend="gpu", state="open") == 1
    assert sample(body, "owstack_breaker_transitions_total", backend="other", state="other") == 1
    label_values = {
        (k, v)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        for k, v in s.labels.items()
        if k in ("layer", "backend")
    }
    assert label_values <= {("layer", x) for x in ("coding", "multimodal", "edge", "none", "other")} | {
        ("backend", x) for x in (*BACKENDS, "none", "other")
    }


WORKER = """
import sys
from owstack.metering.prometheus import Metrics
sys.path.insert(0, {helpers!r})
from metering_helpers import make_ctx
m = Metrics(("gpu",), shared_dir={dir!r})
for i in range({n}):
    m.observe(make_ctx(f"r{{i}}", latency=0.2))
m.breaker_event("gpu", "open")
m.save()
"""


def test_workers_sharing_a_directory_report_each_others_numbers(tmp_path: Path) -> None:
    helpers = str(Path(__file__).parent)
    for n in (3, 4):
        code = WORKER.format(helpers=helpers, dir=str(tmp_path), n=n)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    m = Metrics(("gpu",), shared_dir=str(tmp_path))
    m.observe(make_ctx("own", latency=0.2))
    body = m.render()[0]
    gpu = {"layer": "coding", "backend": "gpu"}
    assert sample(body, "owstack_requests_total", **gpu, status_class="2xx") == 3 + 4 + 1
    assert sample(body, "owstack_request_latency_seconds_count", **gpu) == 8
    assert sample(body, "owstack_breaker_transitions_total", backend="gpu", state="open") == 2
    assert len(list(tmp_path.glob("owstack-metrics-*.json"))) == 3
