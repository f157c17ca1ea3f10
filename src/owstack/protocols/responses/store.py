"""Stored responses: one row per response in the configured database, scoped to its tenant.

    await store.put(tenant, response, items)      the response object and its conversation (for follow-ups)
    await store.get(tenant, id)                   -> Stored | None (another tenant's id is None: not found)
    await store.delete(tenant, id)                -> bool
    erase_tenant(url, tenant)                     every stored response of a tenant (owstack tenants erase)

SQLAlchemy Core on a worker thread (the database driver blocks; `store_sql`, imported with the first call,
so that a gateway serving no Responses request never loads the SQL layer); the database is migrated by that
first call, and an unreachable one is tried again by the next. Expired rows are deleted at most once a
minute, on a write. Payloads are zlib-compressed JSON.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from owstack.errors import ServiceUnavailable
from owstack.types import JSON

PURGE_EVERY_S = 60.0


def _sql() -> ModuleType:
    """The SQL side (`store_sql`, with SQLAlchemy), imported by the first call that needs it."""
    from owstack.protocols.responses import store_sql

    return store_sql


@dataclass(frozen=True, slots=True)
class Stored:
    body: JSON
    items: list[JSON]
    status: str


class ResponseStore:
    """A gateway service whose database is opened (and migrated) by its first use: requests that need the
    store get a 503 while the database cannot be reached; others are served."""

    name = "responses.store"

    def __init__(self, url: str, retention_s: float, *, clock: Any = time.time) -> None:
        self.url = url
        self.retention_s = retention_s
        self._clock = clock
        self._purged = 0.0
        self._ready = False

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def unavailable(self) -> str | None:
        return None  # a request that needs the store is refused on its own (503); others are served

    async def _run(self, fn: Any, *args: Any) -> Any:
        store_sql = _sql()
        try:
            return await asyncio.to_thread(store_sql.guarded, self._ensure, fn, *args)
        except store_sql.StoreDown as exc:
            raise ServiceUnavailable(f"the response store is unavailable: {exc}", code="store_unavailable") from None

    def _ensure(self, fn: Any, *args: Any) -> Any:
        """(worker thread) Migrate once, then run `fn`."""
        if not self._ready:
            _sql().prepare(self.url)
            self._ready = True
        return fn(*args)

    async def put(self, tenant: str, body: JSON, items: list[JSON]) -> None:
        now = self._clock()
        purge = now - self._purged > PURGE_EVERY_S
        if purge:
            self._purged = now
        await self._run(_sql().put, self.url, tenant, body, items, now, now + self.retention_s, purge)

    async def get(self, tenant: str, response_id: str) -> Stored | None:
        found = await self._run(_sql().get, self.url, tenant, response_id, self._clock())
        if found is None:
            return None
        body, items, status = found
        return Stored(body=body, items=items, status=status)

    async def delete(self, tenant: str, response_id: str) -> bool:
        deleted: bool = await self._run(_sql().delete, self.url, tenant, response_id)
        return deleted


def erase_tenant(url: str, tenant: str) -> int:
    """Delete every stored response of `tenant`; the number deleted."""
    erased: int = _sql().erase_tenant(url, tenant)
    return erased
