"""The audit writer: one hash-chained stream, appended with group commit.

`await writer.append(record)` returns once the record is written and fsynced. A dedicated thread takes
every record queued while the previous write+fsync ran and commits them as one batch (one `write`, one
`fdatasync`), so that N concurrent requests share one fsync. Every `checkpoint_every_records` records or
`checkpoint_every_s` seconds the thread adds a signed checkpoint; `close()` adds a sealing one. When a
write fails (disk full, permissions) the writer turns unhealthy for good: every pending and later append
raises `AuditUnavailable`, and the gateway refuses requests rather than serving them unrecorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owstack import __version__
from owstack.compliance import chain
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

MAX_STREAMS = 256


class AuditUnavailable(Exception):
    """The audit log cannot be written; the message says why."""


@dataclass(frozen=True, slots=True)
class Appended:
    stream: str
    seq: int
    entry_hash: str


Done = Callable[[Appended | None, BaseException | None], None]


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
        self._queue: list[tuple[dict[str, Any], Done]] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._stream_dir = Path()
        self._tail = Tail()
        self._covered: list[str] = []  # chain.cover() of each record since the last checkpoint
        self._last_cp = time.monotonic()
        self.error: str | None = None
        self.records_written = 0
        self.batches_written = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self.error is None and self._thread is not None and self._thread.is_alive()

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
        self._thread.start()
        return self

    def close(self) -> None:
        """Seal the stream with a final checkpoint and release it (idempotent)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            with self._cond:
                self._stopping = True
                self._cond.notify()
            thread.join()
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
        self._commit([(r, _ignore) for r in opening], force_checkpoint=True)

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
            self._cond.notify()

    async def append(self, record: dict[str, Any]) -> Appended:
        """Append one record; returns once it is on disk (fsynced). Raises `AuditUnavailable`."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Appended] = loop.create_future()
        self._enqueue(record, _AsyncDone(loop, fut))
        return await fut

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
        while True:
            batch, stopping = self._take()
            try:
                self._commit(batch, seal=stopping)
            except OSError as exc:
                self._fail(f"write failed: {exc.strerror or exc} ({self._segment_path()})", batch)
                return
            if stopping:
                return

    def _take(self) -> tuple[list[tuple[dict[str, Any], Done]], bool]:
        """Wait for records (or a due checkpoint, or shutdown); return everything queued."""
        with self._cond:
            while not self._queue and not self._stopping:
                wait = self._checkpoint_wait()
                if wait is not None and wait <= 0:
                    break
                self._cond.wait(wait)
        if self._delay and not self._stopping:
            time.sleep(self._delay)  # group-commit delay: let more records join this batch
        with self._cond:
            batch, self._queue = self._queue, []
            return batch, self._stopping

    def _checkpoint_wait(self) -> float | None:
        if self._tail.records_since_checkpoint == 0:
            return None
        return self._every_s - (time.monotonic() - self._last_cp)

    def _fail(self, message: str, batch: list[tuple[dict[str, Any], Done]]) -> None:
        with self._cond:
            self.error = message
            pending, self._queue = self._queue, []
        exc = AuditUnavailable(message)
        for _, done in batch + pending:
            done(None, exc)

    def _commit(
        self, batch: list[tuple[dict[str, Any], Done]], *, seal: bool = False, force_checkpoint: bool = False
    ) -> None:
        tail = self._tail
        buf = bytearray()
        manifest: dict[str, Any] | None = None
        now_day = _today()
        if tail.size >= self._max_bytes or now_day != tail.day:
            self._new_segment(tail.segment + 1)
            if tail.seq:
                manifest = self._checkpoint(buf, sealed=False)
        acked: list[tuple[Done, Appended]] = []
        for record, done in batch:
            try:
                buf += self._chain(dict(record))
            except (
                TypeError,
                ValueError,
            ) as exc:  # not JSON-serialisable: refused before it touched the chain
                done(None, exc)
                continue
            acked.append((done, Appended(self.stream, tail.seq, tail.head)))
            if tail.records_since_checkpoint >= self._every_n:
                manifest = self._checkpoint(buf, sealed=False)
        due = time.monotonic() - self._last_cp >= self._every_s
        if seal or force_checkpoint or (due and tail.records_since_checkpoint):
            manifest = self._checkpoint(buf, sealed=seal)
        if buf:
            assert self._fd is not None
            view = memoryview(buf)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
            tail.size += len(buf)
            self.batches_written += 1
        self.records_written += len(acked)
        _acknowledge(acked)
        if manifest is not None:
            write_json_atomic(self._stream_dir / MANIFEST, {"format": chain.FORMAT, "stream": self.stream, **manifest})

    def _chain(self, record: dict[str, Any]) -> bytes:
        tail = self._tail
        record.pop("entry_hash", None)
        record.setdefault("time", chain.iso(time.time()))
        record["stream"] = self.stream
        record["seq"] = tail.seq + 1
        record["prev_hash"] = tail.head
        record["entry_hash"] = chain.entry_hash(tail.head, record)
        tail.seq, tail.head = record["seq"], record["entry_hash"]
        self._covered.append(chain.cover(tail.head))
        if record["type"] == chain.CHECKPOINT:
            tail.records_since_checkpoint = 0
        else:
            tail.records_since_checkpoint += 1
        return chain.canonical(record) + b"\n"

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

    def _new_segment(self, index: int) -> None:
        fd = os.open(self._segment_path(index), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        fsync_dir(self._stream_dir)
        self._swap_fd(fd, index, 0)

    def _open_segment(self, index: int, size: int) -> None:
        fd = os.open(self._segment_path(index), os.O_WRONLY | os.O_APPEND)
        self._swap_fd(fd, index, size)

    def _swap_fd(self, fd: int, index: int, size: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._tail.segment, self._tail.size, self._tail.day = index, size, _today()


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def _ignore(result: Appended | None, exc: BaseException | None) -> None:
    return None


class _AsyncDone:
    """Completes an asyncio future from the commit thread (batched: one loop wake-up per commit)."""

    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Appended]) -> None:
        self.loop, self.fut = loop, fut

    def __call__(self, result: Appended | None, exc: BaseException | None) -> None:
        _call_in(self.loop, _settle_all, [(self.fut, result, exc)])


def _call_in(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], arg: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, arg)
    except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
        pass


def _acknowledge(acked: list[tuple[Done, Appended]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Appended], Appended, None]]] = {}
    for done, result in acked:
        if isinstance(done, _AsyncDone):
            by_loop.setdefault(done.loop, []).append((done.fut, result, None))
        else:
            done(result, None)
    for loop, items in by_loop.items():
        _call_in(loop, _settle_all, items)


def _settle_all(items: list[tuple[asyncio.Future[Appended], Appended | None, BaseException | None]]) -> None:
    for fut, result, exc in items:
        if fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            assert result is not None
            fut.set_result(result)
