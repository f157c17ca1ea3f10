"""The ledger table on SQLite and PostgreSQL: round trip, all-or-nothing batches, idempotent inserts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from metering_helpers import count, rows
from sqlalchemy import exc

from owstack import storage
from owstack.metering.ledger import write_batch
from owstack.metering.report import utc


def row(i: int, **changes: Any) -> dict[str, Any]:
    when = datetime(2026, 11, 27, 10, 0, i, 123456, tzinfo=UTC)
    out: dict[str, Any] = {
        "id": i,
        "request_id": f"req-{i:03d}",
        "received_at": when,
        "day": when.date(),
        "tenant": "default",
        "protocol": "openai",
        "layer": "coding",
        "backend": "gpu",
        "model": "nemotron",
        "stream": True,
        "status": 200,
        "client_disconnected": False,
        "prompt_tokens": 100 + i,
        "completion_tokens": 20,
        "reasoning_tokens": 5,
        "cached_tokens": 0,
        "tokens_reported": True,
        "tokens_estimated": False,
        "latency_s": 1.5,
        "ttft_s": 0.2,
        "attempts": 2,
        "fallbacks": 1,
        "attempt_log": [
            {"backend": "a", "outcome": "upstream_error", "latency_s": 0.1},
            {"backend": "gpu", "outcome": "ok"},
        ],
        "cost_usd": 0.0123,
        "cost_kind": "selfhost",
        "counterfactual_usd": 0.05,
        "counterfactual_model": "gpt-5.4",
    }
    out.update(changes)
    return out


def test_rows_round_trip_with_their_types(db_url: str) -> None:
    storage.migrate(db_url)
    written = [row(1), row(2, layer=None, backend=None, attempt_log=None, cost_usd=None, status=401)]
    write_batch(storage.engine(db_url), written)
    got = rows(db_url)
    assert [r["request_id"] for r in got] == ["req-001", "req-002"]
    first = got[0]
    assert utc(first["received_at"]) == written[0]["received_at"]
    assert first["day"] == written[0]["day"]
    assert first["stream"] is True and first["tokens_estimated"] is False
    assert first["attempt_log"] == written[0]["attempt_log"]
    assert first["prompt_tokens"] == 101 and first["cost_usd"] == pytest.approx(0.0123)
    assert got[1]["layer"] is None and got[1]["cost_usd"] is None and got[1]["status"] == 401


def test_a_batch_of_any_size_is_written_whole_in_statements_of_few_shapes(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: at most 512 rows per INSERT, the rest in power-of-two statements (each shape prepared once,
    however many batch sizes the flushes make); PostgreSQL: COPY."""
    from owstack.metering import ledger

    shapes: list[int] = []
    make = ledger._multi_insert_sql
    monkeypatch.setattr(ledger, "_multi_insert_sql", lambda dialect, n: shapes.append(n) or make(dialect, n))
    storage.migrate(db_url)
    start = datetime(2026, 11, 27, tzinfo=UTC)
    batch = [row(0, id=i + 1, request_id=f"req-{i:04d}", received_at=start + timedelta(seconds=i)) for i in range(1300)]
    write_batch(storage.engine(db_url), batch)
    assert count(db_url) == 1300
    assert shapes == ([512, 512, 256, 16, 4] if db_url.startswith("sqlite") else [])


def test_a_batch_with_one_refused_row_writes_nothing(db_url: str) -> None:
    storage.migrate(db_url)
    batch = [row(i) for i in range(5)]
    batch[3]["prompt_tokens"] = -1  # violates the ledger's check constraint
    with pytest.raises(exc.IntegrityError):
        write_batch(storage.engine(db_url), batch)
    assert count(db_url) == 0
    del batch[3]
    write_batch(storage.engine(db_url), batch)
    assert count(db_url) == 4


def test_writing_the_same_batch_twice_records_it_once(db_url: str) -> None:
    storage.migrate(db_url)
    batch = [row(i) for i in range(3)]
    write_batch(storage.engine(db_url), batch)
    write_batch(storage.engine(db_url), batch)  # e.g. a retry after a commit whose reply was lost
    assert count(db_url) == 3


def test_the_writers_tuple_rows_match_the_column_order() -> None:
    """`row_values` (the writer's fast path) must put every value in the column `write_batch` would (and the
    same combination of repeated values, the dims key, at `dim`)."""
    from metering_helpers import make_ctx

    from owstack.metering.costs import Costs
    from owstack.metering.ledger import ROW_COLUMNS, _params
    from owstack.metering.record import row_values, snapshot
    from owstack.pipeline.context import Attempt

    ctx = make_ctx("req-order", attempts=[Attempt("gpu", "upstream_timeout", 1.25), Attempt("edge-local", "ok", 0.5)])
    ctx.tenant, ctx.key_id, ctx.reasoning_policy, ctx.finish_reason = "acme", "key1", "budget:64", "stop"
    pending = snapshot(ctx)
    costs = Costs(0.012, "selfhost", 0.009, 0.4, 0.05, "gpt-5.4")
    fast = row_values(pending, (11, 22, 3, 4), True, costs)
    row = base_row(pending)
    row.update(
        prompt_tokens=11,
        completion_tokens=22,
        reasoning_tokens=3,
        cached_tokens=4,
        tokens_reported=pending.usage.reported,
        tokens_estimated=True,
        cost_usd=0.012,
        cost_kind="selfhost",
        capital_usd=0.009,
        utilization=0.4,
        counterfactual_usd=0.05,
        counterfactual_model="gpt-5.4",
    )
    [slow] = _params([row])
    assert len(fast) == len(ROW_COLUMNS)
    log = ROW_COLUMNS.index("attempt_log")
    assert json.loads(fast[log]) == json.loads(slow[log]) == row["attempt_log"]  # the same JSON, spelt either way
    differing = [
        name
        for name, a, b in zip(ROW_COLUMNS, fast, slow, strict=True)
        if a != b and name not in ("id", "attempt_log", "received_at")
    ]
    assert differing == []
    when = ROW_COLUMNS.index("received_at")  # a timestamp either way, the datetime's to the microsecond
    assert fast[when] == pending.received_at and abs(fast[when] - slow[when]) < 1e-6


def test_the_attempt_log_is_json_with_latencies_to_the_microsecond() -> None:
    """The writer spells the attempt log itself (each backend/outcome prefix encoded once): it must stay
    valid JSON, escape what JSON escapes, and round each latency as round(x, 6) does."""
    from owstack.metering.record import _attempt_log
    from owstack.pipeline.context import Attempt

    attempts = [
        Attempt('gpu "a"\\b', "upstream_timeout", 0.0012345675),
        Attempt("édge", "ok", 2.5e-07),
        Attempt("gpu", "ok", 12.0),
    ]
    for n in (1, 2, 3):  # one attempt takes a shorter path than several
        got = json.loads(_attempt_log(attempts[:n]))
        want = [{"backend": a.backend, "outcome": a.outcome, "latency_s": round(a.latency_s, 6)} for a in attempts[:n]]
        assert got == want
    assert _attempt_log(attempts[:1]) == _attempt_log(attempts[:1])  # the cached prefix gives the same text


def test_combinations_are_interned_once_and_cached_only_after_commit(db_url: str) -> None:
    """Two writers (two processes' caches) share one dims row; a refused batch leaves no dims row and
    nothing cached that would point a later row at it."""
    import sqlalchemy as sa

    from owstack.metering.ledger import Dims, ledger_dims

    storage.migrate(db_url)
    eng = storage.engine(db_url)
    first, second = Dims(), Dims()
    write_batch(eng, [row(1)], first)
    write_batch(eng, [row(2)], second)  # the other cache: ON CONFLICT finds the same combination
    assert list(first.ids.values()) == list(second.ids.values())
    fresh = Dims()
    with pytest.raises(exc.IntegrityError):
        write_batch(eng, [row(3, tenant="new-tenant"), row(4, tenant="new-tenant", status=999)], fresh)
    assert fresh.ids == {}
    with eng.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_dims)).scalar() == 1
    write_batch(eng, [row(3, tenant="new-tenant")], fresh)
    assert [r["tenant"] for r in rows(db_url)] == ["default", "default", "new-tenant"]
    assert len(fresh.ids) == 1


def base_row(p: Any) -> dict[str, Any]:
    """The columns of a writer's `Pending` record that need no counting or pricing, as a dict keyed by the
    view's columns (what `write_batch` takes)."""
    when = datetime.fromtimestamp(p.received_at, UTC)
    attempt_log = [{"backend": a.backend, "outcome": a.outcome, "latency_s": round(a.latency_s, 6)} for a in p.attempts]
    return {
        "request_id": p.request_id,
        "received_at": when,
        "day": when.date(),
        "tenant": p.tenant,
        "key_id": p.key_id,
        "protocol": p.protocol,
        "layer": p.layer,
        "backend": p.backend,
        "engine": p.engine,
        "model": p.model,
        "stream": p.stream,
        "status": p.status,
        "error_code": p.error_code,
        "finish_reason": p.finish_reason,
        "client_disconnected": p.client_disconnected,
        "reasoning_policy": p.reasoning_policy,
        "latency_s": p.latency_s,
        "ttft_s": p.ttft_s,
        "attempts": len(p.attempts),
        "fallbacks": max(0, len(p.attempts) - 1),
        "attempt_log": attempt_log or None,
    }
