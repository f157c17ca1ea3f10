"""One contender under load: a correctness check, idle RSS, warm-up, the wrk runs, loaded RSS."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gwbench import procs, wrk
from gwbench.contenders import Contender
from gwbench.upstream import WORDS

EXPECTED = "".join(WORDS)


@dataclass(frozen=True)
class Settings:
    duration_s: float = 10.0
    warmup_s: float = 3.0
    chat_connections: tuple[int, ...] = (1, 16, 64)
    stream_connections: tuple[int, ...] = (1, 16)
    pause_s: float = 1.0
    server_cores: frozenset[int] | None = frozenset({0})  # the gateway under test
    client_cores: frozenset[int] | None = frozenset({1})  # wrk and nginx


def _post(url: str, body: dict[str, object], headers: dict[str, str]) -> tuple[int, bytes, str]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")


def stream_text(raw: bytes) -> tuple[str, int, bool]:
    """(content joined from the SSE deltas, number of data events, whether it ended with [DONE])."""
    parts, events, done = [], 0, False
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        events += 1
        if payload == "[DONE]":
            done = True
            continue
        chunk = json.loads(payload)
        for choice in chunk.get("choices") or ():
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts), events, done


def check(c: Contender) -> dict[str, Any]:
    """One request of each kind: both must return the upstream's answer (else the figures mean nothing)."""
    out: dict[str, Any] = {}
    status, raw, _ = _post(c.chat_url, c.chat_body, c.headers)
    content = None
    if status == 200:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    out["chat"] = {"status": status, "ok": status == 200 and content == EXPECTED}
    status, raw, ctype = _post(c.stream_url, c.stream_body, c.headers)
    text, events, done = stream_text(raw) if status == 200 else ("", 0, False)
    out["stream"] = {
        "status": status,
        "content_type": ctype.split(";")[0],
        "events": events,
        "ok": status == 200 and text == EXPECTED and done,
    }
    if c.headers.get("Authorization"):
        status, _, _ = _post(c.chat_url, c.chat_body, {})
        out["without_key_status"] = status
        out["keys_enforced"] = status == 401
    if not (out["chat"]["ok"] and out["stream"]["ok"]):
        raise RuntimeError(f"{c.name}: the correctness check failed: {out} (chat body {raw[:300]!r})")
    return out


def _script(workdir: Path, name: str, body: dict[str, object], headers: dict[str, str]) -> Path:
    path = workdir / f"{name}.lua"
    path.write_text(wrk.lua_script(body, headers))
    return path


def measure(c: Contender, s: Settings, workdir: Path, log: Any = None) -> dict[str, Any]:
    """Everything for one contender; `log` gets one line per run."""
    log = log or procs.say
    result: dict[str, Any] = {"kind": c.kind, "ready_s": c.ready_s, **c.info}
    pid = c.server.pid if c.server is not None else None
    if pid is not None:
        time.sleep(1.0)
        result["idle_rss_mb"] = round(procs.tree_rss_mb(pid), 1)
    result["check"] = check(c)
    slug = c.name.replace("+", "-")
    chat = _script(workdir, f"{slug}-chat", c.chat_body, c.headers)
    stream = _script(workdir, f"{slug}-stream", c.stream_body, c.headers)
    pin = procs.pinner(set(s.client_cores) if s.client_cores else None)
    for url, script in ((c.chat_url, chat), (c.stream_url, stream)):
        wrk.run(url, script, connections=16, duration_s=s.warmup_s, preexec=pin)
    runs: dict[str, Any] = {}
    plan = [("chat", n, c.chat_url, chat) for n in s.chat_connections]
    plan += [("stream", n, c.stream_url, stream) for n in s.stream_connections]
    for kind, conns, url, script in plan:
        time.sleep(s.pause_s)
        before = _cpu_snapshot(pid)
        parsed, raw = wrk.run(url, script, connections=conns, duration_s=s.duration_s, preexec=pin)
        key = f"{kind}@{conns}"
        runs[key] = parsed.to_dict()
        if pid is not None:
            runs[key].update(_cpu_per_request(before, _cpu_snapshot(pid), parsed))
        (workdir / f"{slug}-{key}.wrk.txt").write_text(raw)
        lat = parsed.latency_ms
        log(
            f"  {c.name:<17} {key:<10} {parsed.rps:>10.1f} req/s  p50 {lat.get('p50', 0):8.3f} ms  "
            f"p99 {lat.get('p99', 0):8.3f} ms  errors {parsed.errors}"
        )
    result["runs"] = runs
    if pid is not None:
        result["loaded_rss_mb"] = round(procs.tree_rss_mb(pid), 1)
        result["peak_rss_mb"] = round(_hwm_mb(pid), 1)
    return result


def _cpu_snapshot(pid: int | None) -> tuple[float, float, dict[str, float]]:
    if pid is None:
        return time.monotonic(), 0.0, {}
    return time.monotonic(), procs.cpu_seconds(pid), procs.thread_cpu(pid)


def _cpu_per_request(
    before: tuple[float, float, dict[str, float]], after: tuple[float, float, dict[str, float]], run: wrk.WrkResult
) -> dict[str, Any]:
    """The server's CPU time per request (all threads, user + system) and how busy its core was: a figure
    that other work on the machine moves much less than requests/s (it only takes the core away)."""
    wall = after[0] - before[0]
    cpu = after[1] - before[1]
    n = max(run.requests, 1)
    threads = {
        name: round((after[2].get(name, 0.0) - before[2].get(name, 0.0)) / n * 1e6, 1)
        for name in after[2]
        if after[2].get(name, 0.0) - before[2].get(name, 0.0) > 0
    }
    return {"cpu_us_per_request": round(cpu / n * 1e6, 1), "cpu_busy": round(cpu / wall, 3), "thread_cpu_us": threads}


def _hwm_mb(pid: int) -> float:
    total = 0
    for p in procs.tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
        except OSError:
            pass
    return total * 1024 / 1e6
