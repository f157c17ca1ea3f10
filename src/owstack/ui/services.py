"""What the console's pages use: its configuration, its database and the one thread that reads it, its
templates and assets, the session keys, the access rules, the admin audit, and the background audit check.

`Console` (console.py) is these services with an ASGI face and the page table; a page (page.py) holds them
as `page.console`. They stand here, apart from that face, so that the page and the pages name what they use
without importing the module that imports them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from owstack import storage
from owstack.ui.access import Access
from owstack.ui.audit import AdminAudit, AuditRefused
from owstack.ui.data import verify as checks
from owstack.ui.data.dims import DimsCache
from owstack.ui.render import Assets, Templates
from owstack.ui.session import Sessions

if TYPE_CHECKING:
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.tenancy.keys import KeyStore

log = logging.getLogger("owstack.ui")
T = TypeVar("T")


class ConsoleServices:
    def __init__(
        self,
        config: Config,
        *,
        host: str,
        keystore: KeyStore | None = None,
        audit: AuditStage | None = None,
    ) -> None:
        self.config = config
        self.url = config.file.storage.url
        self.engine = storage.engine(self.url)
        self.assets = Assets.load()
        self.templates = Templates()
        self.dims = DimsCache(config)
        self.audit = AdminAudit(config, audit)
        self._keystore = keystore
        self.access = Access(config, host, self.keystore)
        self._sessions: Sessions | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="owstack-console")
        self._verify: asyncio.Future[None] | None = None

    # service ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.audit.start()

    async def prepare(self) -> str | None:
        """On the first request (a gateway nobody opens the console of writes no session key): the session
        key, read or created, and the schema; why the console cannot answer, or None."""
        if self._sessions is not None:
            return None
        try:
            await self.run(storage.migrate, self.url)
            self._sessions = await self.run(Sessions.from_config, self.config)
        except Exception as exc:  # the gateway serves on; the console says why it cannot (and tries again)
            log.error("console: cannot start: %s", exc)
            return f"the console cannot start: {exc}"
        return None

    async def aclose(self) -> None:
        if self._verify is not None:
            self._verify.cancel()
            await asyncio.gather(self._verify, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
        await self.audit.aclose()

    def unavailable(self) -> str | None:
        """Never: the console's trouble is shown on its pages, and must not take the gateway out of service."""
        return None

    @property
    def sessions(self) -> Sessions:
        assert self._sessions is not None
        return self._sessions

    def keystore(self) -> KeyStore:
        if self._keystore is None:
            from owstack.tenancy.keys import KeyStore

            self._keystore = KeyStore(self.url)
        return self._keystore

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def verifying(self) -> bool:
        return self._verify is not None and not self._verify.done()

    def start_verify(self, row_id: int, directory: Path) -> None:
        """Check the audit chain in the background; its outcome lands in `console_verifications` and the log."""
        self._verify = asyncio.ensure_future(self._run_verify(row_id, directory))

    async def _run_verify(self, row_id: int, directory: Path) -> None:
        outcome = await checks.run(directory)
        await self.run(_record_check, self.engine, row_id, outcome)
        details = {"directory": str(directory), **{k: outcome[k] for k in ("ok", "records", "streams")}}
        try:
            await self.audit.record("console.audit_verified", details, actor="owstack-console")
        except AuditRefused as exc:
            log.warning("console: the outcome of the audit check was not recorded in the log: %s", exc)


def _record_check(engine: sa.Engine, row_id: int, outcome: dict[str, Any]) -> None:
    with engine.connect() as conn:
        checks.finished(conn, row_id, outcome)
