"""Admin actions into the audit log: every key created, revoked or rotated, every sign-in, chain check and
tool approval is one `admin.console.*` (or `admin.key.*`) record, with the actor who did it.

Under `owstack serve` the records go through the gateway's own writer (its AuditStage); `owstack console`
opens a writer of its own (one more stream in the log). An action is refused while the log cannot be
written (`problem()` says why), so that nothing an admin does goes unrecorded; with `audit.enabled: false`
nothing is recorded, as everywhere else in owstack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from owstack.compliance.keys import AuditKeyError
from owstack.compliance.service import AuditLog, audit_admin_event_async
from owstack.compliance.writer import AuditUnavailable
from owstack.errors import ConfigError

if TYPE_CHECKING:
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config

log = logging.getLogger("owstack.ui")


class AuditRefused(Exception):
    """The audit log cannot take the record: the action must not happen (or is reported unrecorded)."""


class AdminAudit:
    def __init__(self, config: Config, stage: AuditStage | None = None) -> None:
        self.enabled = config.file.audit.enabled
        self.stage = stage
        self.log: AuditLog | None = stage.log if stage is not None else (AuditLog(config) if self.enabled else None)
        self._own = stage is None and self.log is not None
        self._error: str | None = None

    def _open(self) -> None:
        assert self.log is not None
        try:
            self.log.writer()
            self._error = None
        except (AuditUnavailable, AuditKeyError, ConfigError, OSError) as exc:
            self._error = str(exc)
            log.error("console: the audit log cannot be written (%s); admin actions are refused", exc)

    async def start(self) -> None:
        if self._own:
            await asyncio.to_thread(self._open)

    async def aclose(self) -> None:
        if self._own and self.log is not None:
            await asyncio.to_thread(self.log.close)

    def problem(self) -> str | None:
        """Why admin actions cannot be recorded now; None when they can (or audit is off)."""
        if self.log is None:
            return None
        if self.stage is not None:
            return self.stage.unavailable()
        if not self.log.started:
            self._open()
            if not self.log.started:
                return self._error or "the audit writer is not running"
        writer = self.log.writer()
        return None if writer.healthy else writer.error or "the audit writer stopped"

    async def record(self, kind: str, details: dict[str, Any], *, actor: str, tenant: str | None = None) -> None:
        """Append one admin record (durable when this returns); AuditRefused when it cannot be written."""
        if self.log is None:
            return
        problem = self.problem()
        if problem is not None:
            raise AuditRefused(f"the audit log cannot be written: {problem}")
        try:
            await audit_admin_event_async(self.log, kind, details, actor=actor, tenant=tenant)
        except (AuditUnavailable, AuditKeyError, OSError) as exc:
            raise AuditRefused(f"the audit log cannot be written: {exc}") from None
