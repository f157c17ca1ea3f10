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
)


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


def put(url: str, tenant: str, body: JSON, items: list[JSON], now: float, expires_at: float, purge: bool) -> None:
    row = {
        "tenant": tenant,
        "created_at": float(body.get("created_at") or now),
        "expires_at": expires_at,
        "status": str(body.get("status")),
        "previous_response_id": body.get("previous_response_id"),
        "body": _pack(body),
        "items": _pack(items),
    }
    with engine(url).begin() as conn:
        updated = conn.execute(
            sa.update(responses).where(responses.c.id == body["id"], responses.c.tenant == tenant).values(**row)
        ).rowcount
        if not updated:
            conn.execute(sa.insert(responses).values(id=body["id"], **row))
        if purge:
            conn.execute(sa.delete(responses).where(responses.c.expires_at < now))


def get(url: str, tenant: str, response_id: str, now: float) -> tuple[JSON, list[JSON], str] | None:
    query = sa.select(responses.c.body, responses.c["items"], responses.c.status).where(
        responses.c.id == response_id, responses.c.tenant == tenant, responses.c.expires_at >= now
    )
    with engine(url).connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return _unpack(row.body), _unpack(row[1]), str(row.status)


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
