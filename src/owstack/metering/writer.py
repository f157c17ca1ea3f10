"""The ledger writer: a background thread that counts and prices records (`rows.RowMaker`) and hands them in
batches to the ledger process (`sink.ProcessSink`: it journals them and files them into the ledger when the
gateway's traffic allows; `metering.writer: thread` writes them into the ledger on this thread).

    writer = LedgerWriter.from_config(config, pricing, metrics)
    writer.start()                 # migrates the schema, opens the write-ahead log, starts the thread
    writer.submit(record)          # O(1): a deque append, from the request's path (after the log append)
    writer.flush(timeout)          # wait until everything submitted so far is in the ledger (tests, admin)
    await writer.aclose()          # graceful shutdown: flush everything, then stop

Batches: up to `batch_size` records, written as soon as that many wait (full batches only) or every
`flush_interval_ms` (everything waiting); all or nothing. A batch the database refuses is split in halves
until the refused record is alone (logged by request id, counted as rejected). While the database (or the
ledger process) is unreachable the batch is kept and retried with backoff (up to `retry_max_s`); new records
wait in the queue, at most `max_buffer`; beyond it a record in the write-ahead log is let go and read back
later (`recovery.Recovery`), any other is dropped and counted. Once a batch is in the database its records
are released from the log. Row ids are unique, so a batch written twice is recorded once.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from owstack.metering.backlog import Backlog
from owstack.metering.chunks import Chunks
from owstack.metering.costs import Pricing, Utilization
from owstack.metering.record import Pending
from owstack.metering.recovery import Recovery, wal_for
from owstack.metering.rows import RowMaker
from owstack.metering.sink import InlineSink, ProcessSink, SinkError, make_sink
from owstack.metering.tokens import Tokenizers
from owstack.metering.wal import Wal, WalUnavailable
from owstack.storage.health import StoreHealth
from owstack.storage.threads import background_priority

if TYPE_CHECKING:
    import sqlalchemy as sa

    from owstack.config.load import Config
    from owstack.metering.audit_journal import AuditReplay
    from owstack.metering.prometheus import Metrics

log = logging.getLogger(__name__)


class LedgerWriter:
    def __init__(
        self,
        url: str,
        *,
        pricing: Pricing,
        tokenizers: Tokenizers | None = None,
        metrics: Metrics | None = None,
        batch_size: int = 256,
        flush_interval_s: float = 0.5,
        max_buffer: int = 100_000,
        retry_max_s: float = 30.0,
        shutdown_timeout_s: float = 10.0,
        utilization_window_s: float = 3600.0,
        utilization_refresh_s: float = 60.0,
        process: bool = True,
        journal_max_rows: int = 200_000,
        journal_spare_cpu: float = 0.25,
        wal: Wal | None = None,
    ) -> None:
        """`wal`: the write-ahead log the meter stage appends each record to before its response completes
        (`metering.durable`); the writer releases records from it once the database has them, replays what
        a previous process left in it, and reads back the records it had to let go while its queue was full."""
        self.url = url
        self.pricing = pricing
        self.tokenizers = tokenizers
        self.metrics = metrics
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.retry_max_s = retry_max_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.utilization_window_s = utilization_window_s
        self.utilization_refresh_s = utilization_refresh_s
        self.written = self.rejected = self.dropped = self.failures = 0
        #: each self-hosted backend's load, re-measured from the ledger every utilization_refresh_s
        self.load: dict[str, Utilization] = {}
        self._queue: collections.deque[Pending] = collections.deque()
        self._chunks = Chunks()  # built rows waiting for a successful write
        self.wal = wal
        #: the log's leftovers and backlog, handed over ahead of the queue
        self.recovery = Recovery(wal, batch_size) if wal is not None else None
        #: the records a dead process's audit records hold and the database does not (`audit_journal`):
        #: read once, when the database first answers, and written ahead of everything else
        self.audit_replay: AuditReplay | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._engine: sa.Engine | None = None
        #: where the batches are written (the child process starts with the first batch)
        self.sink: InlineSink | ProcessSink = make_sink(
            url, process=process, journal_max_rows=journal_max_rows, journal_spare_cpu=journal_spare_cpu
        )
        self._ready = False
        #: the database's health as this writer sees it (for /metrics and the logs)
        self.health = StoreHealth("ledger", self._safe_url())
        self._retry_at = 0.0
        self._backoff = 0.0
        self._load_at = 0.0
        self.maker = RowMaker(pricing, tokenizers, metrics, self.load)
        if metrics is not None:
            metrics.attach(self)

    @classmethod
    def from_config(
        cls, config: Config, pricing: Pricing, metrics: Metrics | None = None, tokenizers: Tokenizers | None = None
    ) -> LedgerWriter:
        m = config.file.metering
        return cls(
            config.file.storage.url,
            pricing=pricing,
            tokenizers=tokenizers if tokenizers is not None else Tokenizers(config),
            metrics=metrics,
            batch_size=m.batch_size,
            flush_interval_s=m.flush_interval_ms / 1000.0,
            max_buffer=m.max_buffer,
            retry_max_s=m.retry_max_s,
            shutdown_timeout_s=m.shutdown_timeout_s,
            utilization_window_s=m.utilization_window_s,
            utilization_refresh_s=m.utilization_refresh_s,
            process=m.writer == "process",
            journal_max_rows=m.journal_max_rows,
            journal_spare_cpu=m.journal_spare_cpu,
            wal=wal_for(config),
        )

    # the request's side ------------------------------------------------------------------------------
    def submit(self, item: Pending) -> None:
        """Queue one record (O(1), no I/O). When `max_buffer` records already wait (the database is away),
        a record in the write-ahead log is let go (read back from the log later); any other is dropped and
        counted (and so is any record once the writer has been closed)."""
        queue = self._queue
        if len(queue) >= self.max_buffer or self._stop.is_set():
            if item.seq and self.recovery is not None and not self._stop.is_set():
                self.recovery.backlog.note(item.seq)
                return
            self.dropped += 1
            return
        queue.append(item)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    @property
    def accepts(self) -> bool:
        """`submit` would queue a record now (rather than let it go or drop it)."""
        return len(self._queue) < self.max_buffer and not self._stop.is_set()

    @property
    def depth(self) -> int:
        """Records not yet written: queued plus built and waiting for the database."""
        return len(self._queue) + self._chunks.size

    # life cycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Check the URL, migrate the schema, and start the thread. Idempotent.

        Raises `ConfigError` (naming `storage.url`) for a bad URL, a SQLite file that cannot be opened,
        or a schema that cannot be upgraded; an unreachable PostgreSQL server is not an error at start
        (records are kept and the migration is retried by the thread)."""
        if self._thread is not None:
            return
        from owstack.storage import engine

        self._engine = engine(self.url)  # raises ConfigError for a bad URL
        self._prepare(raise_errors=True)
        if self.recovery is not None:
            from owstack.errors import ConfigError

            try:
                self.recovery.open()
            except WalUnavailable as exc:
                raise ConfigError(f"metering.wal_directory: cannot write the ledger's write-ahead log: {exc}") from None
        self._thread = threading.Thread(target=self._run, name="owstack-ledger", daemon=True)
        self._thread.start()

    @property
    def journal_rows(self) -> int:
        """Records accepted by the ledger process and not yet moved into ledger_rows (as it last said)."""
        sink = self.sink
        return sink.journal_rows if isinstance(sink, ProcessSink) else 0

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record submitted before the call is in the ledger (journaled batches moved
        too) or rejected; False on timeout (e.g. the database is down)."""
        deadline = time.monotonic() + timeout
        self._settle = True
        if self._thread is None:  # not started: write in the caller's thread
            while (self._queue or self._chunks or self._settle or self._behind()) and time.monotonic() < deadline:
                if not self._guarded_cycle(respect_backoff=False):
                    time.sleep(0.05)
            return not (self._queue or self._chunks or self._settle or self._behind())
        self._drain = True
        self._wake.set()
        with self._idle:
            while self._queue or self._chunks or self._busy or self._settle or self._behind():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._drain = True
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def _behind(self) -> bool:
        """Records the write-ahead log or the audit log holds that the writer has yet to hand over."""
        return self.audit_replay is not None or (self.recovery is not None and self.recovery.behind)

    @property
    def replayed(self) -> int:
        """Records read back from the write-ahead log (and the audit log) so far."""
        return (self.recovery.replayed if self.recovery is not None else 0) + self._audit_replayed

    @property
    def backlog(self) -> Backlog | None:
        return self.recovery.backlog if self.recovery is not None else None

    def close(self) -> None:
        """Flush everything (retrying for up to `shutdown_timeout_s` if the database is down), then stop.
        Records still unwritten after that are counted as dropped and logged."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.shutdown_timeout_s + 30.0)
        else:
            self._final_flush()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # the writer thread -------------------------------------------------------------------------------
    _busy = False
    _audit_replayed = 0
    _drain = False  # a flush asked for everything queued, full batch or not
    _settle = False  # a flush asked for the journaled batches to be moved into the ledger

    def _run(self) -> None:
        background_priority()  # never preempt the event loop on wake-up (storage/threads.py)
        while not self._stop.is_set():
            full = self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            drain, self._drain = self._drain, False
            # woken by a full batch: write full batches only, the remainder joins the next one (a commit
            # per few rows costs more than the rows); on the interval or a flush, write everything
            self._guarded_cycle(respect_backoff=True, full_only=full and not drain)
        self._final_flush()

    def _final_flush(self) -> None:
        deadline = time.monotonic() + self.shutdown_timeout_s
        while (self._queue or self._chunks or self._behind()) and time.monotonic() < deadline:
            if not self._guarded_cycle(respect_backoff=False):
                time.sleep(min(max(self._backoff, 0.05), max(deadline - time.monotonic(), 0.0)))
        left = self.depth
        if left and self.wal is not None:
            log.warning(
                "ledger: the database at %s stayed unreachable; %d records stay in the write-ahead log (%s) "
                "or the audit log for the next start",
                self._safe_url(),
                left,
                self.wal.slot,
            )
        elif left:
            self.dropped += left
            log.error(
                "ledger: %d records lost at shutdown: the database at %s stayed unreachable",
                left,
                self._safe_url(),
            )
        self._queue.clear()
        self._chunks.clear()
        if self.wal is not None:
            self.wal.close()
        self.sink.close()
        with self._idle:
            self._idle.notify_all()

    def _guarded_cycle(self, *, respect_backoff: bool, full_only: bool = False) -> bool:
        """One pass; True when everything queued was written. Never raises (the thread must live)."""
        try:
            return self._cycle(respect_backoff, full_only)
        except Exception:
            log.exception("ledger: unexpected error in the writer thread; records are kept and retried")
            self._schedule_retry()
            return False
        finally:
            self._busy = False
            if self.metrics is not None and self.metrics.shared_dir is not None:
                self._save_metrics()
            with self._idle:
                self._idle.notify_all()

    def _cycle(self, respect_backoff: bool, full_only: bool) -> bool:
        if respect_backoff and time.monotonic() < self._retry_at:
            return False
        if not self._ready and not self._prepare(raise_errors=False):
            return False
        if time.monotonic() >= self._load_at:
            self._refresh_load()
        if self.audit_replay is not None and not self._replay_audit():
            return False
        while True:
            if not self._chunks:
                if self._from_wal():
                    continue
                if full_only and len(self._queue) < self.batch_size:
                    return not self._queue
                self._busy = True
                batch = self._take()
                if not batch:
                    return self._settled()
                hi = max(p.seq for p in batch)
                recovery = self.recovery
                done = functools.partial(recovery.release, hi) if hi and recovery else None
                self._chunks.add(self.maker.rows(batch, self.sink.dims.ids), done)
            if not self._write_chunks():
                return False

    def _replay_audit(self) -> bool:
        """Queue, ahead of everything, the records a dead process's audit records hold and the database does
        not (before any record of this process reaches the database: the next start's scan relies on that
        order). False (retried later) when the database or the key store cannot say."""
        from owstack.storage import is_outage

        replay = self.audit_replay
        assert replay is not None
        try:
            records = replay.missing(self._present())
        except Exception as exc:
            if is_outage(exc) or isinstance(exc, OSError):  # the database, the key store or the disk: later
                log.warning("ledger: cannot read back the audit log's records yet (%s); retrying", exc)
                self._schedule_retry()
                return False
            # anything else would fail again: the ledger goes on, the records stay for the next start's scan
            log.exception("ledger: reading back the audit log's records failed; they are left for the next start")
            records = []
        self.audit_replay = None
        self._audit_replayed += len(records)
        if not records:
            replay.checked()  # nothing was missing (or the scan failed: then nothing was noted as checked)
            return True
        self._busy = True
        for start in range(0, len(records), self.batch_size):
            chunk = records[start : start + self.batch_size]
            last = start + self.batch_size >= len(records)
            self._chunks.add(self.maker.rows(chunk, self.sink.dims.ids), replay.checked if last else None)
        return True

    def _present(self) -> Callable[[list[int]], set[int]]:
        """Which of some row ids the ledger holds (journaled batches moved first, once)."""
        import sqlalchemy as sa

        from owstack.metering.journal import catch_up
        from owstack.metering.ledger import ledger_rows

        moved = False

        def present(ids: list[int]) -> set[int]:
            nonlocal moved
            if not moved:
                catch_up(self.url)
                moved = True
            assert self._engine is not None
            with self._engine.connect() as conn:
                return {row[0] for row in conn.execute(sa.select(ledger_rows.c.id).where(ledger_rows.c.id.in_(ids)))}

        return present

    def _from_wal(self) -> bool:
        """Queue chunks of records from the write-ahead log ahead of the queue (`recovery.Recovery`); True if
        any was queued."""
        recovery = self.recovery
        if recovery is None:
            return False
        chunks = recovery.next(len(self._queue), self.max_buffer)
        if chunks is None:
            return False
        self._busy = True
        for records, done in chunks:
            self._chunks.add(self.maker.rows(records, self.sink.dims.ids), done)
        return True

    def _settled(self) -> bool:
        """Everything is handed over: when a flush asked, have the journaled batches moved; False on an outage."""
        if self._settle:
            self._busy = True
            try:
                self.sink.settle()
            except SinkError as exc:
                self._outage(exc)
                return False
            finally:
                self._count_rejected()
            self._settle = False
        return True

    def _count_rejected(self) -> None:
        refused = self.sink.take_rejected()  # found (and logged) by the ledger process as batches moved
        if refused:
            self.rejected += refused
            self.written -= refused

    def _outage(self, exc: SinkError) -> None:
        self.failures += 1
        if self.health.up:
            log.warning("ledger: keeping %d records and retrying until the database answers", self.depth)
        self.health.failed(exc.reason)  # one warning per outage, a summary every minute, one when it ends
        self._schedule_retry()

    def _take(self) -> list[Pending]:
        queue = self._queue
        batch: list[Pending] = []
        while queue and len(batch) < self.batch_size:
            batch.append(queue.popleft())
        return batch

    def _prepare(self, *, raise_errors: bool) -> bool:
        """Upgrade the schema; True when ready. Outages are retried later; other errors are raised at
        start and logged (and retried) afterwards."""
        from owstack.errors import ConfigError
        from owstack.storage import engine, error_reason, is_outage, migrate

        try:
            if self._engine is None:
                self._engine = engine(self.url)
            migrate(self.url)
        except Exception as exc:
            sqlite = self._engine is not None and self._engine.dialect.name == "sqlite"
            if raise_errors and (sqlite or not is_outage(exc)):
                # a local file that cannot be opened, or a schema owstack cannot upgrade: fail at start
                raise ConfigError(
                    f"storage.url: cannot use the database at {self._safe_url()}: {error_reason(exc)}"
                ) from exc
            log.warning("ledger: cannot migrate %s yet (%s); retrying", self._safe_url(), type(exc).__name__)
            self._schedule_retry()
            return False
        self._ready = True
        self._backoff = 0.0
        return True

    def _write_chunks(self) -> bool:
        """Write the built chunks in order (refused rows isolated); False (keep them) on an outage."""
        try:
            self._chunks.write(self.sink, self._wrote, self._reject)
        except SinkError as exc:
            self._outage(exc)
            return False
        return True

    def _wrote(self, rows: int) -> None:
        self.written += rows
        self._count_rejected()
        self._backoff = 0.0
        self.health.succeeded()

    def _reject(self, row: tuple[Any, ...], reason: str) -> None:
        self.rejected += 1
        log.error("ledger: the database refused the record of request %s: %s", row[1], reason)

    def _save_metrics(self) -> None:
        assert self.metrics is not None
        try:
            self.metrics.save()
        except OSError as exc:
            log.warning("metrics: cannot write to %s: %s", self.metrics.shared_dir, exc)

    def _schedule_retry(self) -> None:
        self._backoff = min(self.retry_max_s, max(0.1, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff

    def _safe_url(self) -> str:
        from owstack.storage import safe_url

        return safe_url(self.url)

    def _refresh_load(self) -> None:
        self._load_at = time.monotonic() + self.utilization_refresh_s
        if self._engine is not None:
            self.maker.refresh_load(self._engine, self.utilization_window_s)
