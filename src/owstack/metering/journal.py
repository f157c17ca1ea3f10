"""The ledger's journal: batches accepted by the ledger process and not yet moved into `ledger_rows`.

    payload = encode(rows)              the writer thread: `record.row_values` tuples as one JSON document
    append(conn, payload, len(rows))    the ledger process: one INSERT per batch, whatever its size
    expand(conn, dims, max_batches=1)   move the oldest batch(es) into ledger_rows (one transaction each)
    catch_up(url)                       move everything (every reader of the ledger calls it first)
    pending(conn)                       (batches, rows) journaled

Why: writing a request's row into `ledger_rows` costs SQLite some 8 µs of CPU (two indexes, the dims, the
driver's binding), and on a gateway whose core is saturated any 8 µs per request costs about a tenth of its
throughput (docs/metering.md, "Third pass"). Appending a batch to the journal costs one INSERT of one value
(well under a microsecond per row). The ledger process moves journaled batches into `ledger_rows` when the
gateway's traffic pauses, as soon as the journal holds more than its limit (then one batch out per batch in:
a sustained saturation pays the full cost, a burst does not), on `LedgerWriter.flush`, when the gateway
stops, and before any read (`catch_up`: `owstack usage`, `owstack savings`, budget seeding). Rows are durable
from the moment their batch is journaled; what waits is only their place in the indexed table.

A batch moves in one transaction: the DELETE that claims it from the journal and the INSERT of its rows
commit together, so a row is either journaled or in the ledger, never neither (nor twice: row ids are
unique and a moved row is ignored if it is moved again). Several processes may expand at once (PostgreSQL
claims with SKIP LOCKED; SQLite's claim takes the write lock first). A batch the database refuses (a row
failing a constraint) is written in halves, each in its own transaction, until the refused rows stand
alone; they are logged and counted as rejected, and the batch leaves the journal.

The payload is JSON (`{"columns": [...], "rows": [[...], ...]}`), not pickle: anyone able to write to the
database must not be able to run code in the processes that read it; the column names let a batch
journaled before a migration be moved after it. `append` stores it zlib-compressed (level 1: the rows of a
batch repeat each other, 354 KB of JSON for 1,024 rows becomes 15 KB, and SQLite's write of the smaller
value, WAL and checkpoint included, costs 1.0 µs per row instead of 1.7).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.metering.columns import DIM, ROW_COLUMNS
from owstack.metering.ledger import Dims, insert_values, write_values
from owstack.storage.schema import metadata

log = logging.getLogger(__name__)

ledger_journal = sa.Table(
    "ledger_journal",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    #: when the ledger process accepted the batch (POSIX seconds)
    sa.Column("appended_at", sa.Double, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    #: `encode(rows)`: UTF-8 JSON
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

_COLUMNS = list(ROW_COLUMNS)


@dataclass
class Moved:
    """What one `expand` did: batches and their rows out of the journal, and how many of those rows the
    database refused (logged; the others are in ledger_rows)."""

    batches: int = 0
    rows: int = 0
    rejected: int = 0


def encode(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """A batch of `record.row_values` tuples as the journal stores it."""
    return orjson.dumps({"columns": ROW_COLUMNS, "rows": rows})


def decode(payload: bytes) -> list[tuple[Any, ...]]:
    """The rows of a journaled batch in today's `ROW_COLUMNS` order (a column the batch lacks is NULL); the
    dims key back as a tuple. Raises ValueError for a payload that is not a batch."""
    if payload[:1] != b"{":
        try:
            payload = zlib.decompress(payload)
        except zlib.error as exc:
            raise ValueError(f"not a ledger batch ({exc})") from None
    doc = orjson.loads(payload)
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list) or not isinstance(doc.get("rows"), list):
        raise ValueError("not a ledger batch")
    columns, rows = doc["columns"], doc["rows"]
    if columns != _COLUMNS:  # journaled by an older (or newer) writer: map by name
        where = {name: i for i, name in enumerate(columns)}
        pick = [where.get(name) for name in ROW_COLUMNS]
        rows = [[None if i is None else r[i] for i in pick] for r in rows]
    out = []
    for r in rows:
        dim = r[DIM]
        if type(dim) is list:
            r[DIM] = tuple(dim)
        out.append(tuple(r))
    return out


def append(conn: sa.Connection, payload: bytes, row_count: int) -> None:
    """Journal one batch (`encode`'s payload, stored compressed) in its own transaction on `conn`."""
    packed = zlib.compress(payload, 1)
    with conn.begin():
        conn.execute(ledger_journal.insert().values(appended_at=time.time(), row_count=row_count, payload=packed))


def pending(conn: sa.Connection) -> tuple[int, int]:
    """(batches, rows) in the journal."""
    c = ledger_journal.c
    got = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(c.row_count), 0))).one()
    return int(got[0]), int(got[1])


@lru_cache(maxsize=2)
def _claim_sql(dialect: str) -> str:
    """DELETE the oldest batch and return it. PostgreSQL skips a batch another expander holds; on SQLite
    the transaction has taken the write lock before this runs (BEGIN IMMEDIATE)."""
    oldest = (
        "SELECT id FROM ledger_journal ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        if dialect == "postgresql"
        else "SELECT min(id) FROM ledger_journal"
    )
    return f"DELETE FROM ledger_journal WHERE id = ({oldest}) RETURNING id, row_count, payload"


def expand(conn: sa.Connection, dims: Dims, *, max_batches: int | None = None, own_transactions: bool = True) -> Moved:
    """Move up to `max_batches` (None: all) of the oldest journaled batches into `ledger_rows`, each in one
    transaction on `conn` (`own_transactions=False`: in the caller's, which then cannot survive a refused
    row). Raises the database's error on an outage (nothing of the failed batch has moved)."""
    from owstack.storage import is_outage
    from owstack.storage.db import SQLITE_BEGIN

    moved = Moved()
    claim = sa.text(_claim_sql(conn.dialect.name))
    if own_transactions and conn.dialect.name == "sqlite":
        conn = conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    while max_batches is None or moved.batches < max_batches:
        if not own_transactions:
            got = conn.execute(claim).first()
            if got is None:
                break
            insert_values(conn, decode(got[2]), dims)
            moved.batches, moved.rows = moved.batches + 1, moved.rows + got[1]
            continue
        values: list[tuple[Any, ...]] = []
        batch_id = count = 0
        try:
            with conn.begin():
                got = conn.execute(claim).first()
                if got is None:
                    break
                batch_id, count = got[0], got[1]
                values = decode(got[2])
                interned = insert_values(conn, values, dims)
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # not a batch: it can never move; drop it
            log.error("ledger: journaled batch %s (%s rows) is unreadable (%s); dropped", batch_id, count, exc)
            _drop(conn, batch_id)
            moved.batches, moved.rows, moved.rejected = moved.batches + 1, moved.rows + count, moved.rejected + count
            continue
        except sa.exc.DBAPIError as exc:
            if is_outage(exc):
                raise
            # a row was refused, and the claim rolled back with it: write the rows apart, then drop the batch
            moved.rejected += _isolate(conn, values, dims)
            _drop(conn, batch_id)
        else:
            dims.remember(interned)
        moved.batches, moved.rows = moved.batches + 1, moved.rows + count
    return moved


def _drop(conn: sa.Connection, batch_id: int) -> None:
    with conn.begin():
        conn.execute(ledger_journal.delete().where(ledger_journal.c.id == batch_id))


def _isolate(conn: sa.Connection, values: list[tuple[Any, ...]], dims: Dims) -> int:
    """Write `values` in halves until each refused row stands alone; log those; how many were refused."""
    from owstack.storage import error_reason, is_outage

    try:
        write_values(conn, values, dims)
        return 0
    except sa.exc.DBAPIError as exc:
        if is_outage(exc):
            raise
        if len(values) == 1:
            log.error("ledger: the database refused the record of request %s: %s", values[0][1], error_reason(exc))
            return 1
    mid = len(values) // 2
    return _isolate(conn, values[:mid], dims) + _isolate(conn, values[mid:], dims)


def catch_up(url: str) -> Moved:
    """Move every journaled batch of the database at `url` into the ledger: what a reader calls before it
    reads. A database without a journal yet moves nothing. When the batches cannot be moved (the database is
    unreachable, or this user may only read it) the reason is logged and the reader goes on with the rows
    already in the ledger."""
    from owstack.storage import engine, error_reason, safe_url

    moved = Moved()
    try:
        eng = engine(url)
        if sa.inspect(eng).has_table(ledger_journal.name):
            with eng.connect() as conn:
                moved = expand(conn, Dims())
    except sa.exc.SQLAlchemyError as exc:
        log.warning(
            "ledger: journaled records at %s not moved into the ledger (%s); reading what is there",
            safe_url(url),
            error_reason(exc),
        )
    return moved
