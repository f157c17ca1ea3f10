"""The ledger's write-ahead log: a request's record is on disk before its response completes.

    wal = Wal(directory)
    leftovers = wal.open()          # claim a slot; segments a previous process left (its own or a dead one's)
    seq, durable = wal.append(b)    # event loop: queue one record; `durable` (a future) is done once fsynced
    wal.release(seq)                # writer thread: every record up to `seq` is in the database now
    wal.read_from(seq)              # the committed records from `seq` on (records the writer had to let go)
    wal.close()

Why: the ledger writer batches records in memory for half a second before the ledger process journals them
in the database; a kill -9 lost the records of the last ~0.5 s of answered requests (issue 14). Here every
record is appended to a local file with group commit (one `write` and one `fdatasync` for all the records
queued while the previous commit ran, as the audit log does) before the meter stage lets the response
complete; the batch path to the database is unchanged. A record leaves the log when the writer has handed
it to the database (`release`): a segment whose every record is released is deleted. At start, the
segments left behind are replayed into the ledger; rows carry the id they were given at first, so a record
replayed after it had reached the database is ignored there.

Layout: `<directory>/<slot>/seg-<process>-<first seq>.wal`, one slot per process (claimed with a `flock`, as the audit
log claims its streams: several workers or instances on one host never share a slot). A slot whose lock no
process holds belongs to a process that died: the next process to open the log adopts its segments.
Framing: a 4-byte length, a 4-byte CRC-32 and the record (`record.wal_payload`); a torn tail (a crash in
mid-write) ends the segment's replay at the last whole record.

A failed write (disk full, I/O error) fails the futures of its batch; the next batch starts a new segment,
so the log recovers by itself when the cause goes away (fail closed while failing, never stuck).

Preallocated: a segment is zero-filled `PREALLOCATE` bytes ahead of its records and written in place
(`pwrite` at its committed size), so that a batch's `fdatasync` flushes data only: a file that grows with
every batch also makes the file system commit its journal for the new size and blocks each time
(`bench/fsync_prealloc.py`, docs/benchmarks.md). A
segment is cut to its length when the log moves on from it or closes; one a crash left ends in zeros, which
read as a frame of length 0: the end (no record is empty). Out-of-order pages of a batch torn by a host
crash read as zeros or fail their CRC, and end the replay there, as any torn tail does; that batch was never
acknowledged (its fsync had not returned).

Carried (`storage.durable`): with the audit log on, the audit writer's commit thread takes this log's queued
records with its own batch while it is busy or requests overlap (`carry`: write them, then, after the audit
batch is written, fdatasync and settle): under load one thread cycles per batch, not two, and one is woken.
A batch of requests that come one at a time is this log's own thread's, as before: the two fsyncs then
overlap rather than run one after the other (a request alone waits for one fsync, not two). Same framing, same
file, same fsync before the future completes; only the thread differs. This log's own thread commits
whatever the carrier does not take: everything when there is no carrier, when it stops or fails
(`uncarried`), or a batch it left for `CARRIER_GRACE_S`. Commits are serialised (`_commit_lock`), so records
reach the file in sequence order.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from owstack.storage.threads import Handoff, background_priority

if TYPE_CHECKING:
    from owstack.storage.durable import Carrier

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")
LOCK = ".lock"
#: records per segment file before a new one is started
SEGMENT_RECORDS = 8192
#: bytes of zeros a segment is extended by ahead of its records (see "Preallocated" in the docstring)
PREALLOCATE = 1 << 20
MAX_SLOTS = 256
#: seconds a queued batch may wait for a carrier before this log's own thread commits it (a safety net:
#: a carrier takes batches within milliseconds, and says so when it stops taking them)
CARRIER_GRACE_S = 1.0


class WalUnavailable(Exception):
    """A record could not be made durable (the log's directory cannot be written)."""


@dataclass(slots=True)
class Segment:
    first: int
    path: Path
    last: int = 0
    #: bytes committed (fsynced) so far
    size: int = 0


@dataclass(slots=True)
class _Batch:
    #: the sequence number of the first payload
    first: int = 0
    payloads: list[bytes] = field(default_factory=list)
    done: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)
    #: left to the carrier (it was busy committing when the batch began), else to this log's own thread
    carried: bool = False


#: what `_write_batch` did: (segment, fd, bytes written), or why it could not
_Written = tuple[Segment, int, int] | WalUnavailable


class _Carried:
    """A batch the carrier's thread wrote (`storage.durable.Carried`). It holds the log's commit lock from
    `Wal.carry` until `finish` returns."""

    __slots__ = ("batch", "synced", "wal", "written")

    def __init__(self, wal: Wal, batch: _Batch, written: _Written) -> None:
        self.wal, self.batch, self.written = wal, batch, written
        self.synced: _Written | OSError | None = None

    def sync(self) -> None:
        self.synced = self.wal._fsync(self.written)

    def finish(self) -> None:
        try:
            if self.synced is None:
                self.sync()
            assert self.synced is not None
            self.wal._finish_batch(self.batch, self.batch.first, self.synced)
        finally:
            self.wal._commit_lock.release()


#: one appended record on its way to the commit thread: (sequence number, payload, its loop, its future)
_Item = tuple[int, bytes, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class Wal:
    def __init__(self, directory: Path, *, sync: bool = True, segment_records: int = SEGMENT_RECORDS) -> None:
        """`sync=False` writes without fdatasync: a crash of the process loses nothing, a crash of the host
        may (for a disk whose fsync costs more than the gateway can afford; docs/metering.md)."""
        self.directory = directory
        self.sync = sync
        self.segment_records = segment_records
        self.slot: Path | None = None
        self.error: str | None = None
        self.committed_seq = 0
        self.records_written = 0
        self._seq = 0
        #: names this process's segments apart from those a previous one left in the slot (sequence
        #: numbers start at 1 in every process)
        self._token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._released = 0
        self._cond = threading.Condition()
        self._batch = _Batch()
        self._handoff: Handoff[_Item] = Handoff(self._take_over)
        self._waiting = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._fd: int | None = None
        #: bytes of the current segment's file (zeros past its records; see PREALLOCATE)
        self._allocated = 0
        self._segments: list[Segment] = []
        self._files_lock = threading.Lock()
        #: held from taking a batch to its fsync: one committer at a time (own thread or carrier), in order
        self._commit_lock = threading.Lock()
        #: the log whose commit thread commits this one's batches too (storage.durable), if any
        self.carrier: Carrier | None = None
        #: records in the last batch committed: more than one means requests overlap (see `_take_over`)
        self._last_batch = 0

    # life cycle -----------------------------------------------------------------------------------------
    def open(self) -> list[Path]:
        """Claim a slot and start the commit thread; the segment files to replay (oldest first), this slot's
        and those of slots no process holds. Raises `WalUnavailable` when the directory cannot be used."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            leftovers = self._claim()
        except OSError as exc:
            raise WalUnavailable(f"{exc.strerror or exc} ({exc.filename or self.directory})") from None
        self._thread = threading.Thread(target=self._run, name="owstack-ledger-wal", daemon=True)
        self._thread.start()
        return leftovers

    def close(self) -> None:
        """Commit what is queued, stop the thread, delete the segments whose records were all released."""
        thread = self._thread
        if thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            thread.join()
            self._thread = None
        self._cut()
        self._delete_released(final=True)
        for attr in ("_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    def _claim(self) -> list[Path]:
        leftovers: list[Path] = []
        mine: Path | None = None
        for n in range(MAX_SLOTS):
            slot = self.directory / f"slot-{n}"
            slot.mkdir(exist_ok=True)
            fd = _try_lock(slot)
            if fd is None:
                continue  # another live process writes here
            files = sorted(slot.glob("*.wal"))
            if mine is None:
                mine, self._lock_fd = slot, fd
                leftovers += files
            else:  # a dead process's slot: adopt its segments, leave the slot free
                for f in files:
                    adopted = mine / f"adopted-{n}-{f.name}"
                    f.rename(adopted)
                    leftovers.append(adopted)
                os.close(fd)
        if mine is None:
            raise OSError(f"all {MAX_SLOTS} slots are held by other processes")
        self.slot = mine
        return leftovers

    def discard(self, path: Path) -> None:
        """Delete a replayed leftover segment (its records are in the database now)."""
        path.unlink(missing_ok=True)

    # the request's side ---------------------------------------------------------------------------------
    def append(self, payload: bytes) -> tuple[int, asyncio.Future[None]]:
        """Queue one record (from the event loop): its sequence number and a future done once it is on disk
        (`WalUnavailable` if it could not be written). The records of one loop turn reach the commit thread
        together at the end of the turn, with one wake-up (`storage.threads.Handoff`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._thread is None or self._stopping:
            future.set_exception(WalUnavailable("the ledger's write-ahead log is closed"))
            return 0, future
        self._seq += 1
        self._handoff.add(loop, (self._seq, payload, loop, future))
        return self._seq, future

    def _take_over(self, items: list[_Item]) -> None:
        with self._cond:
            if self._thread is None or self._stopping:  # closed while they were on their way
                _settle([(loop, future) for _, _, loop, future in items], WalUnavailable("the log is closed"))
                return
            batch = self._batch
            carrier = self.carrier
            if not batch.payloads:
                batch.first = items[0][0]
                # a busy carrier takes the batch with its next one (no thread to wake: it is running), and so
                # does an idle one while requests overlap (the last batch held several records: the carrier
                # is woken for their audit records anyway). Requests one at a time: this log's thread is
                # woken too, and the two fsyncs overlap rather than run one after the other.
                batch.carried = carrier is not None and carrier.carrying and (carrier.busy or self._last_batch > 1)
            for _, payload, loop, future in items:
                batch.payloads.append(payload)
                batch.done.append((loop, future))
            carried = batch.carried
            if not carried and self._waiting:
                self._waiting = False
                self._cond.notify()
        if carried and carrier is not None:
            carrier.wake()  # in case it went idle meanwhile (a no-op while it runs); outside this log's lock

    # carried by another log's commit thread (storage.durable) ---------------------------------------------
    @property
    def pending(self) -> bool:
        """A batch is queued for the carrier."""
        batch = self._batch
        return batch.carried and bool(batch.payloads)

    def carry_with(self, carrier: Carrier) -> None:
        """From now on `carrier` commits this log's batches with its own (event loop's thread)."""
        with self._cond:
            self.carrier = carrier
            self._cond.notify()  # this log's thread now waits with a time-out (CARRIER_GRACE_S)

    def uncarried(self, carrier: Carrier) -> None:
        """`carrier` no longer takes batches (stopped or failed): this log's own thread commits them again."""
        with self._cond:
            if self.carrier is carrier and not carrier.carrying:
                self.carrier = None
            self._waiting = False
            self._cond.notify()

    def carry(self) -> _Carried | None:
        """(the carrier's thread) Take the queued batch and write it; returns it (`sync`: fdatasync, on any
        thread; `finish`: settle the futures, once the carrier's own batch is written), or None when nothing
        is queued. Nothing else commits to this log until `finish` returns."""
        if not self.pending:
            return None
        self._commit_lock.acquire()
        try:
            with self._cond:
                if self._thread is None or self._stopping or not self.pending:
                    self._commit_lock.release()  # closing, taken meanwhile, or this log's own thread's batch
                    return None
                batch, self._batch = self._batch, _Batch()
            written = self._write_batch(batch, batch.first)
        except BaseException:
            self._commit_lock.release()
            raise
        return _Carried(self, batch, written)

    # the writer's side ----------------------------------------------------------------------------------
    def release(self, seq: int) -> None:
        """Every record up to `seq` is in the database: segments holding only such records can go."""
        if seq > self._released:
            self._released = seq
            self._delete_released()

    def read_from(self, seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` committed records with a sequence number >= `seq`, in order."""
        out: list[tuple[int, bytes]] = []
        with self._files_lock:
            segments = [(s.first, s.path, s.size) for s in self._segments if s.last >= seq]
        for first, path, size in segments:
            for n, payload in enumerate(read_segment(path, size), start=first):
                if n >= seq and n <= self.committed_seq:
                    out.append((n, payload))
                    if len(out) >= limit:
                        return out
        return out

    # the commit thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        background_priority()  # never preempt the event loop on wake-up (storage/threads.py)
        left: int | None = None  # the first record of a batch a carrier has left waiting so far
        while True:
            with self._cond:
                while not self._stopping:
                    if self._batch.payloads:
                        carrier = self.carrier
                        if (
                            not self._batch.carried
                            or carrier is None
                            or not carrier.carrying
                            or left == self._batch.first
                        ):
                            break
                        left = self._batch.first
                    else:
                        left = None
                    self._waiting = True
                    self._cond.wait(CARRIER_GRACE_S if self.carrier is not None else None)
                    self._waiting = False
                stopping = self._stopping
            left = None
            self._commit_queued()
            if stopping:
                with self._cond:
                    if not self._batch.payloads:
                        return

    def _commit_queued(self) -> None:
        with self._commit_lock:
            with self._cond:
                batch, self._batch = self._batch, _Batch()
            if batch.payloads:
                self._commit(batch, batch.first)

    def _commit(self, batch: _Batch, first: int) -> None:
        self._finish_batch(batch, first, self._fsync(self._write_batch(batch, first)))

    def _write_batch(self, batch: _Batch, first: int) -> _Written:
        """Append the batch to the current segment (not yet fsynced): (segment, fd, bytes), or the error."""
        try:
            segment = self._segment_for(first, len(batch.payloads))
            buf = b"".join(FRAME.pack(len(p), zlib.crc32(p)) + p for p in batch.payloads)
            fd = self._fd
            assert fd is not None
            end = segment.size + len(buf)
            _write_at(fd, buf, segment.size)
            if end > self._allocated:  # zeros ahead of the records: later batches overwrite, never grow
                _write_at(fd, bytes(PREALLOCATE), end)
                self._allocated = end + PREALLOCATE
            return segment, fd, len(buf)
        except OSError as exc:
            return self._write_failed(exc)

    def _fsync(self, written: _Written) -> _Written | OSError:
        """fdatasync what `_write_batch` wrote (any thread: it touches no state); the error, if it failed."""
        if self.sync and not isinstance(written, WalUnavailable):
            try:
                os.fdatasync(written[1])
            except OSError as exc:
                return exc
        return written

    def _finish_batch(self, batch: _Batch, first: int, synced: _Written | OSError) -> None:
        """Account for a batch `_write_batch` wrote and `_fsync` synced; complete the batch's futures."""
        error: BaseException | None = None
        if isinstance(synced, WalUnavailable):
            error = synced
        elif isinstance(synced, OSError):
            error = self._write_failed(synced)
        else:
            segment, _, size = synced
            with self._files_lock:
                segment.size += size
                segment.last = first + len(batch.payloads) - 1
            self.committed_seq = segment.last
            self.records_written += len(batch.payloads)
            self._last_batch = len(batch.payloads)
            if self.error is not None:
                log.warning("ledger: the write-ahead log is written again (%s)", self.slot)
                self.error = None
        _settle(batch.done, error)

    def _write_failed(self, exc: OSError) -> WalUnavailable:
        error = WalUnavailable(f"{exc.strerror or exc} ({exc.filename or self.slot})")
        if self.error is None:
            log.error("ledger: the write-ahead log cannot be written: %s; retried with the next batch", error)
        self.error = str(error)
        self._drop_fd()  # the next batch starts a new segment
        return error

    def _segment_for(self, first: int, count: int) -> Segment:
        current = self._segments[-1] if self._segments and self._fd is not None else None
        if current is not None and current.last - current.first + 1 + count <= self.segment_records:
            return current
        assert self.slot is not None
        path = self.slot / f"seg-{self._token}-{first:016d}.wal"  # never a name a previous process used
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        _fsync_dir(self.slot)
        self._cut()
        self._drop_fd()
        self._fd, self._allocated = fd, 0
        segment = Segment(first, path, last=first - 1)
        with self._files_lock:
            self._segments.append(segment)
        self._delete_released()
        return segment

    def _cut(self) -> None:
        """Cut the current segment's zeros off (the log moves on from it, or closes); a failure leaves them,
        which replay reads as the end."""
        if self._fd is not None and self._segments:
            try:
                os.ftruncate(self._fd, self._segments[-1].size)
            except OSError:
                pass

    def _drop_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _delete_released(self, *, final: bool = False) -> None:
        """Delete the segments whose records are all released (the one being written only at the end)."""
        with self._files_lock:
            keep = []
            for i, s in enumerate(self._segments):
                current = i == len(self._segments) - 1 and not final
                if not current and s.last >= s.first - 1 and s.last <= self._released:
                    s.path.unlink(missing_ok=True)
                else:
                    keep.append(s)
            self._segments = keep


def read_segment(path: Path, size: int | None = None) -> Iterator[bytes]:
    """The records of a segment file, in order, up to `size` bytes (None: all); stops at a torn tail."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if size is not None:
        data = data[:size]
    at = 0
    while at + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, at)
        if length == 0:  # the zeros ahead of the records (a crash left the segment uncut): the end
            return
        start = at + FRAME.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            log.warning(
                "ledger: %s ends in a torn record at byte %d (a crash mid-write); the rest is skipped", path, at
            )
            return
        yield payload
        at = start + length


def _settle(done: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]], error: BaseException | None) -> None:
    """Complete the futures, one call into each event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for loop, future in done:
        by_loop.setdefault(loop, []).append(future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_complete, futures, error)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass


def _complete(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _try_lock(slot: Path) -> int | None:
    fd = os.open(slot / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
