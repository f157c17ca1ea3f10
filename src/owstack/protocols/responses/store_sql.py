"""The stored responses' table and the SQL on it (SQLAlchemy Core, called on a worker thread by
`store.ResponseStore`). Imported by the store on first use, so that a gateway that serves no Responses
request never loads SQLAlchemy (the idle gateway's memory, docs/benchmarks.md)."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.storage.db import engine, error_reason
from owstack.storage.migrator import migrate
from owstack.storage.schema import metadata
from owstack.types import JSON

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("previous_response_id", sa.String(128), nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("items", sa.LargeBinary, nullable=False),
    # background responses only (revision 0010): the process running one, its lease, a cancel asked elsewhere
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("heartbeat_at", sa.Double, nullable=True),
    sa.Column("lease_until", sa.Double, nullable=True),
    sa.Column("cancel_requested_at", sa.Double, nullable=True),
)

#: the statuses of a background response that has not ended
RUNNING = ("queued", "in_progress")


class StoreDown(Exception):
    """The database refused or could not be reached; the message is the reason, without secrets."""


def _pack(value: Any) -> bytes:
    return zlib.compress(orjson.dumps(value), 1)


def _unpack(blob: bytes) -> Any:
    return orjson.loads(zlib.decompress(blob))


def guarded(fn: Any, *args: Any) -> Any:
    """Run `fn(*args)`; a database error becomes `StoreDown` (the caller needs no SQLAlchemy to catch it)."""
    try:
        return fn(*args)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreDown(error_reason(exc)) from None


def prepare(url: str) -> None:
    migrate(url)


def put(
    url: str,
    tenant: str,
    body: JSON,
    items: list[JSON],
    now: float,
    expires_at: float,
    purge: bool,
    lease: tuple[str, float] | None = None,
) -> None:
    """Insert or replace the row; `lease` (owner, lease_until): a background response's first write, which
    makes this process its owner."""
    row = _row(tenant, body, items, now, expires_at)
    if lease is not None:
        row.update(owner=lease[0], heartbeat_at=now, lease_until=lease[1], cancel_requested_at=None)
    with engine(url).begin() as conn:
        updated = conn.execute(
            sa.update(responses).where(responses.c.id == body["id"], responses.c.tenant == tenant).values(**row)
        ).rowcount
        if not updated:
            conn.execute(sa.insert(responses).values(id=body["id"], **row))
        if purge:
            conn.execute(sa.delete(responses).where(responses.c.expires_at < now))


def _row(tenant: str, body: JSON, items: list[JSON], now: float, expires_at: float) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "created_at": float(body.get("created_at") or now),
        "expires_at": expires_at,
        "status": str(body.get("status")),
        "previous_response_id": body.get("previous_response_id"),
        "body": _pack(body),
        "items": _pack(items),
    }


def settle(url: str, tenant: str, body: JSON, items: list[JSON], owner: str, now: float, expires_at: float) -> bool:
    """A background response's later write (its outcome), made only while the row is still this owner's and
    has not ended: False when it was deleted, or ended elsewhere (cancelled, or failed by a reader that
    found the lease run out). Never inserts: a deleted response stays deleted."""
    row = _row(tenant, body, items, now, expires_at)
    with engine(url).begin() as conn:
        updated = conn.execute(
            sa.update(responses)
            .where(
                responses.c.id == body["id"],
                responses.c.tenant == tenant,
                responses.c.owner == owner,
                responses.c.status.in_(RUNNING),
            )
            .values(**row)
        ).rowcount
    return bool(updated)


def get(
    url: str, tenant: str, response_id: str, now: float, lapsed: JSON | None = None
) -> tuple[JSON, list[JSON], str] | None:
    """The row's response, items and status. `lapsed`: the error of a background response whose lease ran
    out (its gateway stopped before it finished); such a row is read, and stored, as `failed` with it. The
    update is conditional (still running, lease still out), so that replicas reading at once agree, and an
    owner that renewed its lease meanwhile keeps its row."""
    query = sa.select(responses.c.body, responses.c["items"], responses.c.status, responses.c.lease_until).where(
        responses.c.id == response_id, responses.c.tenant == tenant, responses.c.expires_at >= now
    )
    with engine(url).connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    status = str(row.status)
    if lapsed is None or status not in RUNNING or row.lease_until is None or row.lease_until >= now:
        return _unpack(row.body), _unpack(row[1]), status
    failed = {**_unpack(row.body), "status": "failed", "error": lapsed}
    with engine(url).begin() as conn:
        updated = conn.execute(
            sa.update(responses)
            .where(
                responses.c.id == response_id,
                responses.c.tenant == tenant,
                responses.c.status.in_(RUNNING),
                responses.c.lease_until < now,
            )
            .values(status="failed", body=_pack(failed), lease_until=None)  # no lease: its owner's is revoked
        ).rowcount
    if updated:
        return failed, _unpack(row[1]), "failed"
    return get(url, tenant, response_id, now)  # another replica marked it, or its owner renewed or ended it


def request_cancel(url: str, tenant: str, response_id: str, now: float) -> bool:
    """Ask the owner of a running background response to cancel it (it sees this at its next heartbeat)."""
    with engine(url).begin() as conn:
        updated = conn.execute(
            sa.update(responses)
            .where(
                responses.c.id == response_id,
                responses.c.tenant == tenant,
                responses.c.status.in_(RUNNING),
                responses.c.owner.is_not(None),
                responses.c.cancel_requested_at.is_(None),
            )
            .values(cancel_requested_at=now)
        ).rowcount
    return bool(updated)


def heartbeat(
    url: str, owner: str, ids: list[str], now: float, lease_until: float
) -> tuple[list[str], list[str], list[str]]:
    """Renew the lease of `owner`'s running rows `ids`, in one UPDATE. Returns the ids whose cancel was asked
    elsewhere, those whose row is gone (deleted), and those whose lease was revoked (failed by a reader that
    found it run out: the owner had not renewed in time). An id in none of them that was not renewed has
    ended (its task is finishing)."""
    mine = sa.and_(responses.c.owner == owner, responses.c.id.in_(ids), responses.c.status.in_(RUNNING))
    with engine(url).begin() as conn:
        conn.execute(sa.update(responses).where(mine).values(heartbeat_at=now, lease_until=lease_until))
        held = conn.execute(sa.select(responses.c.id, responses.c.cancel_requested_at).where(mine)).all()
        missing = set(ids) - {row.id for row in held}
        there: list[Any] = []
        if missing:
            query = sa.select(responses.c.id, responses.c.lease_until).where(responses.c.id.in_(missing))
            there = list(conn.execute(query))
    cancel = [row.id for row in held if row.cancel_requested_at is not None]
    revoked = [row.id for row in there if row.lease_until is None]
    return cancel, sorted(missing - {row.id for row in there}), sorted(revoked)


def delete(url: str, tenant: str, response_id: str) -> bool:
    with engine(url).begin() as conn:
        deleted = conn.execute(
            sa.delete(responses).where(responses.c.id == response_id, responses.c.tenant == tenant)
        ).rowcount
    return bool(deleted)


def erase_tenant(url: str, tenant: str) -> int:
    migrate(url)
    with engine(url).begin() as conn:
        return int(conn.execute(sa.delete(responses).where(responses.c.tenant == tenant)).rowcount or 0)
