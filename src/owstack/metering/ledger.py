"""The ledger: one row per request (served, failed or refused), written in all-or-nothing batches.

Stored compactly, read as one wide table. A request's row in `ledger_rows` holds what varies per request
(ids, time, status, tokens, timings, costs); what repeats across requests (tenant, key, protocol, layer,
backend, engine, model, stream, finish reason, reasoning policy, cost kind, counterfactual model) is one
row of `ledger_dims`, referenced by its integer id. The view `ledger` joins the two back into the columns
documented in docs/metering.md, and every query reads that view (`ledger` below). Binding a dozen strings
per request cost the writer more than everything else it did (bench/ledger_rows.py); the compact row is
what keeps metering within a few microseconds of the request.

    write_values(conn, rows, dims)     the writer's path: rows from `record.row_values`
    write_batch(engine, dicts)         any caller: dicts keyed by the view's columns (tests, imports)

The columns are declared once, in `metering/columns.py`; the tables and the view below are made from that
list. Migrations: `0001_ledger` created the wide table, `0003_ledger_compact` split it into these two tables
and the view. A new column is a new entry there and a new revision (tests/metering/test_columns.py fails
until both agree).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.metering import columns, rollups
from owstack.metering.columns import Column
from owstack.storage.schema import metadata

_TYPES: dict[str, Callable[[Column], sa.types.TypeEngine[Any]]] = {
    # INTEGER on SQLite: the rowid itself, no separate index
    "id": lambda c: sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
    "str": lambda c: sa.String(c.length),
    "int": lambda c: sa.Integer(),
    "smallint": lambda c: sa.SmallInteger(),
    "bool": lambda c: sa.Boolean(),
    "float": lambda c: sa.Double(),
    "time": lambda c: sa.DateTime(timezone=True),
    "json": lambda c: sa.JSON(),
    "date": lambda c: sa.Date(),
}


def _column(c: Column) -> sa.Column[Any]:
    if c.kind == "id":
        return sa.Column(c.name, _TYPES["id"](c), primary_key=True, autoincrement=False)
    return sa.Column(c.name, _TYPES[c.kind](c), nullable=c.nullable)


#: the per-request columns, in the order of `record.row_values` (`dim` holds the dims' id)
ledger_rows = sa.Table(
    "ledger_rows",
    metadata,
    *(_column(c) for c in columns.ROWS),
    sa.Index("ix_ledger_rows_received_at", "received_at"),
    sa.Index("ix_ledger_rows_dim_received_at", "dim", "received_at"),
    sa.CheckConstraint("status >= 100 AND status <= 599", name="status_range"),
    sa.CheckConstraint(
        "prompt_tokens >= 0 AND completion_tokens >= 0 AND reasoning_tokens >= 0 AND cached_tokens >= 0",
        name="tokens_nonnegative",
    ),
)

#: the columns that repeat across requests, one row per distinct combination
ledger_dims = sa.Table(
    "ledger_dims",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    #: the combination as a JSON array (NULLs included), unique: what interning looks up
    sa.Column("key", sa.Text, nullable=False, unique=True),
    *(_column(c) for c in columns.DIMS),
)

ROW_COLUMNS = columns.ROW_COLUMNS
DIM_COLUMNS = columns.DIM_COLUMNS
#: each dims column's longest string (0: not a string column)
_DIM_LIMITS = tuple(c.length for c in columns.DIMS)

#: the view every reader queries (created by the migration, declared apart from `metadata` so that
#: autogenerate does not take it for a table)
views = sa.MetaData()
ledger = sa.Table("ledger", views, *(sa.Column(c.name, _TYPES[c.kind](c)) for c in columns.LEDGER if c.place != "link"))

COLUMNS: tuple[str, ...] = columns.VIEW_COLUMNS


# interning -----------------------------------------------------------------------------------------------


class Dims:
    """The `ledger_dims` ids of one database, cached. `ids.get(key)` is the writer's hot path; a key not
    seen yet is interned inside the batch's transaction and cached only once that transaction commits."""

    #: cached combinations at most (beyond it the cache starts again; the table keeps them all)
    MAX_CACHED = 10_000

    def __init__(self) -> None:
        self.ids: dict[tuple[Any, ...], int] = {}

    def resolve(self, conn: sa.Connection, keys: set[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        """Ids for `keys`, inserting the missing combinations with each string cut to its column's length;
        not cached here (`write_values` caches them once the transaction commits)."""
        out: dict[tuple[Any, ...], int] = {}
        if conn.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        for key in keys:
            short = tuple(
                v[:limit] if limit and isinstance(v, str) and len(v) > limit else v
                for v, limit in zip(key, _DIM_LIMITS, strict=True)
            )
            text = orjson.dumps(short).decode()
            values = dict(zip(DIM_COLUMNS, short, strict=True))
            # another process may intern the same combination at the same time: the unique key decides
            conn.execute(insert(ledger_dims).values(key=text, **values).on_conflict_do_nothing(index_elements=["key"]))
            out[key] = int(conn.execute(sa.select(ledger_dims.c.id).where(ledger_dims.c.key == text)).scalar_one())
        return out

    def remember(self, interned: dict[tuple[Any, ...], int]) -> None:
        """Cache ids interned by a committed transaction."""
        if interned:
            if len(self.ids) + len(interned) > self.MAX_CACHED:  # e.g. clients inventing model names
                self.ids.clear()
            self.ids.update(interned)


# writing ---------------------------------------------------------------------------------------------------


_second_cache: dict[int, str] = {}


def _sqlite_time(ts: float) -> str:
    """received_at as SQLAlchemy stores it in SQLite, formatting each UTC second once."""
    second = int(ts)
    micro = round((ts - second) * 1_000_000)  # rounded as datetime.fromtimestamp rounds
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    prefix = _second_cache.get(second)
    if prefix is None:
        if len(_second_cache) > 64:
            _second_cache.clear()
        prefix = _second_cache[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return f"{prefix}.{micro:06d}"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _params(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Dicts keyed by `COLUMNS` (missing keys are NULL) as `row_values` tuples: the dims' key tuple in
    place of `dim`, received_at as a POSIX timestamp (a naive datetime is local time, as Python takes it)."""
    from owstack.metering.record import new_id

    out = []
    for row in rows:
        values: list[Any] = []
        for name in ROW_COLUMNS:
            value = row.get(name)
            if name == "dim":
                value = tuple(row.get(n) for n in DIM_COLUMNS)
            elif name == "attempt_log" and value is not None:
                value = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, datetime):
                value = value.timestamp()
            values.append(value)
        if values[0] is None:
            values[0] = new_id()
        out.append(tuple(values))
    return out


@lru_cache(maxsize=64)
def _multi_insert_sql(dialect: str, rows: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    one = "(" + ", ".join([mark] * len(ROW_COLUMNS)) + ")"
    values = ", ".join([one] * rows)
    return f"INSERT INTO ledger_rows ({', '.join(ROW_COLUMNS)}) VALUES {values} ON CONFLICT (id) DO NOTHING"


#: rows per statement at most: 21 x 512 parameters, under SQLite's limit (32,766 since 3.32); the fewer
#: statements per batch, the fewer times the writer hands Python's GIL back and forth with the event loop
_MULTI_ROWS = 512


def insert_values(conn: sa.Connection, values: Sequence[tuple[Any, ...]], dims: Dims) -> dict[tuple[Any, ...], int]:
    """Insert `row_values` tuples (received_at as a POSIX timestamp; at `dim`, the dims' id, or their key
    tuple when not cached).

    SQLite: multi-row INSERTs of up to 512 rows rather than an executemany (the driver releases Python's GIL
    once per statement instead of once per row). PostgreSQL: COPY into a per-session staging table, then
    one INSERT ... SELECT (`_copy_insert`). Returns the dims interned on the way (cache them after commit)."""
    # positions 0, 2 and 3 are id, received_at and dim (`columns.ID`, `RECEIVED_AT`, `DIM`)
    fresh = {v[3] for v in values if type(v[3]) is tuple}
    interned: dict[tuple[Any, ...], int] = {}
    ids = dims.ids
    if fresh:
        interned = dims.resolve(conn, fresh - ids.keys())
        ids = {**ids, **interned}
    # the rollups' sums, in the rows' transaction (they never drift); a batch filed before is not summed again
    rollups.add(conn, rollups.unfiled(conn, values), ROW_COLUMNS, DIM_COLUMNS)
    dialect = conn.dialect.name
    when = _sqlite_time if dialect == "sqlite" else _utc
    # the driver's types: received_at as the dialect stores it, the dims' id at `dim`
    values = [(v[0], v[1], when(v[2]), v[3] if type(v[3]) is int else ids[v[3]], *v[4:]) for v in values]
    if dialect != "sqlite":
        _copy_insert(conn, values)
        return interned
    start = 0
    while start < len(values):  # statements of 512, 256, ... 1 rows: ten shapes, each prepared once
        size = min(_MULTI_ROWS, 1 << (len(values) - start).bit_length() - 1)
        part = values[start : start + size]
        conn.exec_driver_sql(_multi_insert_sql(dialect, size), tuple(chain.from_iterable(part)))
        start += size
    return interned


_STAGING = "ledger_rows_in"


def _copy_insert(conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL's bulk path: COPY the rows into a temporary table (created once per session, emptied at
    commit and on rollback), then move them with INSERT ... ON CONFLICT (id) DO NOTHING, so that a retried batch stays
    idempotent and the table's constraints still refuse a bad row (which fails the whole batch, as an
    INSERT would). psycopg re-parses the placeholders of a statement too long for its query cache (a
    128-row INSERT) on each execution, and its executemany costs about 12 µs of client CPU per row; COPY
    about 4 (measurements in docs/metering.md)."""
    import psycopg

    names = ", ".join(ROW_COLUMNS)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (LIKE ledger_rows INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {_STAGING} ({names}) FROM STDIN"
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for row in values:
                copy.write_row(row)
    except psycopg.Error as exc:  # as SQLAlchemy would have wrapped it (IntegrityError, DataError, ...)
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    move = f"INSERT INTO ledger_rows ({names}) SELECT {names} FROM {_STAGING} ON CONFLICT (id) DO NOTHING"
    conn.exec_driver_sql(move)


def write_values(conn: sa.Connection, values: Sequence[tuple[Any, ...]], dims: Dims) -> dict[tuple[Any, ...], int]:
    """`insert_values` in one transaction on `conn`: all of them or (on any error, which propagates) none.
    Returns the dims interned (and now cached in `dims`)."""
    with conn.begin():
        interned = insert_values(conn, values, dims)
    dims.remember(interned)
    return interned


def write_batch(eng: sa.Engine, rows: Sequence[dict[str, Any]], dims: Dims | None = None) -> None:
    """Insert `rows` (dicts keyed by `COLUMNS`; missing keys are NULL, a missing id is assigned) in one
    transaction: all of them or (on any error, which propagates) none."""
    if rows:
        with eng.connect() as conn:
            write_values(conn, _params(rows), dims if dims is not None else Dims())
