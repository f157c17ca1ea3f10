"""Where the ledger writer's batches go: the ledger process (the default) or the writer's own thread.

    sink = make_sink(url)              # ProcessSink(url), or InlineSink(url) with process=False
    sink.write(rows)                   # accepted for good, or SinkError(reason, outage=...)
    sink.settle()                      # everything accepted is now in ledger_rows (flush)
    sink.take_rejected()               # rows the database refused since the last call (logged already)
    sink.close()

`ProcessSink`: the rows go to the ledger process (`python -m owstack.metering.ledger_process`), which
journals each batch with one INSERT (`journal.append`) and moves journaled batches into `ledger_rows` when
the CPUs it runs on have time to spare, while the journal holds more than `journal_max_rows` rows (one
batch out per batch in), on `settle`, and when the gateway stops. The gateway's process only prices the
records and encodes each batch (`journal.encode`); the SQL that costs (docs/metering.md, "The journal")
runs in another process, and while the gateway saturates its core it waits. `InlineSink`
(`metering.writer: thread`) writes the rows straight into `ledger_rows` on the writer's thread.

The protocol, over the child's stdin and stdout: each message is a 4-byte little-endian length, a kind byte
and a body. The parent sends the settings first (JSON, with the storage URL: not on the command line, where
`ps` would show its password), then `A` (a 4-byte row count and the batch's payload, stored as it comes) or
`S` (settle); the child answers each with `["ok", {"rejected": n, "journal": rows}]`, or `["outage" |
"refused", reason]`, in JSON. It exits when its stdin closes (the gateway stopped, however it stopped) and
ignores SIGINT and SIGTERM (the gateway decides when the ledger is flushed). When the child dies mid-batch
the batch counts as an outage and is sent again to a new child: rows have unique ids, so a batch that was
journaled twice is recorded once. An in-memory SQLite database exists in one process only: it is always
written inline.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any

import orjson

from owstack.metering import journal
from owstack.metering.ledger import Dims

log = logging.getLogger(__name__)

HEADER = struct.Struct("<IB")
COUNT = struct.Struct("<I")
SETTINGS, APPEND, SETTLE, ANSWER = b"CASR"


class SinkError(Exception):
    """A batch was not written. `outage`: the database (or the ledger process) is unavailable, keep the rows
    and retry; otherwise the database refused a row of the batch (a constraint, a value it cannot hold)."""

    def __init__(self, reason: str, *, outage: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outage = outage


class InlineSink:
    """Writes on the calling thread through one kept connection (no pool checkout, ping or reset per batch;
    dropped after any error, so that the next batch starts on a fresh one)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dims = Dims()
        self._conn: Any = None

    def write(self, rows: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        """Write `rows` in one transaction; return the dims it interned (already in `self.dims`)."""
        from owstack.metering.ledger import write_values
        from owstack.storage import error_reason, is_outage

        try:
            return write_values(self.connection(), rows, self.dims)
        except Exception as exc:
            self.close()
            raise SinkError(error_reason(exc), outage=is_outage(exc)) from exc

    def connection(self) -> Any:
        """The kept connection (opened on first use, and again after `close`)."""
        if self._conn is None:
            from owstack.storage import engine

            self._conn = engine(self.url).connect()
        return self._conn

    def settle(self) -> None:
        """Nothing to do: every batch went straight into the ledger."""

    def take_rejected(self) -> int:
        return 0  # refused rows raise SinkError(outage=False) from `write`; the writer isolates them

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # not back into the pool: after a failure its state is unknown
                conn.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                log.debug("ledger: closing a failed connection", exc_info=True)


class ProcessSink:
    """Journals batches through the ledger process (started on the first batch, restarted after it dies)."""

    #: seconds `close` waits for the child to exit (it moves journaled batches for up to EXIT_MOVE_S first)
    EXIT_TIMEOUT_S = 10.0

    def __init__(self, url: str, *, journal_max_rows: int = 200_000, journal_spare_cpu: float = 0.25) -> None:
        self.url = url
        self.journal_max_rows = journal_max_rows
        self.journal_spare_cpu = journal_spare_cpu
        self.dims = Dims()  # never filled: the rows carry their dims' keys; the child interns them as they move
        #: rows journaled and not yet moved into ledger_rows, as of the child's last answer
        self.journal_rows = 0
        self._rejected = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._ask(APPEND, COUNT.pack(len(rows)) + journal.encode(rows))

    def settle(self) -> None:
        """Return once every batch journaled so far is in ledger_rows (or raise SinkError)."""
        self._ask(SETTLE, b"")

    def take_rejected(self) -> int:
        """Rows the database refused as their batches moved, since the last call (the child logged them)."""
        n, self._rejected = self._rejected, 0
        return n

    def _ask(self, kind: int, body: bytes) -> None:
        try:
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._spawn()
            assert proc.stdin is not None and proc.stdout is not None
            send(proc.stdin, kind, body)
            answer = orjson.loads(receive(proc.stdout)[1])
        except (OSError, EOFError, ValueError) as exc:
            self._kill()
            raise SinkError(f"the ledger process exited ({type(exc).__name__})", outage=True) from exc
        status, detail = answer
        if status == "ok":
            self._rejected += detail["rejected"]
            self.journal_rows = detail["journal"]
            return
        raise SinkError(str(detail), outage=status == "outage")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # end of input: the child moves what it can, closes its connection, exits
            proc.wait(self.EXIT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._kill()
        proc = subprocess.Popen(
            [sys.executable, "-m", "owstack.metering.ledger_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._proc = proc
        assert proc.stdin is not None
        settings = {"url": self.url, "max_rows": self.journal_max_rows, "spare_cpu": self.journal_spare_cpu}
        send(proc.stdin, SETTINGS, orjson.dumps(settings))  # buffered by the pipe until the child reads it
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:  # the child is gone: a broken pipe cannot be flushed
                        pass


def make_sink(
    url: str, *, process: bool = True, journal_max_rows: int = 200_000, journal_spare_cpu: float = 0.25
) -> InlineSink | ProcessSink:
    """A `ProcessSink`, or an `InlineSink` when asked or when the database is an in-memory SQLite one (it
    exists in this process only)."""
    from owstack.storage import in_memory

    if process and not in_memory(url):
        return ProcessSink(url, journal_max_rows=journal_max_rows, journal_spare_cpu=journal_spare_cpu)
    return InlineSink(url)


def send(out: IO[bytes], kind: int, body: bytes) -> None:
    out.write(HEADER.pack(len(body), kind))
    out.write(body)
    out.flush()


def receive(inp: IO[bytes]) -> tuple[int, bytes]:
    """One message: (kind, body). `inp` may be unbuffered (the ledger process reads its stdin raw, so that
    select() sees every byte not yet read): short reads are read on."""
    size, kind = HEADER.unpack(_read_exactly(inp, HEADER.size))
    return kind, _read_exactly(inp, size)


def _read_exactly(inp: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = inp.read(left)
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
