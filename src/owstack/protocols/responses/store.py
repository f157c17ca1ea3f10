"""Stored responses: one row per response in the configured database, scoped to its tenant.

    await store.put(tenant, response, items)      the response object and its conversation (for follow-ups)
    await store.get(tenant, id)                   -> Stored | None (another tenant's id is None: not found)
    await store.delete(tenant, id)                -> bool
    erase_tenant(url, tenant)                     every stored response of a tenant (owstack tenants erase)

SQLAlchemy Core on a worker thread (the database driver blocks); expired rows are deleted at most once a
minute, on a write. Payloads are zlib-compressed JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.errors import ServiceUnavailable
from owstack.storage.db import engine, error_reason
from owstack.storage.migrate import migrate
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
PURGE_EVERY_S = 60.0
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stored:
    body: JSON
    items: list[JSON]
    status: str


def _pack(value: Any) -> bytes:
    return zlib.compress(orjson.dumps(value), 1)


def _unpack(blob: bytes) -> Any:
    return orjson.loads(zlib.decompress(blob))


class ResponseStore:
    """A gateway service: `start` migrates (an unreachable database is retried on first use, not fatal)."""

    name = "responses.store"

    def __init__(self, url: str, retention_s: float, *, clock: Any = time.time) -> None:
        self.url = url
        self.retention_s = retention_s
        self._clock = clock
        self._purged = 0.0
        self._ready = False

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._start)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("response store unavailable at start (%s); retried on first use", error_reason(exc))

    async def aclose(self) -> None:
        return None

    def unavailable(self) -> str | None:
        return None  # a request that needs the store is refused on its own (503); others are served

    def _start(self) -> None:
        migrate(self.url)
        self._ready = True

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except sa.exc.SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"the response store is unavailable: {error_reason(exc)}", code="store_unavailable"
            ) from None

    async def put(self, tenant: str, body: JSON, items: list[JSON]) -> None:
        await self._run(self._put, tenant, body, items)

    def _put(self, tenant: str, body: JSON, items: list[JSON]) -> None:
        if not self._ready:
            self._start()
        now = self._clock()
        row = {
            "tenant": tenant,
            "created_at": float(body.get("created_at") or now),
            "expires_at": now + self.retention_s,
            "status": str(body.get("status")),
            "previous_response_id": body.get("previous_response_id"),
            "body": _pack(body),
            "items": _pack(items),
        }
        with engine(self.url).begin() as conn:
            updated = conn.execute(
                sa.update(responses).where(responses.c.id == body["id"], responses.c.tenant == tenant).values(**row)
            ).rowcount
            if not updated:
                conn.execute(sa.insert(responses).values(id=body["id"], **row))
            if now - self._purged > PURGE_EVERY_S:
                self._purged = now
                conn.execute(sa.delete(responses).where(responses.c.expires_at < now))

    async def get(self, tenant: str, response_id: str) -> Stored | None:
        result: Stored | None = await self._run(self._get, tenant, response_id)
        return result

    def _get(self, tenant: str, response_id: str) -> Stored | None:
        if not self._ready:
            self._start()
        query = sa.select(responses.c.body, responses.c["items"], responses.c.status).where(
            responses.c.id == response_id, responses.c.tenant == tenant, responses.c.expires_at >= self._clock()
        )
        with engine(self.url).connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Stored(body=_unpack(row.body), items=_unpack(row[1]), status=row.status)

    async def delete(self, tenant: str, response_id: str) -> bool:
        result: bool = await self._run(self._delete, tenant, response_id)
        return result

    def _delete(self, tenant: str, response_id: str) -> bool:
        if not self._ready:
            self._start()
        with engine(self.url).begin() as conn:
            deleted = conn.execute(
                sa.delete(responses).where(responses.c.id == response_id, responses.c.tenant == tenant)
            ).rowcount
        return bool(deleted)


def erase_tenant(url: str, tenant: str) -> int:
    """Delete every stored response of `tenant`; the number deleted."""
    migrate(url)
    with engine(url).begin() as conn:
        return int(conn.execute(sa.delete(responses).where(responses.c.tenant == tenant)).rowcount or 0)
