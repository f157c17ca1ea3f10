"""The ledger writer: a background thread that counts and prices records, and hands them in batches to the
ledger process (`sink.ProcessSink`, which journals them and moves them into the ledger when the gateway's
traffic allows; `metering.writer: thread` writes them into the ledger on this thread).

    writer = LedgerWriter.from_config(config, pricing, metrics)
    writer.start()                 # migrates the schema, starts the thread
    writer.submit(snapshot(ctx))   # O(1): a deque append, from the request's path
    writer.flush(timeout)          # wait until everything submitted so far is in the ledger (tests, admin)
    await writer.aclose()          # graceful shutdown: flush everything, then stop

Batches: up to `batch_size` records per transaction, written as soon as `batch_size` records wait (full
batches only; the remainder joins the next) or every `flush_interval_ms` (everything waiting). A batch is all
or nothing. When the database refuses a batch (a constraint, a value it cannot hold) the batch is split in
halves and retried until the refused record is alone; it is then logged by request id and counted as rejected,
and every other record is written. When the database is unreachable the batch is kept and retried with
exponential backoff (up to `retry_max_s`) while new records wait in the queue, at most `max_buffer` of them;
beyond that new records are dropped and counted (owstack_ledger_dropped_records_total). A ledger process that
dies is an outage too: the batch is sent again to a new one. Inserts are idempotent (each record carries a
random id; a duplicate id is ignored), so a batch whose commit was acknowledged late is never written twice.
With the ledger process, a refused record is found when its batch moves from the journal into the ledger;
the ledger process isolates and logs it the same way, and the writer counts it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from owstack.metering.costs import Pricing, Rate, Utilization
from owstack.metering.record import Pending, busy_seconds, row_values
from owstack.metering.sink import InlineSink, ProcessSink, SinkError, make_sink
from owstack.metering.tokens import Estimate, Tokenizers
from owstack.storage.health import StoreHealth

if TYPE_CHECKING:
    import sqlalchemy as sa

    from owstack.config.load import Config
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
    ) -> None:
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
        self._chunks: list[list[tuple[Any, ...]]] = []  # built rows waiting for a successful write
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
        self._estimate = Estimate()
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
        )

    # the request's side ------------------------------------------------------------------------------
    def submit(self, item: Pending) -> None:
        """Queue one record (O(1), no I/O). Dropped and counted when `max_buffer` records already wait
        (or the writer has been closed)."""
        queue = self._queue
        if len(queue) >= self.max_buffer or self._stop.is_set():
            self.dropped += 1
            return
        queue.append(item)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    @property
    def depth(self) -> int:
        """Records not yet written: queued plus built and waiting for the database."""
        return len(self._queue) + sum(len(c) for c in self._chunks)

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
            while (self._queue or self._chunks or self._settle) and time.monotonic() < deadline:
                if not self._guarded_cycle(respect_backoff=False):
                    time.sleep(0.05)
            return not (self._queue or self._chunks or self._settle)
        self._drain = True
        self._wake.set()
        with self._idle:
            while self._queue or self._chunks or self._busy or self._settle:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._drain = True
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

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
    _drain = False  # a flush asked for everything queued, full batch or not
    _settle = False  # a flush asked for the journaled batches to be moved into the ledger

    def _run(self) -> None:
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
        while (self._queue or self._chunks) and time.monotonic() < deadline:
            if not self._guarded_cycle(respect_backoff=False):
                time.sleep(min(max(self._backoff, 0.05), max(deadline - time.monotonic(), 0.0)))
        lost = self.depth
        if lost:
            self.dropped += lost
            log.error(
                "ledger: %d records lost at shutdown: the database at %s stayed unreachable",
                lost,
                self._safe_url(),
            )
            self._queue.clear()
            self._chunks.clear()
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
        while True:
            if not self._chunks:
                if full_only and len(self._queue) < self.batch_size:
                    return not self._queue
                self._busy = True
                batch = self._take()
                if not batch:
                    return self._settled()
                self._chunks.append(self._rows(batch))
            if not self._write_chunks():
                return False

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
        """Write the built chunks in order; split refused ones; False (keep them) on an outage."""
        sink = self.sink
        while self._chunks:
            chunk = self._chunks[0]
            try:
                sink.write(chunk)
            except SinkError as exc:
                if exc.outage:
                    self._outage(exc)
                    return False
                self._chunks.pop(0)
                if len(chunk) == 1:
                    self._reject(chunk[0], exc.reason)
                else:
                    mid = len(chunk) // 2
                    self._chunks[0:0] = [chunk[:mid], chunk[mid:]]
                continue
            self._chunks.pop(0)
            self.written += len(chunk)
            self._count_rejected()
            self._backoff = 0.0
            self.health.succeeded()
        return True

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

    def _rows(self, batch: list[Pending]) -> list[tuple[Any, ...]]:
        """Count (when the upstream sent no usage), price, and make the ledger rows of a batch; add their
        costs to the metrics once per batch. The writer's per-record path: keep it to arithmetic and
        tuples (every microsecond here is one the event loop loses on a shared core, docs/metering.md)."""
        rate_of, load, dims = self.pricing.rate, self.load, self.sink.dims.ids
        spent: dict[Rate, list[float]] = {}  # the batch's cost and counterfactual per rate, for the metrics
        rows = []
        for item in batch:
            usage = item.usage
            if usage.reported or item.backend is None or not (item.status < 400 or item.output_text):
                tokens = (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens, usage.cached_tokens)
                estimated = False
            else:
                prompt, completion, estimated = self._count(item)
                tokens = (prompt, completion, 0, 0)
                if self.metrics is not None:
                    self.metrics.add_tokens(item.layer, item.backend, prompt, completion, 0, 0)
            rate = rate_of(item.backend, item.layer)
            costs = rate.costs(
                tokens[0], tokens[1], tokens[3], busy_seconds(item), load.get(item.backend or "") if load else None
            )
            cost, cf = costs[0], costs[4]
            if cost or cf:
                total = spent.get(rate)
                if total is None:
                    total = spent[rate] = [0.0, 0.0]
                total[0] += cost or 0.0
                total[1] += cf or 0.0
            rows.append(row_values(item, tokens, estimated, costs, dims))
        if self.metrics is not None:
            for rate, (cost, cf) in spent.items():
                self.metrics.add_cost(rate.layer, rate.name, rate.cost, cost)
                self.metrics.add_cost(rate.layer, rate.name, "counterfactual", cf)
        return rows

    def _count(self, item: Pending) -> tuple[int, int, bool]:
        """(prompt, completion, estimated) for a record whose upstream reported no usage."""
        counter = self.tokenizers.for_backend(item.backend) if self.tokenizers is not None else self._estimate
        usage = item.usage
        if usage.prompt_tokens or usage.completion_tokens:  # the gateway counted them for the client already
            return usage.prompt_tokens, usage.completion_tokens, not counter.exact
        text = "".join(item.output_text)
        try:
            return counter.prompt(item.messages or []), counter.text(text), not counter.exact
        except Exception as exc:  # a tokenizer failure must not lose the record
            log.warning("ledger: counting tokens of %s failed (%s); estimating", item.request_id, exc)
            return self._estimate.prompt(item.messages or []), self._estimate.text(text), True

    def _refresh_load(self) -> None:
        from owstack.metering.utilization import measure
        from owstack.storage import is_outage

        self._load_at = time.monotonic() + self.utilization_refresh_s
        names = [name for name, b in self.pricing.backends.items() if b.kind == "selfhost"]
        if not names or self._engine is None:
            return
        try:
            self.load.update(measure(self._engine, names, self.utilization_window_s))
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("ledger: cannot measure utilization (%s); keeping the last values", type(exc).__name__)
