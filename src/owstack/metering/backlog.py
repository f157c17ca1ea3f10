"""Records the ledger writer let go of while its queue was full, read back from the write-ahead log.

    backlog = Backlog(wal)
    backlog.note(seq)                 event loop: the queue is full; the record is only in the log now
    backlog.floor                     the smallest sequence number not handed over yet (None: nothing let go)
    records, end = backlog.take(n)    writer thread: the next records to hand over, read from the log
    backlog.advance(end)              ... once they are in the database

Why: during a long database outage the writer keeps `metering.max_buffer` records in memory; before the
write-ahead log, the records beyond it were dropped. With the log they are on disk already, so the writer
lets go of them (no memory) and, once the database answers and its queue has room again, reads them back
from the log in order (`take`). Records between the first and the last one let go that did fit in the queue
are read back too; the database ignores a row id it already has, so they are not counted twice. The log
keeps every record from `floor` on (the writer releases only records below it).
"""

from __future__ import annotations

import logging
import threading

from owstack.metering.record import Pending, from_wal
from owstack.metering.wal import Wal

log = logging.getLogger(__name__)


class Backlog:
    def __init__(self, wal: Wal) -> None:
        self.wal = wal
        self._lock = threading.Lock()
        self._first: int | None = None
        self._last = 0
        self.let_go = 0

    def note(self, seq: int) -> None:
        with self._lock:
            if self._first is None:
                self._first = seq
                log.warning("ledger: the writer's queue is full; records wait in the write-ahead log only")
            self._last = seq
            self.let_go += 1

    @property
    def floor(self) -> int | None:
        return self._first

    def take(self, limit: int) -> tuple[list[Pending], int] | None:
        """Up to `limit` records from `floor` on, and the sequence number after the last; None when none are
        committed to the log yet (or nothing was let go)."""
        first = self._first
        if first is None:
            return None
        found = self.wal.read_from(first, limit)
        if not found:
            return None
        records = []
        for seq, payload in found:
            try:
                records.append(from_wal(payload))
            except ValueError as exc:
                log.error("ledger: record %d of the write-ahead log is unreadable (%s); skipped", seq, exc)
        return records, found[-1][0] + 1

    def advance(self, end: int) -> None:
        """Every record below `end` is in the database: the floor moves up (or goes, once past the last)."""
        with self._lock:
            if self._first is None:
                return
            if end > self._last:
                self._first = None
                log.warning("ledger: the records the writer let go are all in the database")
            else:
                self._first = max(self._first, end)
