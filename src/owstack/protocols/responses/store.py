"""Stored responses: one row per response in the configured database, scoped to its tenant.

    await store.put(tenant, response, items)      the response object and its conversation (for follow-ups)
    await store.get(tenant, id)                   -> Stored | None (another tenant's id is None: not found)
    await store.delete(tenant, id)                -> bool
    await store.request_cancel(tenant, id)        -> bool: ask another process running it to cancel it
    await store.heartbeat(ids)                    renew this process's leases -> (to cancel, deleted, revoked)
    erase_tenant(url, tenant)                     every stored response of a tenant (owstack tenants erase)

Background responses (`background: true`) have an owner: the first write of one (`queued`) records this
store's `instance` and a lease of `lease_s`, which the owner's heartbeat renews (`api/responses.py`,
`Background`); its later writes apply only while the row is still the owner's and running (a response
deleted meanwhile stays deleted; one that ended elsewhere keeps that end). A read of a running row whose
lease has run out, and whose task this process does not run (`running`), stores and answers it `failed`
(`LAPSED`): its gateway stopped before it finished.

SQLAlchemy Core on a worker thread (the database driver blocks; `store_sql`, imported with the first call,
so that a gateway serving no Responses request never loads the SQL layer); the database is migrated by that
first call, and an unreachable one is tried again by the next. Expired rows are deleted at most once a
minute, on a write. Payloads are zlib-compressed JSON.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Container
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from owstack.errors import ServiceUnavailable
from owstack.types import JSON

PURGE_EVERY_S = 60.0
#: the error of a background response whose gateway stopped before it finished (its lease ran out)
LAPSED: JSON = {
    "code": "server_error",
    "message": "the gateway process running this background response stopped before it finished "
    "(its lease ran out: the process was killed, crashed, or lost its database); send the request again",
}


def instance_id() -> str:
    """This process's name as the owner of background responses: host, pid and a random part (a restarted
    process, or a gateway reloaded in the same one, is another owner)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(6)}"


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

    def __init__(self, url: str, retention_s: float, *, lease_s: float = 30.0, clock: Any = time.time) -> None:
        self.url = url
        self.retention_s = retention_s
        #: background responses: the owner recorded on their rows, how long a lease lasts, and the ids whose
        #: task this process runs (the `Background` service's tasks: never read as lapsed here)
        self.instance = instance_id()
        self.lease_s = lease_s
        self.running: Container[str] = ()
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

    async def put(self, tenant: str, body: JSON, items: list[JSON]) -> bool:
        """Store the response. A background response's first write (`queued`) makes this process its owner;
        its later ones are False when the row is no longer its to write (deleted, or ended elsewhere)."""
        now = self._clock()
        expires_at = now + self.retention_s
        if body.get("background") is True and body.get("status") != "queued":
            settled: bool = await self._run(
                _sql().settle, self.url, tenant, body, items, self.instance, now, expires_at
            )
            return settled
        purge = now - self._purged > PURGE_EVERY_S
        if purge:
            self._purged = now
        lease = (self.instance, now + self.lease_s) if body.get("background") is True else None
        await self._run(_sql().put, self.url, tenant, body, items, now, expires_at, purge, lease)
        return True

    async def get(self, tenant: str, response_id: str) -> Stored | None:
        lapsed = None if response_id in self.running else LAPSED
        found = await self._run(_sql().get, self.url, tenant, response_id, self._clock(), lapsed)
        if found is None:
            return None
        body, items, status = found
        return Stored(body=body, items=items, status=status)

    async def delete(self, tenant: str, response_id: str) -> bool:
        deleted: bool = await self._run(_sql().delete, self.url, tenant, response_id)
        return deleted

    async def request_cancel(self, tenant: str, response_id: str) -> bool:
        """Record a cancel for the process running this background response (False: it is not running)."""
        asked: bool = await self._run(_sql().request_cancel, self.url, tenant, response_id, self._clock())
        return asked

    async def heartbeat(self, ids: list[str]) -> tuple[list[str], list[str], list[str]]:
        """Renew the leases of this process's running background responses `ids` (one UPDATE); the ids whose
        cancel was asked elsewhere, those deleted, and those failed by a reader (the lease had run out)."""
        now = self._clock()
        beat: tuple[list[str], list[str], list[str]] = await self._run(
            _sql().heartbeat, self.url, self.instance, ids, now, now + self.lease_s
        )
        return beat


def erase_tenant(url: str, tenant: str) -> int:
    """Delete every stored response of `tenant`; the number deleted."""
    erased: int = _sql().erase_tenant(url, tenant)
    return erased
