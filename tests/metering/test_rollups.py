"""Ledger rollups (owstack.metering.rollups): kept by every filing path in the rows' transaction, equal to a
rebuild from the rows, a batch filed twice counted once, percentiles from the histograms, minute rows
pruned, and migration 0008 summing a ledger that predates it."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from owstack import storage
from owstack.metering import journal, rollups
from owstack.metering.ledger import Dims, _params, ledger, ledger_dims, ledger_rows, write_batch, write_values
from owstack.metering.rollup_build import rebuild
from owstack.metering.rollups import BOUNDS_S, DAY, HOUR, MINUTE, ledger_rollups

NOW = time.time()
#: six hours before today's UTC midnight: the rows span midnight, and stay within two days of now
BASE = int(NOW) // 86400 * 86400 - 6 * 3600


def row(i: int, **changes: Any) -> dict[str, Any]:
    when = datetime.fromtimestamp(BASE + i * 173, UTC)
    out: dict[str, Any] = {
        "id": 10_000 + i,
        "request_id": f"req-{i}",
        "received_at": when,
        "tenant": ("acme", "globex")[i % 2],
        "protocol": "openai",
        "layer": ("coding", "edge")[i % 3 == 0],
        "backend": ("gpu", "local")[i % 3 == 0],
        "model": "m",
        "stream": bool(i % 2),
        "status": 200 if i % 7 else 429,
        "error_code": None if i % 7 else "rate_limit_exceeded",
        "client_disconnected": i % 11 == 0,
        "prompt_tokens": 100 + i,
        "completion_tokens": 20 + i % 5,
        "reasoning_tokens": i % 4,
        "cached_tokens": i % 3,
        "tokens_reported": True,
        "tokens_estimated": i % 5 == 0,
        "latency_s": None if i % 13 == 0 else 0.01 * (1 + i % 50),
        "ttft_s": None if i % 2 else 0.002 * (1 + i % 20),
        "attempts": 1 + (i % 9 == 0),
        "cost_usd": None if i % 17 == 0 else 0.001 * i,
        "cost_kind": "selfhost",
        "capital_usd": 0.0005 * i,
        "counterfactual_usd": 0.003 * i,
        "counterfactual_model": "gpt-5.4",
    }
    out.update(changes)
    return out


def table(url: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    with storage.engine(url).connect() as conn:
        found = conn.execute(sa.select(ledger_rollups)).all()
    width = len(rollups.KEY)
    return {tuple(r[:width]): tuple(round(x, 9) if isinstance(x, float) else x for x in r[width:]) for r in found}


def test_every_filing_path_keeps_the_rollups_equal_to_a_rebuild(db_url: str) -> None:
    storage.migrate(db_url)
    eng = storage.engine(db_url)
    write_batch(eng, [row(i) for i in range(0, 400)])  # the writer's own transaction
    values = _params([row(i) for i in range(400, 800)])
    with eng.connect() as conn:  # the ledger process's path: journaled, then moved
        journal.append(conn, journal.encode(values), len(values))
        assert journal.expand(conn, Dims()).rows == 400
    kept = table(db_url)
    with eng.connect() as conn, conn.begin():
        assert rebuild(conn, now=NOW)[0] == 800
    assert table(db_url) == kept


def test_the_sums_are_the_rows_sums_at_every_grain(db_url: str) -> None:
    storage.migrate(db_url)
    written = [row(i) for i in range(300)]
    write_batch(storage.engine(db_url), written)
    r = ledger_rollups.c
    with storage.engine(db_url).connect() as conn:
        for grain in (MINUTE, HOUR, DAY):
            got = conn.execute(
                sa.select(
                    sa.func.sum(r.requests), sa.func.sum(r.prompt_tokens), sa.func.sum(r.cost_usd),
                    sa.func.sum(r.uncosted), sa.func.sum(r.fallbacks), sa.func.sum(r.latency_n),
                ).where(r.grain == grain)
            ).one()  # fmt: skip
            assert got[0] == 300 and got[1] == sum(w["prompt_tokens"] for w in written)
            assert got[2] == pytest.approx(sum(w["cost_usd"] or 0 for w in written))
            assert got[3] == sum(w["cost_usd"] is None for w in written)
            assert got[4] == sum(w["attempts"] - 1 for w in written)
            assert got[5] == sum(w["latency_s"] is not None for w in written)
        per_day = dict(
            conn.execute(sa.select(r.bucket, sa.func.sum(r.requests)).where(r.grain == DAY).group_by(r.bucket)).all()
        )
        errors = conn.execute(sa.select(sa.func.sum(r.requests)).where(r.grain == DAY, r.status == 429)).scalar()
        tenants = conn.execute(
            sa.select(r.tenant, sa.func.sum(r.requests)).where(r.grain == HOUR).group_by(r.tenant)
        ).all()
    by_day: dict[int, int] = {}
    for w in written:
        start = int(w["received_at"].timestamp()) // DAY * DAY
        by_day[start] = by_day.get(start, 0) + 1
    assert per_day == by_day and len(by_day) >= 2
    assert errors == sum(w["status"] == 429 for w in written)
    assert dict(tenants) == {"acme": 150, "globex": 150}


def test_rows_that_carry_a_dims_id_are_summed_under_its_values(sqlite_url: str) -> None:
    """The writer's own thread (metering.writer: thread) sends the ids of the dims it has cached."""
    storage.migrate(sqlite_url)
    dims = Dims()
    eng = storage.engine(sqlite_url)
    with eng.connect() as conn:
        same = {"tenant": "first", "layer": "coding", "backend": "gpu", "stream": False}
        write_values(conn, _params([row(1, **same)]), dims)
        rollups._dims.clear()  # as a process that did not intern it
        by_id = [(*v[:3], dims.ids[v[3]], *v[4:]) for v in _params([row(i, **same) for i in range(2, 6)])]
        write_values(conn, by_id, dims)
    hours = {k[2]: v[0] for k, v in table(sqlite_url).items() if k[0] == HOUR}
    assert hours == {"first": 5}


def test_a_batch_filed_twice_is_counted_once(db_url: str) -> None:
    storage.migrate(db_url)
    batch = [row(i) for i in range(50)]
    write_batch(storage.engine(db_url), batch)
    write_batch(storage.engine(db_url), batch)  # e.g. journaled twice when the ledger process died
    write_batch(storage.engine(db_url), [*batch[:10], row(50)])  # partly known
    with storage.engine(db_url).connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar()
        summed = conn.execute(
            sa.select(sa.func.sum(ledger_rollups.c.requests)).where(ledger_rollups.c.grain == DAY)
        ).scalar()
    assert count == summed == 51


def test_a_refused_row_leaves_the_rollups_with_only_the_rows_kept(sqlite_url: str) -> None:
    storage.migrate(sqlite_url)
    values = _params([row(i) for i in range(20)] + [row(99, status=999)])
    with storage.engine(sqlite_url).connect() as conn:
        journal.append(conn, journal.encode(values), len(values))
        moved = journal.expand(conn, Dims())
    assert moved.rejected == 1
    assert table(sqlite_url) and sum(v[0] for k, v in table(sqlite_url).items() if k[0] == DAY) == 20


def test_percentiles_from_the_histogram_are_within_a_bucket_of_the_exact_ones() -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(-2.5, 1.2) for _ in range(20_000))
    hist = [0] * rollups.NBUCKETS
    for v in values:
        hist[rollups.bucket_of(v)] += 1
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = values[max(int(q * len(values) + 0.999999) - 1, 0)]
        estimate = rollups.percentile(hist, q)
        assert estimate is not None
        assert exact / 2**0.5 <= estimate <= exact * 2**0.5  # never more than one bucket's width off
        assert abs(estimate - exact) / exact < 0.08  # and on a smooth distribution, within a few percent
    assert rollups.percentile([0] * rollups.NBUCKETS, 0.5) is None
    assert rollups.bucket_of(BOUNDS_S[-1] * 10) == rollups.NBUCKETS - 1


def test_minute_rows_are_kept_two_days_and_pruned_after(sqlite_url: str) -> None:
    storage.migrate(sqlite_url)
    old = datetime.fromtimestamp(NOW, UTC) - timedelta(days=3)
    write_batch(storage.engine(sqlite_url), [row(1, received_at=old), row(2)])
    grains = {}
    for key in table(sqlite_url):
        grains[key[0]] = grains.get(key[0], 0) + 1
    assert grains[MINUTE] == 1 and grains[HOUR] == 2 and grains[DAY] == 2  # the old row has no minute row
    with storage.engine(sqlite_url).connect() as conn, conn.begin():
        rollups.prune(conn, NOW + 3 * DAY)
    assert MINUTE not in {key[0] for key in table(sqlite_url)}
    assert sum(v[0] for k, v in table(sqlite_url).items() if k[0] == DAY) == 2


def test_migration_0008_sums_a_ledger_that_predates_it(db_url: str) -> None:
    from alembic import command

    from owstack.storage.migrator import alembic_config

    eng = storage.engine(db_url)
    with eng.connect() as conn, conn.begin():
        command.upgrade(alembic_config(connection=conn), "0005_ledger_journal")
    with eng.begin() as conn:  # rows filed by an owstack without rollups
        conn.execute(
            sa.insert(ledger_dims).values(
                id=1, key="k", tenant="acme", protocol="openai", stream=False, cost_kind="selfhost"
            )
        )
        conn.execute(
            sa.insert(ledger_rows),
            [{"id": i, "request_id": f"r{i}", "received_at": datetime.fromtimestamp(NOW - i * 600, UTC), "dim": 1,
              "status": 200, "client_disconnected": False, "prompt_tokens": 10, "completion_tokens": 5,
              "reasoning_tokens": 0, "cached_tokens": 0, "tokens_reported": True, "tokens_estimated": False,
              "latency_s": 0.5, "attempts": 1, "cost_usd": 0.01} for i in range(1, 31)],
        )  # fmt: skip
    storage.migrate(db_url)
    for grain in (MINUTE, HOUR, DAY):
        assert sum(v[0] for k, v in table(db_url).items() if k[0] == grain) == 30
