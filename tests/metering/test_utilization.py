"""Utilization and concurrency measured from request intervals, and from the ledger itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from owstack import storage
from owstack.metering.ledger import write_batch
from owstack.metering.utilization import load_of, measure


def test_union_and_concurrency_of_overlapping_requests() -> None:
    # busy 0-15 (two overlapping requests) and 30-40: 25 s busy in 100 s, 30 request-seconds
    load = load_of([(0.0, 10.0), (5.0, 10.0), (30.0, 10.0)], 0.0, 100.0)
    assert load is not None
    assert load.utilization == pytest.approx(0.25)
    assert load.concurrency == pytest.approx(30.0 / 25.0)


def test_intervals_are_clipped_to_the_window() -> None:
    load = load_of([(-5.0, 10.0), (95.0, 10.0)], 0.0, 100.0)  # 5 s inside at each end
    assert load is not None and load.utilization == pytest.approx(0.10) and load.concurrency == 1.0
    assert load_of([], 0.0, 100.0) is None


def _row(i: int, backend: str, start: float, latency: float) -> dict[str, object]:
    when = datetime.fromtimestamp(start, UTC)
    return {
        "id": f"{i:032x}", "request_id": f"r{i}", "received_at": when, "day": when.date(), "tenant": "t",
        "protocol": "openai", "backend": backend, "stream": False, "status": 200, "client_disconnected": False,
        "prompt_tokens": 1, "completion_tokens": 1, "reasoning_tokens": 0, "cached_tokens": 0,
        "tokens_reported": True, "tokens_estimated": False, "latency_s": latency, "attempts": 1, "fallbacks": 0,
        "cost_kind": "selfhost",
    }  # fmt: skip


def test_measure_reads_each_backend_from_the_ledger(db_url: str) -> None:
    storage.migrate(db_url)
    now = 1_800_000_000.0
    write_batch(
        storage.engine(db_url),
        [
            _row(1, "gpu", now - 3000, 100.0),  # first ever request: the window starts here
            _row(2, "gpu", now - 2950, 100.0),  # overlaps the first by 50 s
            _row(3, "gpu", now - 600, 300.0),
            _row(4, "other", now - 100, 50.0),
        ],
    )
    load = measure(storage.engine(db_url), ["gpu", "idle"], window_s=3600.0, now=now)
    assert set(load) == {"gpu"}
    # busy: 150 s + 300 s over the 3000 s since the first request; 500 request-seconds
    assert load["gpu"].utilization == pytest.approx(450.0 / 3000.0)
    assert load["gpu"].concurrency == pytest.approx(500.0 / 450.0)
    short = measure(storage.engine(db_url), ["gpu"], window_s=1000.0, now=now)
    assert short["gpu"].utilization == pytest.approx(300.0 / 1000.0)
