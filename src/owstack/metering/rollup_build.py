"""Sum an existing ledger into `ledger_rollups` from scratch: `owstack console rebuild-rollups`, and migration
0008 for a ledger that predates the rollups.

    rebuild(conn)        in the caller's transaction: delete every rollup row, then add every ledger row
    rebuild_url(url)     the same in a transaction of its own, with the ledger locked against filers

Rows are read in id order, `CHUNK` at a time (memory stays flat on a ledger of any size), and summed by
the same `rollups.aggregate` that filing uses, so a rebuilt table equals one kept up to date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from owstack.metering import rollups
from owstack.metering.ledger import ledger_dims, ledger_rows

CHUNK = 20_000


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


_GROUPING = tuple(name for name, _ in rollups.GROUPING)


def _query(last: int | None) -> Any:
    r, d = ledger_rows.c, ledger_dims.c
    picked = [r.id, r.received_at, *(d[n] for n in _GROUPING), *(r[n] for n in rollups.FIELDS[2:])]
    query = sa.select(*picked).select_from(ledger_rows.join(ledger_dims, d.id == r.dim))
    query = query.order_by(r.id).limit(CHUNK)
    return query if last is None else query.where(r.id > last)


def rebuild(
    conn: sa.Connection, *, now: float | None = None, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Replace the rollups with the sums of every row in ledger_rows, on `conn` (in its transaction).
    Returns (ledger rows read, rollup rows written)."""
    now = time.time() if now is None else now
    conn.execute(rollups.ledger_rollups.delete())
    last: int | None = None
    rows_read = 0
    while True:
        chunk = conn.execute(_query(last)).all()
        if not chunk:
            break
        width = 2 + len(_GROUPING)
        groups: dict[tuple[Any, ...], tuple[str, ...]] = {}
        shaped = []
        for row in chunk:
            names = tuple(row[2:width])
            group = groups.get(names)
            if group is None:
                group = groups[names] = rollups.group_of(names)
            shaped.append((_seconds(row[1]), group, *row[width:]))
        rollups.upsert(conn, rollups.aggregate(shaped, now=now))
        last = int(chunk[-1][0])
        rows_read += len(chunk)
        if progress is not None:
            progress(rows_read)
    written = conn.execute(sa.select(sa.func.count()).select_from(rollups.ledger_rollups)).scalar() or 0
    return rows_read, int(written)


def rebuild_url(url: str, *, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """`rebuild` the database at `url` in one transaction that keeps filers out until it commits (SQLite:
    the write lock, taken first; PostgreSQL: the ledger's tables locked against inserts). Journaled rows
    are filed (and summed) later, as usual."""
    from owstack import storage
    from owstack.storage.db import SQLITE_BEGIN

    storage.migrate(url)
    with storage.engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            conn = conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE ledger_rows, ledger_rollups IN SHARE ROW EXCLUSIVE MODE")
            return rebuild(conn, progress=progress)
