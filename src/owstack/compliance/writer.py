"""The audit writer: one hash-chained stream, appended with group commit.

`await writer.append(record)` returns once the record is written and fsynced. A dedicated thread takes
every record queued while the previous write+fsync ran and commits them as one batch (one `write`, one
`fdatasync`), so that N concurrent requests share one fsync. Every `checkpoint_every_records` records or
`checkpoint_every_s` seconds the thread adds a signed checkpoint; `close()` adds a sealing one.

When a write fails (disk full, too many open files, an I/O error) the records of that batch fail
(`AuditUnavailable`, so their responses are errors, never unrecorded successes), the chain is rolled back to
the last record on disk (a partly written batch is truncated away), and the writer turns unhealthy: appends
raise `AuditUnavailable` and the gateway refuses requests. It does not stay so: the thread tries again every
`RETRY_S` (up to `RETRY_MAX_S`) by writing a signed checkpoint into a fresh segment, and the first that is
on disk makes the writer healthy again (issue 14: one "Too many open files" used to disable the log until a
restart). The manifest (an index of the latest checkpoint) failing to update is logged, not fatal: the next
checkpoint rewrites it.

Riders (`storage.durable`): the commit thread also commits the queued records of other logs that ride with
it (the ledger's write-ahead log): it writes theirs and its own batch, fsyncs its own while a helper thread
(`storage.threads.Beside`) fsyncs theirs, so that the disk serves both flushes at once, then completes
their futures and its own. One thread woken per batch for both logs; each record still fsynced in its own
file before its future completes. Riders commit on their own threads while this writer is not `carrying`
(stopped, or failed and not yet written again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from owstack import __version__
from owstack.compliance import chain
from owstack.compliance.acks import Appended, AsyncDone, AuditUnavailable, Done, acknowledge, ignore
from owstack.compliance.config import AuditSection
from owstack.compliance.keys import AuditKeys, load_keys, publish_public_key, resolve_paths
from owstack.compliance.resume import StreamDamaged, Tail, scan
from owstack.compliance.segments import (
    MANIFEST,
    STREAMS,
    fsync_dir,
    segment_name,
    try_lock,
    write_json_atomic,
)
from owstack.storage.threads import Beside, Handoff, background_priority

if TYPE_CHECKING:
    from owstack.storage.durable import Carried, Rider

__all__ = ["Appended", "AuditUnavailable", "AuditWriter", "Entry", "node_name"]

#: what `append` takes: a record, or a function that builds it, called on the commit thread (the request
#: path hands over the request's context rather than building its record on the event loop)
Entry = dict[str, Any] | Callable[[], dict[str, Any]]

MAX_STREAMS = 256
#: seconds between two attempts to write again after a failure (doubling up to RETRY_MAX_S)
RETRY_S = 0.5
RETRY_MAX_S = 5.0
log = logging.getLogger("owstack.audit")


def node_name(section: AuditSection) -> str:
    if section.node:
        return section.node
    host = "".join(c if c.isalnum() or c in "_.-" else "-" for c in socket.gethostname()) or "node"
    return host.lstrip("._-")[:48] or "node"


class AuditWriter:
    def __init__(self, section: AuditSection, *, keys: AuditKeys | None = None) -> None:
        self.section = section
        self.paths = resolve_paths(section)
        self.directory = self.paths.directory
        self.node = node_name(section)
        self._keys = keys
        self.stream = ""
        self._every_n = section.checkpoint_every_records
        self._every_s = section.checkpoint_every_s
        self._delay = section.group_commit_delay_ms / 1000
        self._max_bytes = section.segment_max_bytes
        self._cond = threading.Condition()
        self._queue: list[tuple[Entry, Done]] = []
        self._stopping = False
        self._waiting = False
        self._handoff: Handoff[tuple[Entry, Done]] = Handoff(self._take_over)
        self._thread: threading.Thread | None = None
        #: the commit thread is running (a flag the thread clears on its way out: `Thread.is_alive()` costs
        #: the event loop a lock round trip, and `healthy` is asked once per request)
        self._running = False
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._stream_dir = Path()
        self._tail = Tail()
        self._covered: list[str] = []  # chain.cover() of each record since the last checkpoint
        self._last_cp = time.monotonic()
        self.error: str | None = None
        #: write failures so far, and attempts to write again after one
        self.failures = 0
        self._retry_s = RETRY_S
        self.records_written = 0
        self.batches_written = 0
        #: the stream's last sequence number before this writer took it over (0: a new stream)
        self.resumed_at = 0
        #: logs whose queued records this thread commits with its own (storage.durable)
        self._riders: list[Rider] = []
        #: fsyncs the riders' files beside this thread's own fsync
        self._beside = Beside("audit-writer-riders")

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self.error is None and self._running

    # -- riders (storage.durable) ------------------------------------------------------------------

    @property
    def carrying(self) -> bool:
        """True while the commit thread takes riders' records (running, healthy, not stopping)."""
        return self.error is None and self._thread is not None and not self._stopping

    def carry(self, rider: Rider) -> None:
        """Commit `rider`'s queued records with this writer's batches from now on."""
        with self._cond:
            if rider not in self._riders:
                self._riders = [*self._riders, rider]
        rider.carry_with(self)

    @property
    def busy(self) -> bool:
        """The commit thread is committing (records queued now join its next batch without a wake-up)."""
        return not self._waiting

    def wake(self) -> None:
        """A rider queued records: wake the commit thread if it waits for work."""
        with self._cond:
            if self._waiting:
                self._waiting = False
                self._cond.notify()

    def _riders_pending(self) -> bool:
        return any(r.pending for r in self._riders)

    def _take_riders(self) -> list[Carried]:
        """Write the riders' queued records: their batches, to fsync beside this one and finish after it."""
        carried = []
        for rider in self._riders:
            try:
                batch = rider.carry()
            except Exception:  # a rider's own bug: it must not stop the audit log; its thread takes over
                log.exception("audit log: a log riding with the audit writer failed; it commits on its own")
                continue
            if batch is not None:
                carried.append(batch)
        return carried

    def _release_riders(self) -> None:
        """This thread no longer takes riders' records (stopping, or failed): their own threads do."""
        for rider in self._riders:
            rider.uncarried(self)

    @property
    def keys(self) -> AuditKeys:
        if self._keys is None:
            self._keys = load_keys(self.section, self.paths)
        return self._keys

    def start(self) -> AuditWriter:
        """Claim a stream, continue its chain, start the commit thread. Raises `AuditUnavailable`."""
        if self._thread is not None:
            return self
        try:
            self._open()
        except (OSError, StreamDamaged, ValueError) as exc:
            self._release()
            msg = getattr(exc, "strerror", None) or str(exc)
            path = getattr(exc, "filename", None)
            raise AuditUnavailable(f"{msg}{f' ({path})' if path else ''}") from None
        self._thread = threading.Thread(target=self._run, name=f"audit-writer-{self.stream}", daemon=True)
        self._running = True
        try:
            self._thread.start()
        except BaseException:
            self._running = False
            raise
        return self

    def close(self) -> None:
        """Seal the stream with a final checkpoint and release it (idempotent)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            with self._cond:
                self._stopping = True
                self._cond.notify()
            thread.join()
        self._release_riders()
        self._beside.close()
        self._release()

    def _open(self) -> None:
        keys = self.keys
        root = self.directory / STREAMS
        root.mkdir(parents=True, exist_ok=True)
        publish_public_key(self.directory, keys)
        for n in range(MAX_STREAMS):
            name = f"{self.node}-{n}"
            stream_dir = root / name
            stream_dir.mkdir(exist_ok=True)
            fd = try_lock(stream_dir)
            if fd is not None:
                self._lock_fd, self.stream, self._stream_dir = fd, name, stream_dir
                break
        else:
            raise AuditUnavailable(f"all {MAX_STREAMS} streams of node {self.node} are held by other writers")
        tail = scan(self._stream_dir, self.stream)
        self._tail = tail
        self.resumed_at = tail.seq
        opening: list[dict[str, Any]] = []
        info = {"node": self.node, "pid": os.getpid(), "gateway_version": __version__}
        if tail.new:
            self._new_segment(1)
            opening.append({"type": chain.STREAM_OPENED, **info})
        else:
            if tail.torn or tail.size >= self._max_bytes or tail.day != _today():
                self._new_segment(tail.segment + 1)
            else:
                self._open_segment(tail.segment, tail.size)
            previous = {"seq": tail.seq, "entry_hash": tail.head, "sealed": tail.sealed}
            opening.append({"type": chain.STREAM_RESUMED, **info, "previous": previous, "torn": tail.torn})
        self._commit([(r, ignore) for r in opening], force_checkpoint=True)

    def _release(self) -> None:
        for attr in ("_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, attr, None)

    # -- appending ---------------------------------------------------------------------------------

    def _enqueue(self, record: dict[str, Any], done: Done) -> None:
        if "type" not in record:
            raise ValueError("an audit record needs a `type`")
        with self._cond:
            if self.error is not None or self._thread is None or self._stopping:
                raise AuditUnavailable(self.error or "the audit writer is not running")
            self._queue.append((record, done))
            if self._waiting:
                self._waiting = False
                self._cond.notify()

    async def append(self, record: Entry) -> Appended:
        """Append one record; returns once it is on disk (fsynced). Raises `AuditUnavailable`, or what a
        record-building function raised.

        The records of one turn of the event loop go to the commit thread together, with one wake-up, at
        the end of that turn (`Handoff`): a wake-up per record cost the loop more than the record itself.
        A function is called on the commit thread, with the rest of its batch: what it reads must not change
        until the append returns."""
        if not callable(record) and "type" not in record:
            raise ValueError("an audit record needs a `type`")
        if self.error is not None or self._thread is None or self._stopping:
            raise AuditUnavailable(self.error or "the audit writer is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Appended] = loop.create_future()
        self._handoff.add(loop, (record, AsyncDone(loop, fut)))
        return await fut

    def _take_over(self, items: list[tuple[Entry, Done]]) -> None:
        """The end of a loop turn: queue its records for the commit thread and wake it once."""
        with self._cond:
            if self.error is not None or self._thread is None or self._stopping:
                failure = AuditUnavailable(self.error or "the audit writer is not running")
            else:
                self._queue.extend(items)
                if self._waiting:
                    self._waiting = False
                    self._cond.notify()
                return
        for _, done in items:
            done(None, failure)

    def append_sync(self, record: dict[str, Any], timeout: float = 30.0) -> Appended:
        fut: concurrent.futures.Future[Appended] = concurrent.futures.Future()

        def done(result: Appended | None, exc: BaseException | None) -> None:
            if exc is not None:
                fut.set_exception(exc)
            else:
                assert result is not None
                fut.set_result(result)

        self._enqueue(record, done)
        return fut.result(timeout)

    # -- the commit thread -------------------------------------------------------------------------

    def _run(self) -> None:
        background_priority()  # never preempt the event loop on wake-up (storage/threads.py)
        try:
            self._loop()
        finally:
            self._running = False
            self._release_riders()

    def _loop(self) -> None:
        while True:
            if self.error is not None and not self._recover():
                if self._stopping:
                    self._fail_pending()
                    return
                continue
            batch, stopping = self._take()
            carried = self._take_riders() if self._riders else []
            try:
                self._commit(batch, seal=stopping, carried=carried)
            except OSError as exc:
                self._failed(exc, batch)
                if stopping:
                    self._fail_pending()
                    return
                continue
            finally:
                _finish_all(carried)  # whatever `_commit` did not finish (it failed before its fsync returned)
            if stopping:
                return

    def _failed(self, exc: OSError, batch: list[tuple[Entry, Done]]) -> None:
        """Fail the batch's records; the chain is back at the last record on disk (`_commit` restored it)."""
        self.failures += 1
        message = f"write failed: {exc.strerror or exc} ({exc.filename or self._segment_path()})"
        if self.error is None:
            log.error("audit log: %s; requests are refused until it can be written again", message)
        with self._cond:
            self.error = message
        self._release_riders()  # while this log cannot be written, the riders commit on their own
        failure = AuditUnavailable(message)
        for _, done in batch:
            done(None, failure)

    def _recover(self) -> bool:
        """After a failure: wait a little, then write a checkpoint into a new segment. True once on disk."""
        with self._cond:
            if not self._stopping:
                self._cond.wait(self._retry_s)
        try:
            self._drop_fd()
            self._new_segment(self._tail.segment + 1, reuse=True)
            self._commit([], force_checkpoint=True)
        except OSError as exc:
            self.failures += 1
            self._retry_s = min(RETRY_MAX_S, self._retry_s * 2)
            with self._cond:
                self.error = f"write failed: {exc.strerror or exc} ({exc.filename or self._segment_path()})"
            return False
        log.warning("audit log: written again (segment %s); requests are accepted", self._segment_path().name)
        self._retry_s = RETRY_S
        with self._cond:
            self.error = None
        return True

    def _fail_pending(self) -> None:
        with self._cond:
            pending, self._queue = self._queue, []
        failure = AuditUnavailable(self.error or "the audit writer stopped")
        for _, done in pending:
            done(None, failure)

    def _drop_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _take(self) -> tuple[list[tuple[Entry, Done]], bool]:
        """Wait for records (or a due checkpoint, or shutdown); return everything queued."""
        with self._cond:
            while not self._queue and not self._stopping and not self._riders_pending():
                wait = self._checkpoint_wait()
                if wait is not None and wait <= 0:
                    break
                self._waiting = True  # appenders wake the thread only while it waits
                self._cond.wait(wait)
                self._waiting = False
        if self._delay and not self._stopping:
            time.sleep(self._delay)  # group-commit delay: let more records join this batch
        with self._cond:
            batch, self._queue = self._queue, []
            return batch, self._stopping

    def _checkpoint_wait(self) -> float | None:
        if self._tail.records_since_checkpoint == 0:
            return None
        return self._every_s - (time.monotonic() - self._last_cp)

    def _commit(
        self,
        batch: list[tuple[Entry, Done]],
        *,
        seal: bool = False,
        force_checkpoint: bool = False,
        carried: list[Carried] | None = None,
    ) -> None:
        """Chain the batch, write it, fsync; on an OSError before the fsync returned, the chain and the segment
        are put back as they were (and the error raised). `carried`: the riders' written batches, fsynced
        beside this one and finished (their futures) once this batch is on disk and before its own futures
        complete, so that a request waiting for both resumes once, with both done."""
        tail = self._tail
        saved = dataclasses.replace(tail), self._last_cp, self._fd
        try:
            acked, manifest = self._write(batch, seal, force_checkpoint, carried)
        except OSError:
            self._tail, self._last_cp = saved[0], saved[1]
            self._truncate(saved[2], saved[0].size)
            raise
        self.records_written += len(acked)
        if carried:
            _finish_all(carried)
        acknowledge(acked)
        if manifest is not None:
            try:
                write_json_atomic(
                    self._stream_dir / MANIFEST, {"format": chain.FORMAT, "stream": self.stream, **manifest}
                )
            except OSError as exc:  # an index of the latest checkpoint: the next checkpoint writes it again
                log.warning("audit log: the manifest of %s was not updated (%s)", self.stream, exc.strerror or exc)

    def _truncate(self, fd: int | None, size: int) -> None:
        """Cut a partly written batch off the segment; if that fails too, the next write starts a new one."""
        if fd is not None and fd == self._fd:
            try:
                os.ftruncate(fd, size)
                return
            except OSError:
                pass
        self._drop_fd()

    def _write(
        self, batch: list[tuple[Entry, Done]], seal: bool, force_checkpoint: bool, carried: list[Carried] | None
    ) -> tuple[list[tuple[Done, Appended]], dict[str, Any] | None]:
        tail = self._tail
        buf = bytearray()
        manifest: dict[str, Any] | None = None
        now_day = _today()
        if tail.size >= self._max_bytes or now_day != tail.day:
            self._new_segment(tail.segment + 1)
            if tail.seq:
                manifest = self._checkpoint(buf, sealed=False)
        acked: list[tuple[Done, Appended]] = []
        for entry, done in batch:
            try:
                record = entry() if callable(entry) else dict(entry)
                if "type" not in record:
                    raise ValueError("an audit record needs a `type`")
                buf += self._chain(record)
            except Exception as exc:  # not built, or not JSON-serialisable: refused before it touched the chain
                done(None, exc)
                continue
            acked.append((done, Appended(self.stream, tail.seq, tail.head)))
            if tail.records_since_checkpoint >= self._every_n:
                manifest = self._checkpoint(buf, sealed=False)
        due = time.monotonic() - self._last_cp >= self._every_s
        if seal or force_checkpoint or (due and tail.records_since_checkpoint):
            manifest = self._checkpoint(buf, sealed=seal)
        if buf:
            if self._fd is None:  # the last failure dropped the segment: the chain goes on in a new one
                self._new_segment(tail.segment + 1, reuse=True)
            assert self._fd is not None
            view = memoryview(buf)
            while view:
                view = view[os.write(self._fd, view) :]
            if carried:  # the riders' fsyncs beside this one: the disk flushes its cache once for both
                self._beside.start([c.sync for c in carried])
            try:
                os.fdatasync(self._fd)
            finally:
                self._beside.wait()
            tail.size += len(buf)
            self.batches_written += 1
        return acked, manifest

    def _chain(self, record: dict[str, Any]) -> bytes:
        tail = self._tail
        record.pop("entry_hash", None)
        if "time" not in record:
            record["time"] = chain.iso(time.time())
        record["stream"] = self.stream
        record["seq"] = tail.seq + 1
        record["prev_hash"] = tail.head
        line = _hashed_line(tail.head, record)
        tail.seq, tail.head = record["seq"], record["entry_hash"]
        self._covered.append(chain.cover(tail.head))
        if record["type"] == chain.CHECKPOINT:
            tail.records_since_checkpoint = 0
        else:
            tail.records_since_checkpoint += 1
        return line + b"\n"

    def _checkpoint(self, buf: bytearray, *, sealed: bool) -> dict[str, Any]:
        tail = self._tail
        keys = self.keys
        now = chain.iso(time.time())
        counter = tail.counter + 1
        covers, self._covered = self._covered, []  # lets verify name the first record of a rewritten chain
        payload = chain.signed_payload(
            stream=self.stream,
            seq=tail.seq + 1,
            head_hash=tail.head,
            counter=counter,
            time=now,
            sealed=sealed,
            covers=chain.covers_digest(covers),
        )
        cp = {"counter": counter, "head_hash": tail.head, "sealed": sealed, "key_id": keys.signing_id}
        record = {"type": chain.CHECKPOINT, "time": now, "checkpoint": {**cp, "covers": covers}}
        record["signature"] = chain.b64(keys.signing.sign(payload))
        offset = tail.size + len(buf)
        buf += self._chain(record)
        tail.counter = counter
        self._last_cp = time.monotonic()
        where = {
            "seq": tail.seq,
            "entry_hash": tail.head,
            "time": now,
            "segment": tail.segment,
            "offset": offset,
        }
        digest = chain.covers_digest(covers)
        return {"checkpoint": {**cp, **where, "covers": digest, "signature": record["signature"]}}

    # -- segments ----------------------------------------------------------------------------------

    def _segment_path(self, index: int | None = None) -> Path:
        return self._stream_dir / segment_name(self._tail.segment if index is None else index)

    def _new_segment(self, index: int, *, reuse: bool = False) -> None:
        """Start segment `index`. `reuse`: after a failure, a file of that index holds only bytes of the
        failed batch (the chain was rolled back before it), so it is emptied and written again."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if reuse else os.O_EXCL)
        fd = os.open(self._segment_path(index), flags, 0o640)
        fsync_dir(self._stream_dir)
        self._swap_fd(fd, index, 0)

    def _open_segment(self, index: int, size: int) -> None:
        fd = os.open(self._segment_path(index), os.O_WRONLY | os.O_APPEND)
        self._swap_fd(fd, index, size)

    def _swap_fd(self, fd: int, index: int, size: int) -> None:
        self._drop_fd()
        self._fd = fd
        self._tail.segment, self._tail.size, self._tail.day = index, size, _today()


#: stands in for a record's entry hash while it is serialised: random per process, so it occurs in no record
_SLOT = secrets.token_hex(32)
_SLOT_BYTES = _SLOT.encode("ascii")
_MEMBER = b'"entry_hash":"' + _SLOT_BYTES + b'"'
_SLOT_LEN = len(_SLOT_BYTES)
#: from the member's first byte to its value's
_SLOT_AT = len(_MEMBER) - _SLOT_LEN - 1


def _hashed_line(prev_hash: str, record: dict[str, Any]) -> bytes:
    """Set `record["entry_hash"]` (`chain.entry_hash` of the record without it) and return the record's
    canonical line, serialising it once rather than twice: the line is made with a placeholder hash, the
    hashed body is that line without the `entry_hash` member (keys sorted, no whitespace: removing one
    member of the object leaves the canonical form of the rest), and the hash then takes the placeholder's
    place (same length). Should the placeholder not occur exactly once, the record is serialised twice.
    The body is hashed as the two pieces of the line around the member, and the hash put in by offset: no
    copy of the body and no third pass over the line (the digest is `chain.hash_line` of the joined body)."""
    record["entry_hash"] = _SLOT
    line = chain.canonical(record)
    slot = line.find(_SLOT_BYTES)  # one pass: the placeholder must be the member's value, and occur once
    at = slot - _SLOT_AT
    stop = slot + _SLOT_LEN
    if at < 0 or line[at : stop + 1] != _MEMBER or line.find(_SLOT_BYTES, slot + 1) >= 0:
        del record["entry_hash"]
        record["entry_hash"] = chain.entry_hash(prev_hash, record)
        return chain.canonical(record)
    end = stop + 1
    view = memoryview(line)
    h = hashlib.sha256(prev_hash.encode("ascii"))
    # without the member and the comma after it (a member follows: "type" always does), else the one before it
    if line[end : end + 1] == b",":
        h.update(view[:at])
        h.update(view[end + 1 :])
    else:
        h.update(view[: at - 1])
        h.update(view[end:])
    digest = h.hexdigest()
    record["entry_hash"] = digest
    return line[:slot] + digest.encode("ascii") + line[stop:]


def _finish_all(carried: list[Carried]) -> None:
    """Finish and remove each; a failing one does not keep the others from finishing."""
    while carried:
        batch = carried.pop(0)
        try:
            batch.finish()
        except Exception:
            log.exception("audit log: a log riding with the audit writer failed to complete its batch")


def _today() -> str:
    """Today's UTC date (formatted once per day: the commit thread asks for it with every batch)."""
    global _day
    day = int(time.time() // 86_400)
    if _day[0] != day:
        _day = (day, time.strftime("%Y-%m-%d", time.gmtime(day * 86_400)))
    return _day[1]


_day: tuple[int, str] = (-1, "")
