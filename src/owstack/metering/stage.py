"""The meter stage: one ledger record and the Prometheus counters for every request.

    metrics = Metrics.from_config(config)            # shared with GET /metrics and the router
    meter = MeterStage(config, metrics=metrics)
    await meter.start()                               # migrate the schema, start the ledger writer
    ... pipeline runs meter.after(ctx) for every request (served, failed or refused) ...
    await meter.aclose()                              # graceful shutdown: flush the ledger

`after(ctx)` costs a few microseconds (bench/metering_overhead.py): it updates the metrics, copies the
context's fields and appends them to the writer's queue. Token counting (when the upstream reported no
usage), pricing and SQL happen on the writer thread. With `metering.enabled: false` there is no ledger
and no writer; the metrics that need neither (requests, latency, TTFT, reported tokens, fallbacks,
upstream errors) are still kept.

With the audit log on, a request's ledger record rides in its audit record (`audit_journal`): one log and
one fsync for both, the write-ahead log only for what the audit log does not take (`journal_in`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from owstack.errors import ServiceUnavailable
from owstack.metering.audit_journal import NOTE, member
from owstack.metering.record import Pending, snapshot, wal_payload
from owstack.metering.wal import WalUnavailable
from owstack.pipeline.stage import BaseStage
from owstack.storage.durable import defer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.metering.costs import Pricing
    from owstack.metering.prometheus import Metrics
    from owstack.metering.writer import LedgerWriter
    from owstack.pipeline.context import RequestContext

log = logging.getLogger(__name__)


class MeterStage(BaseStage):
    name = "meter"

    def __init__(
        self,
        config: Config,
        *,
        metrics: Metrics | None = None,
        pricing: Pricing | None = None,
        writer: LedgerWriter | None = None,
    ) -> None:
        """Resolve every backend's cost parameters now (catalog reads happen here, not per request).

        Raises `ConfigError` for a backend whose `hardware:` or proprietary model has no price."""
        from owstack.metering.costs import Pricing
        from owstack.metering.prometheus import Metrics

        self.config = config
        self.metrics = metrics if metrics is not None else Metrics.from_config(config)
        self.pricing = pricing if pricing is not None else Pricing.from_config(config)
        from owstack.metering.tokens import Tokenizers

        #: the token counters (a GGUF vocabulary per model, loaded on first use); the gateway uses the same
        #: instance for the usage chunks it counts, so each vocabulary is loaded once per process
        self.tokenizers = Tokenizers(config)
        if writer is None and config.file.metering.enabled:
            from owstack.metering.writer import LedgerWriter

            writer = LedgerWriter.from_config(config, self.pricing, self.metrics, tokenizers=self.tokenizers)
        elif writer is not None and writer.tokenizers is not None:
            self.tokenizers = writer.tokenizers
        self.writer = writer
        #: the audit stage runs after this one and waits for both fsyncs together (storage.durable)
        self.defer_durable = config.file.audit.enabled
        #: the audit stage whose records carry the ledger's (`journal_in`)
        self.journal: AuditStage | None = None

    def journal_in(self, audit: AuditStage, key_ids: Callable[[], Iterable[str]]) -> None:
        """Have `audit`'s records journal the ledger's (`audit_journal`), for the requests this stage records
        while its writer takes records and the ledger writer's queue has room; the ledger writer replays, at
        start, what a dead process's audit records hold and the database does not. Only with a durable
        ledger (`metering.durable`): without one, nothing is replayed either way."""
        writer = self.writer
        if writer is None or writer.wal is None or audit.log is None:
            return
        from owstack.metering.audit_journal import AuditReplay

        log = audit.log
        self.journal = audit
        writer.audit_replay = AuditReplay(
            log.paths.directory,
            lambda: log.keys,
            key_ids,
            audit.resumed,
            writer.max_buffer + 4 * writer.batch_size,
        )

    async def start(self) -> None:
        """Migrate the ledger's schema and start the writer thread (off the event loop)."""
        if self.writer is not None:
            await asyncio.to_thread(self.writer.start)

    async def aclose(self) -> None:
        """Flush every queued record and stop the writer."""
        if self.writer is not None:
            await self.writer.aclose()

    def unavailable(self) -> str | None:
        """Why records cannot be made durable now (the write-ahead log's last write failed; it is tried
        again with every batch), or None. A database outage is not a reason: records wait through it."""
        wal = self.writer.wal if self.writer is not None else None
        if wal is not None and wal.error is not None:
            return f"the ledger's write-ahead log cannot be written: {wal.error}"
        return None

    def record(self, record: Pending) -> asyncio.Future[None] | None:
        """Hand one record to the ledger: appended to the write-ahead log (the future is done once it is on
        disk; await it before acknowledging what it records) and queued for the database. None without a log.
        For every caller that records something the gateway answered (the MCP gateway's tool calls too)."""
        writer = self.writer
        if writer is None:
            return None
        durable = None
        wal = writer.wal
        if wal is not None:
            record.seq, durable = wal.append(wal_payload(record))
        writer.submit(record)
        return durable

    async def after(self, ctx: RequestContext) -> None:
        durable = None
        try:
            self.metrics.observe(ctx)
            writer = self.writer
            if writer is not None:
                record = snapshot(ctx)
                journal = self.journal
                if journal is not None and journal.journals and writer.accepts:
                    ctx.notes[NOTE] = member(record, ctx)  # the audit record carries it: no log of its own
                    writer.submit(record)
                    return
                durable = self.record(record)
        except Exception:  # a bug here must not turn a served request into an error
            log.exception("meter: request %s could not be metered", ctx.request_id)
        if durable is None:
            return
        if self.defer_durable:  # the audit stage, outermost, commits it with its own and waits for both
            defer(ctx, durable, unrecorded, rider=self.writer.wal if self.writer is not None else None)
            return
        try:
            await durable
        except WalUnavailable as exc:  # fail closed: no response is acknowledged unrecorded
            raise unrecorded(exc) from None


def unrecorded(exc: BaseException) -> ServiceUnavailable:
    """The error a request gets when its ledger record could not be made durable (fail closed: 503)."""
    return ServiceUnavailable(f"the ledger cannot record the request: {exc}", code="ledger_unavailable")
