"""The ledger table: one row per request (served, failed or refused), written in all-or-nothing batches.

Columns are documented in docs/metering.md. The migration `0001_ledger` creates this table; keep the two
in step (a new column is a new revision, never an edit of 0001 once released).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from owstack.storage.schema import metadata

ledger = sa.Table(
    "ledger",
    metadata,
    #: a random id the writer assigns once, so that a retried batch cannot be recorded twice
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("request_id", sa.String(128), nullable=False, index=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("day", sa.Date, nullable=False),  # UTC date of received_at, for --by day
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("protocol", sa.String(16), nullable=False),
    sa.Column("layer", sa.String(16)),
    sa.Column("backend", sa.String(64)),
    sa.Column("engine", sa.String(32)),
    sa.Column("model", sa.String(256)),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("finish_reason", sa.String(32)),
    sa.Column("client_disconnected", sa.Boolean, nullable=False),
    sa.Column("reasoning_policy", sa.String(32)),
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
    sa.Column("fallbacks", sa.SmallInteger, nullable=False),
    #: [{"backend", "outcome", "latency_s"}, ...] in the order tried
    sa.Column("attempt_log", sa.JSON),
    #: what the request cost: self-hosted hardware share, embedded CPU power, or the proprietary API price
    sa.Column("cost_usd", sa.Double),
    sa.Column("cost_kind", sa.String(16), nullable=False),
    #: the part of cost_usd that amortizes owned hardware (payback counts it apart)
    sa.Column("capital_usd", sa.Double),
    #: the backend utilization the self-hosted cost was divided by
    sa.Column("utilization", sa.Double),
    #: what the layer's proprietary counterfactual model would have charged
    sa.Column("counterfactual_usd", sa.Double),
    sa.Column("counterfactual_model", sa.String(128)),
    sa.Index("ix_ledger_backend_received_at", "backend", "received_at"),
    sa.CheckConstraint("status >= 100 AND status <= 599", name="status_range"),
    sa.CheckConstraint(
        "prompt_tokens >= 0 AND completion_tokens >= 0 AND reasoning_tokens >= 0 AND cached_tokens >= 0",
        name="tokens_nonnegative",
    ),
)

COLUMNS: tuple[str, ...] = tuple(c.name for c in ledger.columns)
#: SQLAlchemy's own SQLite DATETIME storage format, so that its queries compare and parse these values
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@cache
def _insert_sql(dialect: str) -> str:
    """INSERT ... ON CONFLICT (id) DO NOTHING: a retried batch that was in fact committed is a no-op."""
    mark = "?" if dialect == "sqlite" else "%s"
    names = ", ".join(COLUMNS)
    marks = ", ".join([mark] * len(COLUMNS))
    return f"INSERT INTO ledger ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"


def _sqlite_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_SQLITE_DATETIME)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _converters(dialect: str) -> list[tuple[int, Callable[[Any], Any]]]:
    """(column index, function) for the columns whose Python values the driver cannot take as they are."""
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(ledger.columns):
        kind = column.type
        if isinstance(kind, sa.JSON):
            out.append((i, _json))
        elif dialect == "sqlite" and isinstance(kind, sa.DateTime):
            out.append((i, _sqlite_datetime))
        elif dialect == "sqlite" and isinstance(kind, sa.Date):
            out.append((i, date.isoformat))
        elif dialect == "sqlite" and isinstance(kind, sa.Boolean):
            out.append((i, int))
    return out


_GET = itemgetter(*COLUMNS)


def _params(dialect: str, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    converters = _converters(dialect)
    out = []
    for row in rows:
        try:
            values = list(_GET(row))
        except KeyError:  # a partial row: missing columns are NULL
            values = [row.get(name) for name in COLUMNS]
        for i, convert in converters:
            if values[i] is not None:
                values[i] = convert(values[i])
        out.append(tuple(values))
    return out


def insert_batch(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts keyed by column name; missing keys are NULL) with one driver-level
    executemany, skipping SQLAlchemy's per-row parameter processing (the writer's main CPU cost).
    Call inside a transaction: if any row is refused, the caller's rollback leaves none written."""
    if rows:
        dialect = conn.dialect.name
        conn.exec_driver_sql(_insert_sql(dialect), _params(dialect, rows))


@lru_cache(maxsize=64)
def _multi_insert_sql(dialect: str, rows: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    one = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    values = ", ".join([one] * rows)
    return f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES {values} ON CONFLICT (id) DO NOTHING"


_MULTI_ROWS = 128  # rows per statement: 34 x 128 parameters stays under every driver's limit


def insert_values(conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows already in `COLUMNS` order and in the driver's types (`record.row_values`).

    One multi-row INSERT per 128 rows rather than an executemany: the driver releases Python's GIL once per
    statement instead of once per row, which on a busy gateway saves a thread switch per record."""
    dialect = conn.dialect.name
    for start in range(0, len(values), _MULTI_ROWS):
        part = values[start : start + _MULTI_ROWS]
        conn.exec_driver_sql(_multi_insert_sql(dialect, len(part)), tuple(chain.from_iterable(part)))


def write_values(eng: sa.Engine, values: Sequence[tuple[Any, ...]]) -> None:
    """`insert_values` in one transaction: all of them or (on any error, which propagates) none."""
    with eng.begin() as conn:
        insert_values(conn, values)


def write_batch(eng: sa.Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` in one transaction: all of them or (on any error, which propagates) none."""
    with eng.begin() as conn:
        insert_batch(conn, rows)
