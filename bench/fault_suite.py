"""The fault-injection suite (issue 14, item 7): real gateways under load while things go wrong.

    .venv/bin/python bench/fault_suite.py                     # every scenario, ~20 s of load each (~10 min)
    .venv/bin/python bench/fault_suite.py --seconds 10 --only baseline,kill9-gateway
    .venv/bin/python bench/fault_suite.py --rounds 6          # kill -9 rounds per kill scenario

Each scenario starts `owstack serve` (metering and audit on, as shipped) in front of the fake upstream
(tests/fakes/upstream.py), drives it with 16 closed-loop connections whose every request carries its own id
(tests/reliability/load.py), injects its fault, stops the gateway gracefully and reads the ledger back. Per
scenario: requests sent, acknowledged (a complete 200), recorded (acknowledged ids found in the ledger), lost
(acknowledged and not recorded: must be 0) and 5xx (with what they mean in the notes). Prints a Markdown
table (the one in docs/reliability.md) and writes bench/results/faults-<UTC time>.json.

Faults: replicas that fail before the first byte or mid-stream beside healthy ones; PostgreSQL behind a TCP
proxy paused (a partition) or cut (an outage) for a few seconds; Redis cut under rate limits; kill -9 of the
gateway or of its ledger process, then a restart; a flood of idle connections under a low file limit; a
fuzz of hostile request bodies; a fuzz of hostile `/mcp` traffic and upstream results (`mcp-fuzz`, a real
stdio MCP server behind the gateway, tests/reliability/test_fuzz_mcp.py). Needs PostgreSQL on 127.0.0.1:5432
and Redis on 6379 for their scenarios.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from owstack import storage  # noqa: E402
from owstack.metering.journal import catch_up  # noqa: E402
from owstack.tenancy.keys import KeyStore  # noqa: E402
from procs import Proc, run_gateway, run_upstream  # noqa: E402
from reliability.fuzz import HEADS, RICH, bodies, planted  # noqa: E402
from reliability.load import Load  # noqa: E402
from reliability.tcpproxy import TcpProxy  # noqa: E402
from scratch_db import pg_database  # noqa: E402

Scenario = Callable[["Run"], dict[str, Any]]


class Run:
    """One scenario's surroundings: a temp dir, the upstream, the length of the load."""

    def __init__(self, tmp: Path, upstream: Proc, seconds: float, rounds: int) -> None:
        self.tmp, self.upstream, self.seconds, self.rounds = tmp, upstream, seconds, rounds

    def config(self, storage_url: str, *, replicas: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        up = self.upstream.base_url
        names = replicas or ["edge-model"]
        backends = {
            f"r{i}": {"engine": "vllm", "url": up, "model": m, "health_check": False} for i, m in enumerate(names)
        }
        backends["fallback"] = {"engine": "vllm", "url": up, "model": "edge-model", "health_check": False}
        return {
            "storage": {"url": storage_url},
            "audit": {"directory": str(self.tmp / "audit"), "keys_directory": str(self.tmp / "audit-keys")},
            "backends": backends,
            "layers": {"edge": {"backends": [f"r{i}" for i in range(len(names))], "fallback": ["fallback"]}},
            **extra,
        }

    def sqlite(self) -> str:
        return f"sqlite:///{self.tmp / 'owstack.db'}"


def ledger_ids(url: str) -> set[str]:
    catch_up(url)
    with storage.engine(url).connect() as conn:
        return {row[0] for row in conn.execute(sa.text("SELECT request_id FROM ledger"))}


def summary(loads: list[Load], url: str, notes: str, **extra: Any) -> dict[str, Any]:
    acknowledged = {rid for load in loads for rid in load.acknowledged}
    recorded = ledger_ids(url) & acknowledged
    outcomes: dict[str, int] = {}
    for load in loads:
        for k, v in load.outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
    return {
        "requests": sum(load.sent for load in loads),
        "acknowledged": len(acknowledged),
        "recorded": len(recorded),
        "lost": len(acknowledged - recorded),
        "5xx": sum(v for k, v in outcomes.items() if k.isdigit() and int(k) >= 500),
        "outcomes": outcomes,
        "notes": notes,
        **extra,
    }


def under_load(run: Run, gw: Proc, prefix: str, fault: Callable[[], None] | None = None, **load: Any) -> Load:
    """16 connections for `run.seconds`; `fault` runs a third of the way in."""
    with Load(gw.base_url, concurrency=16, prefix=prefix, **load) as driver:
        time.sleep(run.seconds / 3)
        if fault is not None:
            fault()
        time.sleep(run.seconds * 2 / 3)
    return driver


# the scenarios --------------------------------------------------------------------------------------------------


def baseline(run: Run) -> dict[str, Any]:
    url = run.sqlite()
    with run_gateway(run.tmp, run.config(url)) as gw:
        load = under_load(run, gw, "base")
    return summary([load], url, "no fault")


def replica_faults(run: Run) -> dict[str, Any]:
    url = run.sqlite()
    replicas = ["edge-model", "fail-before-first-byte", "bad-json", "edge-model"]
    with run_gateway(run.tmp, run.config(url, replicas=replicas)) as gw:
        chat = under_load(run, gw, "rep")
        stream = under_load(run, gw, "reps", stream=True)
    return summary(
        [chat, stream],
        url,
        "2 of 4 replicas fail (500 before the first byte, a body that is not JSON); chat then streams",
    )


def pg_fault(kind: str) -> Scenario:
    def scenario(run: Run) -> dict[str, Any]:
        with pg_database("owstack_faults") as url:
            proxy = TcpProxy(("127.0.0.1", 5432)).start()
            via = url.replace("127.0.0.1:5432", proxy.url_host)
            key, _ = KeyStore(url).create("acme")
            cfg = run.config(via, tenants={"acme": {}})

            def fault() -> None:
                (proxy.pause if kind == "partition" else proxy.cut)()
                time.sleep(min(8.0, run.seconds / 3))
                proxy.resume()

            try:
                with run_gateway(run.tmp, cfg) as gw:
                    load = under_load(run, gw, f"pg{kind[0]}", fault, headers={"authorization": f"Bearer {key}"})
                    log = gw.log()
            finally:
                proxy.close()
                storage.dispose(via)
            warnings = log.count(" WARNING ")
            return summary(
                [load],
                url,
                f"PostgreSQL {kind} for {min(8.0, run.seconds / 3):.0f} s mid-load (keys cached, ledger kept)",
                warnings=warnings,
            )

    return scenario


def redis_outage(run: Run) -> dict[str, Any]:
    url = run.sqlite()
    proxy = TcpProxy(("127.0.0.1", 6379)).start()
    key, _ = KeyStore(url).create("acme")
    prefix = f"owstack-faults-{uuid.uuid4().hex[:8]}:"
    cfg = run.config(
        url,
        tenants={"acme": {"requests_per_minute": 1_000_000}},
        redis=f"redis://{proxy.url_host}/0",
        limits={"prefix": prefix},
    )

    def fault() -> None:
        proxy.cut()
        time.sleep(min(8.0, run.seconds / 3))
        proxy.resume()

    try:
        with run_gateway(run.tmp, cfg) as gw:
            load = under_load(run, gw, "redis", fault, headers={"authorization": f"Bearer {key}"})
    finally:
        proxy.close()
    return summary([load], url, "Redis cut mid-load under a rate cap: served unchecked (limits.on_redis_error: allow)")


def kill9(victim: str) -> Scenario:
    def scenario(run: Run) -> dict[str, Any]:
        url = run.sqlite()
        cfg = run.config(url)
        loads = []
        for n in range(run.rounds):
            with run_gateway(run.tmp, cfg) as gw, Load(gw.base_url, concurrency=16, prefix=f"k9{victim[0]}{n}") as load:
                time.sleep(run.seconds / run.rounds)
                pid = gw.proc.pid if victim == "gateway" else _ledger_process(gw.proc.pid)
                os.kill(pid, signal.SIGKILL)
                if victim != "gateway":
                    time.sleep(1.0)
                loads.append(load)
        with run_gateway(run.tmp, cfg):  # the last restart replays the last log; a graceful stop flushes
            pass
        return summary(loads, url, f"{run.rounds} rounds of kill -9 of the {victim} mid-load (requests in flight fail)")

    return scenario


def _ledger_process(pid: int) -> int:
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"ledger_process" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    raise RuntimeError("no ledger process")


def fd_flood(run: Run) -> dict[str, Any]:
    import socket

    url = run.sqlite()
    cfg = run.config(url, server={"limits": {"header_timeout_s": 2.0, "max_connections_per_client": 10_000}})
    port = _free()
    (run.tmp / "flood.yaml").write_text(json.dumps(cfg))
    code = (
        "import resource, runpy, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))\n"
        f"sys.argv = ['owstack', 'serve', '--port', '{port}', '--config', '{run.tmp / 'flood.yaml'}']\n"
        "runpy.run_module('owstack', run_name='__main__')\n"
    )
    from procs import spawn, wait_http

    log = run.tmp / "flood.log"
    gw = Proc(spawn([sys.executable, "-c", code], log, cwd=run.tmp), port, log)
    try:
        wait_http(gw.url + "/readyz", gw.proc, log, timeout=120)

        def fault() -> None:
            flood = []
            for _ in range(600):
                with contextlib.suppress(OSError):
                    flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            time.sleep(run.seconds / 3)
            for s in flood:
                s.settimeout(0.0)
                with contextlib.suppress(OSError):
                    refused.append(s.recv(64).startswith(b"HTTP/1.1 503 "))
                s.close()

        refused: list[bool] = []

        load = under_load(run, gw, "fd", fault)
        healthy = httpx.get(gw.url + "/healthz", timeout=30).status_code
    finally:
        gw.stop()
    text = log.read_text(errors="replace")
    notes = (
        f"600 idle connections under a 256-file limit: {sum(refused)} refused at once (503), the rest closed at the "
        "header timeout; the load's connections kept being served"
    )
    return summary([load], url, notes, too_many_open_files=text.count("Too many open files"), healthz_after=healthy)


def fuzz(run: Run) -> dict[str, Any]:
    url = run.sqlite()
    with run_gateway(run.tmp, run.config(url)) as gw:
        sent = acknowledged = errors5 = 0
        ids = []
        chat = (("/v1/chat/completions", body) for _, body in bodies(seed=7, n=max(500, int(run.seconds * 100))))
        deep = ((path, body) for path in RICH for _, body in planted(path, seed=7, n=max(50, int(run.seconds * 5))))
        with httpx.Client(base_url=gw.url, timeout=60) as http:
            for n, (path, body) in enumerate(itertools.chain(chat, deep)):
                rid = f"fuzz-{n:06d}"
                r = http.post(path, content=body, headers={"content-type": "application/json", "x-request-id": rid})
                sent += 1
                errors5 += r.status_code >= 500
                if path != "/v1/messages/count_tokens":  # a count is not a generation: no ledger row
                    acknowledged += r.status_code == 200
                    ids.append((rid, r.status_code))
        heads = [_raw(gw.port, head) for head in HEADS]  # refused by the server itself: never in the ledger
        alive = httpx.get(gw.url + "/healthz", timeout=30).status_code
    recorded = ledger_ids(url)
    acked = {rid for rid, status in ids if status == 200}
    return {
        "requests": sent,
        "acknowledged": len(acked),
        "recorded": len(recorded & acked),
        "lost": len(acked - recorded),
        "5xx": errors5,
        "refusals_recorded": len(recorded & {rid for rid, status in ids if status != 200}),
        "notes": "hostile bodies (nesting, huge numbers, invalid UTF-8, mangled, mistyped, values planted deep "
        "in every endpoint's items, blocks and tools) and malformed or oversized HTTP heads: a 4xx each",
        "heads_4xx": sum(400 <= status < 500 for status in heads),
        "heads_5xx": sum(status >= 500 for status in heads),
        "healthz_after": alive,
    }


def mcp_fuzz(run: Run) -> dict[str, Any]:
    """tests/reliability/test_fuzz_mcp.py at scale: hostile `/mcp` requests on every way of calling, then the
    upstream's hostile results; acknowledged: tool calls answered with a result (each must have a row)."""
    from concurrent.futures import ThreadPoolExecutor

    from reliability import test_fuzz_mcp as t

    url = run.sqlite()
    with run_gateway(run.tmp, t.config(run.tmp, url)) as gw:
        gateway = t.Gateway(gw, gw.url + "/mcp", url)
        report = t.fuzz(gateway.url, seed=7, n=max(1000, int(run.seconds * 150)), prefix="mcpfz")
        cases = [(name, way) for name in t.RESULTS for way in ("modern-lean", "modern-sdk", "session-lean")]
        with ThreadPoolExecutor(len(cases)) as pool:
            results = list(pool.map(lambda c: t._raw_call(gateway, c[1], t.RESULTS[c[0]][0], t._rid(*c)), cases))
        served = t.echo(gateway.url, "after").status_code
        alive = httpx.get(gw.url + "/healthz", timeout=30).status_code
        log = gw.log()
    recorded = ledger_ids(url)
    statuses = [*(int(k) for k, v in report.statuses.items() for _ in range(v)), *(r.status_code for r in results)]
    return {
        "requests": report.requests + len(results),
        "acknowledged": len(report.answered),
        "recorded": len(recorded & report.answered),
        "lost": len(report.answered - recorded),
        "5xx": sum(status >= 500 for status in statuses),
        "not_json_rpc": len(report.bad),
        "statuses": dict(report.statuses),
        "upstream_results_recorded": len(recorded & {t._rid(*c) for c in cases}),
        "tracebacks": log.count("Traceback"),
        "notes": "hostile /mcp requests (nesting, numbers, invalid UTF-8, JSON-RPC shapes, wrong types, headers, "
        "mangled) on 2026-07-28 and a 2025 session, lean edge and SDK path, and 18 hostile upstream results: "
        "JSON-RPC errors only",
        "served_after": served,
        "healthz_after": alive,
    }


def _raw(port: int, data: bytes) -> int:
    """Send raw bytes, read until the server closes: the status (0: no answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                answer += chunk
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _free() -> int:
    from procs import free_port

    return free_port()


SCENARIOS: dict[str, Scenario] = {
    "baseline": baseline,
    "replica-faults": replica_faults,
    "pg-partition": pg_fault("partition"),
    "pg-outage": pg_fault("outage"),
    "redis-outage": redis_outage,
    "kill9-gateway": kill9("gateway"),
    "kill9-ledger": kill9("ledger process"),
    "fd-flood": fd_flood,
    "fuzz": fuzz,
    "mcp-fuzz": mcp_fuzz,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of load per scenario (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="kill -9 rounds per kill scenario (default 3)")
    p.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    p.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="owstack-faults-") as base, run_upstream(Path(base)) as upstream:
        for name in names:
            tmp = Path(base) / name
            tmp.mkdir()
            print(f"{name}: running", flush=True)
            try:
                results["scenarios"][name] = SCENARIOS[name](Run(tmp, upstream, args.seconds, args.rounds))
            except Exception as exc:  # one failed scenario is reported; the others still run
                results["scenarios"][name] = {"error": f"{type(exc).__name__}: {exc}"[-1000:]}
            print(f"{name}: {json.dumps(results['scenarios'][name])}", flush=True)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(table(results))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"faults-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"results: {out}")
    lost = sum(s.get("lost", 0) for s in results["scenarios"].values())
    return 1 if lost or any("error" in s for s in results["scenarios"].values()) else 0


def table(results: dict[str, Any]) -> str:
    lines = ["| scenario | requests | acknowledged | recorded | lost | 5xx | notes |", "|---|---|---|---|---|---|---|"]
    for name, s in results["scenarios"].items():
        if "error" in s:
            lines.append(f"| {name} | | | | | | failed: {s['error'][:120]} |")
            continue
        counts = " | ".join(f"{s[k]:,}" for k in ("requests", "acknowledged", "recorded", "lost", "5xx"))
        lines.append(f"| {name} | {counts} | {s['notes']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
