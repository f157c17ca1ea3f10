"""The pipeline's audit stage: fail closed before, one durable record after.

`before` refuses the request (`ServiceUnavailable`, 503) when the audit log cannot be written, so that no
request is served unrecorded. `after` builds the request's record and returns only once it is fsynced:
the gateway completes the response after that. If the append fails there, `after` raises
`ServiceUnavailable` too, whatever the cause (an unexpected error while building the record included);
the gateway turns that into an error where the response is not yet sent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from owstack.compliance.keys import AuditKeyError
from owstack.compliance.keystore import ContentUnavailable
from owstack.compliance.records import request_record
from owstack.compliance.service import AuditLog, audit_admin_event_async
from owstack.compliance.writer import AuditUnavailable, Entry
from owstack.config.load import Config
from owstack.errors import ConfigError, ServiceUnavailable
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.storage import durable

RETRY_OPEN_S = 1.0
logger = logging.getLogger("owstack.audit")


class AuditStage(BaseStage):
    name = "audit"

    def __init__(self, config: Config, *, log: AuditLog | None = None) -> None:
        self.enabled = config.file.audit.enabled
        self.log = log if log is not None else (AuditLog(config) if self.enabled else None)
        self.error: str | None = None
        self._last_try = 0.0

    def open(self) -> None:
        """Open the writer now rather than on the first request (errors are kept, not raised)."""
        if self.log is None or self.log.started:
            return
        self._last_try = time.monotonic()
        try:
            self.log.writer()
            self.error = None
        except (AuditUnavailable, AuditKeyError, ConfigError, OSError) as exc:
            self.error = str(exc)
            logger.error("audit log cannot be written: %s; requests are refused until it can", exc)

    async def start(self) -> None:
        """Gateway start-up hook: open the writer and record `admin.config.loaded` (never raises: a log
        that cannot be written makes `before` refuse requests, and `unavailable()` says why)."""
        if self.log is None:
            return
        await asyncio.to_thread(self.open)
        if self.log.started:
            details = {"source": self.log.config.source, "backends": sorted(self.log.config.file.backends)}
            try:
                await audit_admin_event_async(self.log, "config.loaded", details, actor="owstack-gateway")
            except (AuditUnavailable, AuditKeyError) as exc:
                self.error = str(exc)

    async def aclose(self) -> None:
        """Gateway shutdown hook: seal the stream."""
        await asyncio.to_thread(self.close)

    @property
    def healthy(self) -> bool:
        if self.log is None:
            return True
        return self.log.started and self.log.writer().healthy

    @property
    def journals(self) -> bool:
        """The request's record can carry its ledger record now (the writer is running and takes records):
        the meter stage then writes no log of its own (`metering.audit_journal`)."""
        log = self.log
        writer = log.current if log is not None else None
        return writer is not None and writer.carrying

    def resumed(self) -> tuple[str, int] | None:
        """This process's stream and the last sequence number it held before this process took it over."""
        log = self.log
        if log is None or not log.started:
            return None
        writer = log.writer()
        return writer.stream, writer.resumed_at

    def unavailable(self) -> str | None:
        """Why the log cannot be written, or None."""
        if self.log is None:
            return None
        writer = self.log.current
        if writer is not None and writer.healthy:  # the usual case, per request: no more calls
            return None
        if not self.log.started:
            if time.monotonic() - self._last_try >= RETRY_OPEN_S or not self._last_try:
                self.open()
            if not self.log.started:
                return self.error or "the audit writer is not running"
        writer = self.log.writer()
        return None if writer.healthy else writer.error or "the audit writer stopped"

    async def before(self, ctx: RequestContext) -> None:
        problem = self.unavailable()
        if problem is not None:
            raise ServiceUnavailable(f"audit log cannot be written: {problem}", code="audit_unavailable")

    async def after(self, ctx: RequestContext) -> None:
        """One chained record, fsynced; then the other durable writes of the request (the ledger's), which
        ran meanwhile (`storage.durable`): the response completes once both are on disk."""
        try:
            await self._append(ctx)
        finally:
            await durable.settle(ctx)

    async def _append(self, ctx: RequestContext) -> None:
        log = self.log
        if log is None:
            return
        writer = log.current
        if writer is None:
            return
        try:
            if log.captures(ctx.tenant):  # the content is sealed here, under the tenant's key
                entry: Entry = request_record(
                    ctx, keys=log.keys, facts=log.facts, keystore=log.keystore, serialised=True
                )
            else:  # built on the commit thread with the rest of its batch (the context is final by now)
                entry = functools.partial(request_record, ctx, keys=log.keys, facts=log.facts, serialised=True)
            durable.carry(ctx, writer)  # the ledger's record, if any, is committed with this one
            await writer.append(entry)
        except (AuditUnavailable, AuditKeyError, ContentUnavailable, OSError) as exc:
            raise ServiceUnavailable(f"audit log cannot be written: {exc}", code="audit_unavailable") from None
        except Exception:  # a record that cannot be built (a bug) fails closed too: never served unrecorded
            logger.exception("the audit record of request %s could not be built", ctx.request_id)
            raise ServiceUnavailable(
                "audit log cannot be written: the request's record could not be built", code="audit_unavailable"
            ) from None

    def close(self) -> None:
        """Seal the stream (graceful shutdown)."""
        if self.log is not None:
            self.log.close()
