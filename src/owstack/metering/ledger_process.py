"""The ledger process: `python -m owstack.metering.ledger_process`, a child of the gateway (`sink.ProcessSink`).

It journals each batch the gateway sends with one INSERT (`journal.append`) and answers at once; it moves
journaled batches into `ledger_rows` (`journal.expand`, one batch at a time, reading its input between
two) when:

* the CPUs it may run on had at least `spare_cpu` of their time to spare (idle, or running this process)
  over the last `WINDOW_S`: the gateway is not saturating them, so the move costs its requests nothing;
* the journal holds more than `max_rows` rows: then one batch out for each batch in, whatever the load (a
  saturation longer than that pays the full cost, as if there were no journal);
* the gateway asks (`settle`: a flush), and when its input closes (the gateway stopped), for up to
  `EXIT_MOVE_S`; whatever is left stays journaled for the next ledger process or reader.

Spare time (`Spare`): idle time of the CPUs in the process's affinity mask (/proc/stat), its own CPU time
counting as spare, and, under a cgroup CPU limit (a container's `resources.limits.cpu`), the part of the
limit nobody else used; the smaller of the two. Where neither can be read, "spare" means that no batch
arrived during the window.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from owstack.metering import journal
from owstack.metering.ledger import Dims
from owstack.metering.sink import ANSWER, APPEND, COUNT, SETTLE, InlineSink, receive, send

log = logging.getLogger("owstack.metering.ledger")

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_STAT = Path("/proc/stat")


def cgroup_quota(root: Path = CGROUP_ROOT) -> tuple[float, Path, float] | None:
    """This process's cgroup CPU limit (Kubernetes `resources.limits.cpu`): (CPUs, the file of its usage,
    the unit of that usage in seconds); None without a limit. cgroup v2 (`cpu.max`) or v1 (CFS quota)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path.lstrip("/")
    for where in (paths.get(""), ""):  # v2: the process's own cgroup, or the namespace's root
        if where is None:
            continue
        limit = root / where / "cpu.max"
        try:
            quota, period = limit.read_text().split()[:2]
        except (OSError, ValueError):
            continue
        return None if quota == "max" else (int(quota) / int(period), root / where / "cpu.stat", 1e-6)
    for where in (paths.get("cpu"), ""):  # v1
        if where is None:
            continue
        try:
            quota_us = int((root / "cpu" / where / "cpu.cfs_quota_us").read_text())
            period_us = int((root / "cpu" / where / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota_us <= 0:
            return None
        return quota_us / period_us, root / "cpuacct" / (paths.get("cpuacct") or where) / "cpuacct.usage", 1e-9
    return None


class Spare:
    """The share of this process's CPU capacity that was idle (or running this process) since the last call:
    the CPUs of its affinity mask, from /proc/stat, and, under a cgroup CPU limit (a container's), the limit's
    unused part; the smaller of the two."""

    def __init__(
        self,
        cgroup_root: Path = CGROUP_ROOT,
        *,
        proc_stat: Path = PROC_STAT,
        cpus: set[int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        own_seconds: Callable[[], float] | None = None,
    ) -> None:
        """Every input is a parameter (the files, the CPUs, the clock, this process's CPU time), so that the
        arithmetic can be checked against files written by a test rather than against the host's load."""
        if cpus is None:
            try:
                cpus = set(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                cpus = set()
        self.cpus = {f"cpu{n}" for n in cpus}
        self.tick = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        self.proc_stat = proc_stat
        self.clock = clock
        self.own_seconds = own_seconds if own_seconds is not None else _own_seconds
        self.quota = cgroup_quota(cgroup_root)
        self._host = self._read_host()
        self._limit = self._read_limit()

    def _read_host(self) -> tuple[float, float] | None:
        """(total, spare) CPU seconds of this process's CPUs so far; None without /proc/stat."""
        try:
            lines = self.proc_stat.read_bytes().decode().splitlines()
        except OSError:
            return None
        total = idle = 0
        for line in lines:
            name, _, rest = line.partition(" ")
            if name in self.cpus:
                values = [int(v) for v in rest.split()[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(values)
                idle += values[3] + values[4]
        return (total * self.tick, idle * self.tick + self.own_seconds()) if total else None

    def _read_limit(self) -> tuple[float, float] | None:
        """(capacity, used by others) CPU seconds so far under the cgroup limit; None without one."""
        if self.quota is None:
            return None
        cpus, usage_file, unit = self.quota
        try:
            text = usage_file.read_text()
        except OSError:
            return None
        used = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("usage_usec ")), None)
        if used is None:
            try:
                used = int(text.split()[0])
            except (ValueError, IndexError):
                return None
        return cpus * self.clock(), used * unit - self.own_seconds()

    def share(self) -> float | None:
        """Spare share in [0, 1] since the last call; None when it cannot be measured."""
        shares = []
        host, self._host = self._host, self._read_host()
        if host is not None and self._host is not None and self._host[0] > host[0]:
            shares.append((self._host[1] - host[1]) / (self._host[0] - host[0]))
        limit, self._limit = self._limit, self._read_limit()
        if limit is not None and self._limit is not None and self._limit[0] > limit[0]:
            shares.append(1.0 - (self._limit[1] - limit[1]) / (self._limit[0] - limit[0]))
        return min(1.0, max(0.0, min(shares))) if shares else None


def _own_seconds() -> float:
    """This process's CPU time so far (user + system)."""
    t = os.times()
    return t[0] + t[1]


class Ledger:
    """The process's state: one kept connection, the dims cache, the journal's size, the outage backoff."""

    #: seconds over which spare CPU is measured (and the move decision holds)
    WINDOW_S = 0.25
    #: seconds the process keeps moving journaled batches after its input closed
    EXIT_MOVE_S = 5.0
    RETRY_MAX_S = 30.0

    def __init__(
        self,
        url: str,
        max_rows: int,
        spare_cpu: float,
        *,
        spare: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`spare`: the spare share since its last call (`Spare().share`); `clock`: monotonic seconds. Both
        are parameters so that the policy can be tested with a scripted load instead of the host's."""
        self.url = url
        self.max_rows = max_rows
        self.spare_cpu = spare_cpu
        self.dims = Dims()
        self.journal_rows = 0
        self.rejected = 0
        self.spare = spare if spare is not None else Spare(clock=clock).share
        self.clock = clock
        self._moving = False
        self._input_in_window = False
        self._window_end = clock() + self.WINDOW_S
        self._sink = InlineSink(url)  # its kept connection
        self._retry_at = 0.0
        self._backoff = 0.0
        try:  # batches left by an earlier process (killed, or stopped with more than it could move)
            conn = self._connection()
            self.journal_rows = journal.pending(conn)[1]
            conn.rollback()
        except Exception as exc:
            self._failed(exc, "reading the journal")

    def _connection(self) -> Any:
        return self._sink.connection()

    def _failed(self, exc: Exception, doing: str) -> None:
        from owstack.storage import error_reason, safe_url

        self.close()
        if self._backoff == 0.0:
            log.warning("ledger: %s at %s failed (%s); retrying", doing, safe_url(self.url), error_reason(exc))
        self._backoff = min(self.RETRY_MAX_S, max(0.1, self._backoff * 2))
        self._retry_at = self.clock() + self._backoff

    def wait_s(self) -> float | None:
        """How long to wait for input before moving a batch: None (nothing journaled: until input), 0 (move
        one now), or the seconds until the next decision."""
        if self.journal_rows <= 0:
            return None
        now = self.clock()
        if now < self._retry_at:
            return self._retry_at - now
        if self.journal_rows > self.max_rows:
            return 0.0
        if now >= self._window_end:
            share = self.spare()
            spare = (not self._input_in_window) if share is None else share >= self.spare_cpu
            self._moving, self._input_in_window = spare, False
            self._window_end = now + self.WINDOW_S
        return 0.0 if self._moving else self._window_end - now

    def move(self, max_batches: int | None = 1) -> bool:
        """Move journaled batches into ledger_rows; False on an outage."""
        try:
            moved = journal.expand(self._connection(), self.dims, max_batches=max_batches)
        except Exception as exc:
            self._failed(exc, "moving journaled records into the ledger")
            return False
        self._backoff = 0.0
        self.rejected += moved.rejected
        # nothing left to move, or everything moved: empty (another process may have moved batches too)
        empty = moved.batches == 0 or max_batches is None
        self.journal_rows = 0 if empty else max(0, self.journal_rows - moved.rows)
        return True

    def handle(self, kind: int, body: bytes) -> list[Any]:
        from owstack.storage import error_reason, is_outage

        self._input_in_window = True
        if kind == APPEND:
            if self.journal_rows <= 0:  # the first batch after a quiet spell: measure a fresh window
                self.spare()
                self._moving, self._window_end = False, self.clock() + self.WINDOW_S
            (count,) = COUNT.unpack_from(body)
            try:
                journal.append(self._connection(), body[COUNT.size :], count)
            except Exception as exc:
                outage = is_outage(exc)
                self.close()
                return ["outage" if outage else "refused", error_reason(exc)]
            self.journal_rows += count
        elif kind == SETTLE:
            if not self.move(None):
                return ["outage", "the ledger's database is unavailable"]
        else:
            return ["refused", f"unknown message {kind!r}"]
        rejected, self.rejected = self.rejected, 0
        return ["ok", {"rejected": rejected, "journal": self.journal_rows}]

    def finish(self) -> None:
        """Input closed: move what can be moved in EXIT_MOVE_S (the rest stays journaled), then close."""
        deadline = self.clock() + self.EXIT_MOVE_S
        while self.journal_rows > 0 and self.clock() < deadline and self.move():
            pass
        self.close()

    def close(self) -> None:
        self._sink.close()


def main() -> int:
    """Read the settings, then journal each batch and answer, moving batches when it may; exit at EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when the ledger is flushed
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answers
    with open(sys.stdin.fileno(), "rb", buffering=0, closefd=False) as requests:  # raw: select() sees every byte
        return _serve(requests, answers)


def _serve(requests: BinaryIO, answers: BinaryIO) -> int:
    """Read the settings, then answer each message until EOF."""
    try:
        _, body = receive(requests)
    except EOFError:
        return 0
    settings = orjson.loads(body)
    ledger = Ledger(settings["url"], int(settings["max_rows"]), float(settings["spare_cpu"]))
    try:
        while True:
            timeout = ledger.wait_s()
            if timeout == 0.0:
                ledger.move()  # then serve at most one message: over the limit, one batch out per batch in
            if not select.select([requests], [], [], timeout)[0]:
                continue
            try:
                kind, body = receive(requests)
            except EOFError:
                break
            try:
                send(answers, ANSWER, orjson.dumps(ledger.handle(kind, body)))
            except BrokenPipeError:  # the gateway died (kill -9) after sending: its batch is journaled; no traceback
                log.warning("ledger process: the gateway is gone; moving what is journaled, then exiting")
                with contextlib.suppress(OSError):
                    answers.close()  # its unsent answer is dropped here, not flushed (and failing) at exit
                break
    finally:
        ledger.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
