"""Where the ledger writer's batches go: the SQL, in a child process (the default) or on the writer's thread.

    sink = make_sink(url)              # ProcessSink(url), or InlineSink(url) with process=False
    sink.write(rows)                   # one all-or-nothing transaction; raises SinkError(reason, outage=...)
    sink.dims.ids                      # the ledger_dims ids known so far (the writer puts them in its rows)
    sink.close()

Why a process: the SQL was most of the writer's work, and on its thread it runs inside the gateway's process,
under its interpreter lock. Here the gateway's side of metering stops at pricing the records and making the
rows (plain tuples, `record.row_values`); the child (`python -m owstack.metering.sink`) binds and writes them
off that lock, and in parallel wherever the gateway has a core to spare. It does not make the work smaller:
on one shared core the total is the same (docs/metering.md, "Third pass").

The protocol, over the child's stdin and stdout: each message is a 4-byte little-endian length and a pickle.
The parent sends the storage URL first (not on the command line, where `ps` would show its password), then
a list of rows per batch; the child answers ("ok", {dims key: id interned by that batch}) once the
transaction has committed, or ("outage" | "refused", reason). The child writes one batch at a time, exits
when its stdin closes (the gateway stopped, however it stopped) and ignores SIGINT and SIGTERM (the gateway
decides when the ledger is flushed). When the child dies mid-batch, the batch counts as an outage and is
sent again to a new child: inserts are idempotent (each row has its id), so a batch that had committed is
not recorded twice. An in-memory SQLite database exists in one process only: it is always written inline.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any

from owstack.metering.ledger import Dims

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<I")


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
        from owstack.storage import engine, error_reason, is_outage

        try:
            if self._conn is None:
                self._conn = engine(self.url).connect()
            return write_values(self._conn, rows, self.dims)
        except Exception as exc:
            self.close()
            raise SinkError(error_reason(exc), outage=is_outage(exc)) from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # not back into the pool: after a failure its state is unknown
                conn.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                log.debug("ledger: closing a failed connection", exc_info=True)


class ProcessSink:
    """Writes through a child process (started on the first batch, restarted after it dies)."""

    #: seconds `close` waits for the child to finish its batch and exit before killing it
    EXIT_TIMEOUT_S = 10.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.dims = Dims()  # filled from the child's answers
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def write(self, rows: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        try:
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._spawn()
            assert proc.stdin is not None and proc.stdout is not None
            _send(proc.stdin, rows)
            answer = _receive(proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._kill()
            raise SinkError(f"the ledger process exited ({type(exc).__name__})", outage=True) from exc
        kind, detail = answer
        if kind == "ok":
            self.dims.remember(detail)
            return detail
        raise SinkError(str(detail), outage=kind == "outage")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # end of input: the child closes its connection and exits
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
            [sys.executable, "-m", "owstack.metering.sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._proc = proc
        assert proc.stdin is not None
        _send(proc.stdin, self.url)  # buffered by the pipe: the child reads it once it has started
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


def make_sink(url: str, *, process: bool = True) -> InlineSink | ProcessSink:
    """A `ProcessSink`, or an `InlineSink` when asked or when the database is an in-memory SQLite one (it
    exists in this process only)."""
    from owstack.storage import in_memory

    return ProcessSink(url) if process and not in_memory(url) else InlineSink(url)


def _send(out: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)))
    out.write(data)
    out.flush()


def _receive(inp: IO[bytes]) -> Any:
    header = inp.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other end closed the pipe")
    (size,) = _HEADER.unpack(header)
    data = inp.read(size)
    if len(data) < size:
        raise EOFError("the other end closed the pipe mid-message")
    return pickle.loads(data)


def main() -> int:
    """The child: read the storage URL, then write each batch from stdin and answer on stdout, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answers
    requests = sys.stdin.buffer
    try:
        url = _receive(requests)
    except EOFError:
        return 0
    sink = InlineSink(url)
    try:
        while True:
            try:
                rows = _receive(requests)
            except EOFError:
                return 0
            try:
                answer: tuple[str, Any] = ("ok", sink.write(rows))
            except SinkError as exc:
                answer = ("outage" if exc.outage else "refused", exc.reason)
            _send(answers, answer)
    finally:
        sink.close()


if __name__ == "__main__":
    sys.exit(main())
