"""wrk: a Lua script per request shape, one run, and a parser for wrk's text report.

Every run is `wrk -t1 -c N -d Ds --latency -s script.lua URL` (one wrk thread, as in the peer measurements
of docs/sources.md). The script only sets method, body and headers, so wrk builds the request once and
spends no Lua per request.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


class WrkOutputError(ValueError):
    """wrk's output did not have the lines a run must print."""


@dataclass
class WrkResult:
    connections: int
    duration_s: float
    requests: int
    rps: float
    latency_ms: dict[str, float] = field(default_factory=dict)  # "avg", "max", "p50", "p75", "p90", "p99"
    bytes_read: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout
    non_2xx: int = 0

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["errors"] = self.errors
        return data


def to_ms(value: str) -> float:
    """'345.12us' -> 0.34512; '1.20ms' -> 1.2; '2.00s' -> 2000.0; '1.05m' -> 63000.0."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise WrkOutputError(f"not a wrk duration: {value!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)] * 1e3


def to_bytes(value: str) -> int:
    match = re.fullmatch(r"([0-9.]+)([KMGT]?B)", value.strip())
    if not match:
        raise WrkOutputError(f"not a wrk size: {value!r}")
    return round(float(match.group(1)) * _SIZE[match.group(2)])


def parse(text: str) -> WrkResult:
    """Parse wrk 4's report (with `--latency`). Raises WrkOutputError when a needed line is missing."""
    conns = re.search(r"(\d+) threads and (\d+) connections", text)
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+(?:us|ms|s|m|h)), ([0-9.]+[KMGT]?B) read", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    if not (conns and total and rps):
        first = text.strip().splitlines()[:3]
        raise WrkOutputError(f"wrk printed no summary: {' | '.join(first) or '(nothing)'}")
    result = WrkResult(
        connections=int(conns.group(2)),
        duration_s=to_ms(total.group(2)) / 1e3,
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        bytes_read=to_bytes(total.group(3)),
    )
    stats = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+", text, re.M)
    if stats:
        result.latency_ms["avg"] = to_ms(stats.group(1))
        result.latency_ms["max"] = to_ms(stats.group(3))
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", text, re.M):
        result.latency_ms[f"p{pct}"] = to_ms(value)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        result.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        result.non_2xx = int(non2xx.group(1))
    return result


def lua_script(body: dict[str, object], headers: dict[str, str] | None = None) -> str:
    """A wrk script that POSTs `body` as JSON with the given headers."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(json.dumps(body, separators=(',', ':')))}"]
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    return "\n".join(lines) + "\n"


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def run(
    url: str,
    script: Path,
    *,
    connections: int,
    duration_s: float,
    timeout_s: float = 5.0,
    preexec: Callable[[], None] | None = None,
) -> tuple[WrkResult, str]:
    """One wrk run; returns the parsed result and wrk's raw output."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60, preexec_fn=preexec, check=False)
    if proc.returncode != 0:
        raise WrkOutputError(f"wrk exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return parse(proc.stdout), proc.stdout
