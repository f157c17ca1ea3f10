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

Migrations: `0001_ledger` created the wide table, `0003_ledger_compact` split it into these two tables and
the view. Keep the declarations below and the migrations in step (a new column is a new revision).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.metering import rollups
from owstack.storage.schema import metadata

#: the per-request columns, in the order of `record.row_values` (`dim` holds the dims' id)
ledger_rows = sa.Table(
    "ledger_rows",
    metadata,
    #: a unique id the writer assigns once (a random per-process prefix and a counter), so that a
    #: retried batch cannot be recorded twice; SQLite's rowid
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("client_disconnected", sa.Boolean, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False),
    sa.Column("cached_tokens", sa.Integer, nullable=False),
    #: the token counts came from the upstream's usage
    sa.Column("tokens_reported", sa.Boolean, nullable=False),
    #: counted by an estimate (characters / 4), not by the model's tokenizer
    sa.Column("tokens_estimated", sa.Boolean, nullable=False),
    sa.Column("latency_s", sa.Double),
    sa.Column("ttft_s", sa.Double),
    sa.Column("attempts", sa.SmallInteger, nullable=False),
    #: [{"backend", "outcome", "latency_s"}, ...] in the order tried
    sa.Column("attempt_log", sa.JSON),
    #: what the request cost: self-hosted hardware share, embedded CPU power, or the proprietary API price
    sa.Column("cost_usd", sa.Double),
    #: the part of cost_usd that amortizes owned hardware (payback counts it apart)
    sa.Column("capital_usd", sa.Double),
    #: the backend utilization the self-hosted cost was divided by
    sa.Column("utilization", sa.Double),
    #: what the layer's proprietary counterfactual model would have charged
    sa.Column("counterfactual_usd", sa.Double),
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
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("protocol", sa.String(16), nullable=False),
    sa.Column("layer", sa.String(16)),
    sa.Column("backend", sa.String(64)),
    sa.Column("engine", sa.String(32)),
    sa.Column("model", sa.String(256)),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("finish_reason", sa.String(32)),
    sa.Column("reasoning_policy", sa.String(32)),
    sa.Column("cost_kind", sa.String(16), nullable=False),
    sa.Column("counterfactual_model", sa.String(128)),
)

ROW_COLUMNS: tuple[str, ...] = tuple(c.name for c in ledger_rows.columns)
DIM_COLUMNS: tuple[str, ...] = tuple(c.name for c in ledger_dims.columns)[2:]
#: each dims column's longest string (0: not a string column)
_DIM_LIMITS = tuple(getattr(ledger_dims.c[n].type, "length", None) or 0 for n in DIM_COLUMNS)
assert ROW_COLUMNS[2:4] == ("received_at", "dim")  # where insert_values converts

#: the view's columns, in the order of 0001's wide table (each from one of the two tables, but for `day`,
#: the UTC date of received_at, for --by day, and `fallbacks`, attempts - 1)
_VIEW_ORDER = (
    "id", "request_id", "received_at", "day", "tenant", "key_id", "protocol", "layer", "backend", "engine",
    "model", "stream", "status", "error_code", "finish_reason", "client_disconnected", "reasoning_policy",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "tokens_reported",
    "tokens_estimated", "latency_s", "ttft_s", "attempts", "fallbacks", "attempt_log", "cost_usd", "cost_kind",
    "capital_usd", "utilization", "counterfactual_usd", "counterfactual_model",
)  # fmt: skip
_DERIVED: dict[str, sa.types.TypeEngine[Any]] = {
    "day": sa.Date(),
    "fallbacks": sa.SmallInteger(),
}


def _view_type(name: str) -> sa.types.TypeEngine[Any]:
    if name in _DERIVED:
        return _DERIVED[name]
    return (ledger_rows if name in ledger_rows.c else ledger_dims).c[name].type


#: the view every reader queries (created by the migration, declared apart from `metadata` so that
#: autogenerate does not take it for a table)
views = sa.MetaData()
ledger = sa.Table("ledger", views, *(sa.Column(name, _view_type(name)) for name in _VIEW_ORDER))

COLUMNS: tuple[str, ...] = tuple(c.name for c in ledger.columns)


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
