"""Processes under test: start (pinned to a core), wait until ready, resident memory, stop.

Each server runs in its own session (process group) so that stopping it ends its children too, and only
them: the group id is the pid this module started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def say(line: str) -> None:
    """Print a progress line now (stdout may be a file: a later crash must not swallow it)."""
    print(line, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinner(cores: set[int] | None) -> Callable[[], None] | None:
    """A preexec function pinning the child (and so its children) to `cores`; None: no pinning."""
    if not cores:
        return None
    chosen = set(cores)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def start(
    name: str,
    cmd: list[str],
    *,
    workdir: Path,
    cores: set[int] | None,
    env: dict[str, str] | None = None,
) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=pinner(cores),
        )
    return Server(name, proc, log)


def wait_http(server: Server, url: str, timeout: float = 180.0) -> float:
    """Poll `url` until it answers 200; returns the seconds it took. Raises RuntimeError on exit or time-out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready at {url} after {timeout:.0f} s:\n{server.log_tail()}")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def rss_kb(pid: int) -> int:
    """VmRSS of one process in kB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pid: int) -> float:
    """VmRSS summed over a process and all its descendants, in MB (10^6 bytes)."""
    return sum(rss_kb(p) for p in tree_pids(pid)) * 1024 / 1e6


_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: str) -> float:
    """utime + stime of a /proc/.../stat file, in seconds (0 when it is gone)."""
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of stat(5), counted after `comm`


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants, all threads."""
    return sum(_stat_cpu(f"/proc/{p}/stat") for p in tree_pids(pid))


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of one process's main thread (the event loop), of all its other threads together
    (ledger and audit writers, executors: Python does not name OS threads, so they are not told apart), and
    of its child processes (the ledger's SQL process)."""
    out = {"main": 0.0, "other threads": 0.0, "child processes": 0.0}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        out["main" if int(tid) == pid else "other threads"] += _stat_cpu(f"/proc/{pid}/task/{tid}/stat")
    out["child processes"] = sum(_stat_cpu(f"/proc/{p}/stat") for p in tree_pids(pid)[1:])
    return out
