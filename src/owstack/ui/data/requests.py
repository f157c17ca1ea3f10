"""The request log: recent ledger rows, newest first, a page at a time, and one request's row.

A page is found by a cursor (the last row's time and id), never by an offset, so the thousandth page costs
what the first does. A filter (tenant, layer, backend, model, status, error code) is applied to a window of
at most `SCAN` rows after the cursor, not to the whole ledger: a filter that matches nothing in a million
rows still answers at once, with the rows it found and a cursor to look further back. Metadata only: the
ledger holds no prompts or completions.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.metering.ledger import ledger, ledger_rows
from owstack.metering.report import utc

PAGE = 50
#: rows looked at per page when filtering, at most
SCAN = 20_000
#: the largest row id a database column holds (SQLite and PostgreSQL BIGINT): a larger one names no row
MAX_ID = 2**63 - 1
#: error codes that mean owstack refused the request (not a backend failure)
REFUSALS: tuple[str, ...] = (
    "residency_violation",
    "guard_blocked",
    "rate_limit_exceeded",
    "budget_exceeded",
    "layer_not_allowed",
    "permission_denied",
    "invalid_api_key",
    "audit_unavailable",
    "limits_unavailable",
)


@dataclass(frozen=True)
class Filters:
    dims: list[int] | None = None
    #: "errors", "ok", or one status code
    status: str | None = None
    codes: tuple[str, ...] = ()
    #: only requests a backend failed (a 5xx, or an attempt that fell back)
    failures: bool = False

    @property
    def any(self) -> bool:
        return self.dims is not None or bool(self.status) or bool(self.codes) or self.failures


@dataclass
class LogPage:
    rows: list[dict[str, Any]]
    #: the cursor of the next (older) page; None at the end of the ledger
    older: str | None
    #: rows looked at to fill this page (a filtered page may stop at SCAN)
    scanned: int
    window_full: bool


def encode_cursor(when: datetime, row_id: int) -> str:
    raw = orjson.dumps([utc(when).isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str | None) -> tuple[datetime, int] | None:
    if not text:
        return None
    try:
        when, row_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not 0 <= int(row_id) <= MAX_ID:
            raise ValueError("row id out of range")
        return datetime.fromisoformat(str(when)).astimezone(UTC), int(row_id)
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise ValueError("cursor: not a cursor of this page (start again from the newest)") from None


def _after(cursor: tuple[datetime, int] | None) -> list[Any]:
    if cursor is None:
        return []
    when, row_id = cursor
    c = ledger_rows.c
    return [c.received_at <= when, sa.not_(sa.and_(c.received_at == when, c.id >= row_id))]


def _status(column: Any, status: str | None) -> list[Any]:
    if not status:
        return []
    if status == "errors":
        return [column >= 400]
    if status == "ok":
        return [column < 400]
    if status.isascii() and status.isdigit() and 100 <= int(status) <= 599:
        return [column == int(status)]
    raise ValueError(f"status: {status!r} is not errors, ok or a status code (100-599)")


def page(conn: sa.Connection, filters: Filters, cursor: str | None, limit: int = PAGE) -> LogPage:
    """The newest `limit` rows after `cursor` that pass `filters` (looking at `SCAN` rows at most)."""
    after = _after(decode_cursor(cursor))
    c = ledger_rows.c
    order = (c.received_at.desc(), c.id.desc())
    if filters.dims is not None and not filters.dims:
        return LogPage([], None, 0, False)
    if not filters.any:
        found = conn.execute(sa.select(c.id, c.received_at).where(*after).order_by(*order).limit(limit + 1)).all()
        scanned, window_full = len(found), False
    else:
        window = sa.select(c.id, c.received_at, c.dim, c.status, c.error_code, c.attempts).where(*after)
        inner = window.order_by(*order).limit(SCAN).subquery()
        cond = _status(inner.c.status, filters.status)
        if filters.dims is not None:
            cond.append(inner.c.dim.in_(filters.dims))
        if filters.codes:
            cond.append(inner.c.error_code.in_(filters.codes))
        if filters.failures:
            cond.append(sa.or_(inner.c.status >= 500, inner.c.attempts > 1))
        query = sa.select(inner.c.id, inner.c.received_at).where(*cond)
        found = conn.execute(query.order_by(inner.c.received_at.desc(), inner.c.id.desc()).limit(limit + 1)).all()
        scanned, window_full = len(found), False
        if len(found) <= limit:  # the window ran out before the page filled: where did it end?
            last = conn.execute(sa.select(c.id, c.received_at).where(*after).order_by(*order).offset(SCAN - 1).limit(1))
            end = last.first()
            if end is not None:
                window_full, scanned = True, SCAN
                return LogPage(_details(conn, [r[0] for r in found]), encode_cursor(end[1], end[0]), scanned, True)
    more = len(found) > limit
    found = found[:limit]
    older = encode_cursor(found[-1][1], found[-1][0]) if more and found else None
    return LogPage(_details(conn, [r[0] for r in found]), older, scanned, window_full)


def _details(conn: sa.Connection, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    got = conn.execute(sa.select(ledger).where(ledger.c.id.in_(ids))).mappings().all()
    rows = [dict(r) for r in got]
    for r in rows:
        r["received_at"] = utc(r["received_at"])
    rows.sort(key=lambda r: (r["received_at"], r["id"]), reverse=True)
    return rows


def one(conn: sa.Connection, row_id: int) -> dict[str, Any] | None:
    if not 0 <= row_id <= MAX_ID:  # the driver cannot even send it (OverflowError)
        return None
    got = conn.execute(sa.select(ledger).where(ledger.c.id == row_id)).mappings().first()
    if got is None:
        return None
    row = dict(got)
    row["received_at"] = utc(row["received_at"])
    log = row.get("attempt_log")
    if isinstance(log, str):
        try:
            row["attempt_log"] = orjson.loads(log)
        except orjson.JSONDecodeError:
            row["attempt_log"] = None
    return row
