"""Benchmark: the latency a `tools/call` gains by going through owstack's `/mcp`, against calling the same
HTTP upstream directly, in the same run (interleaved, one call at a time, the official `mcp` client).

    .venv/bin/python bench/mcp_bench.py                          # 500 calls per side, both protocol modes
    .venv/bin/python bench/mcp_bench.py -n 2000 --modes legacy --variant secure
    .venv/bin/python bench/mcp_bench.py --edge sdk               # every request through the SDK's server side
    .venv/bin/python bench/mcp_bench.py --upstream-protocol legacy   # owstack speaks 2025 sessions upstream too
    .venv/bin/python bench/mcp_bench.py --profile /tmp/mcp.speedscope.json   # py-spy on owstack meanwhile
    .venv/bin/python bench/mcp_bench.py --client raw --modes 2026-07-28     # http.client instead of the SDK
    .venv/bin/python bench/mcp_bench.py --variant secure --throughput 8      # calls/s with 8 concurrent clients

The upstream is an `mcp` SDK server (`MCPServer`, Streamable HTTP) with one `echo` tool, started by this
script. owstack runs as `owstack serve` in its core configuration (open mode on loopback, metering and
audit off) or, with `--variant secure`, with a tenant key, metering and the audit log on. The client modes
are `legacy` (2025-11-25 sessions) and `2026-07-28` (stateless); owstack's own upstream session negotiates
on its own (`--upstream-protocol auto`: 2026-07-28 with this upstream), so in legacy mode the direct side
pays the 2025 session transport both ways and the owstack side only downstream.

Besides latency it reports owstack's CPU time per call (user + system time of the `owstack serve` process
over the measured calls, divided by the calls): latency on a shared machine includes waiting for a CPU,
the CPU time does not; and the median of the paired differences (each call through owstack against the
direct call made next to it), which drifts in the machine's load do not move. `--client raw` sends the
same 2026-07-28 `tools/call` with `http.client` (one keep-alive connection per side) instead of the SDK's
client, whose own tasks and streams cost about 2 ms a call and make the comparison noisier on a loaded
machine. The target is an added p50 of at most 1 ms. `--throughput N` measures instead how many calls a
second owstack serves to N concurrent clients (threads, each a keep-alive `http.client` connection sending
2026-07-28 calls back to back, for `--seconds`), and its CPU time per call: where one call at a time shows
what a call waits for, this shows what overlapping calls share (group commits of the audit log and the
ledger's write-ahead log).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def serve_upstream(port: int) -> None:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench-upstream")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    server.run("streamable-http", host="127.0.0.1", port=port)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a benchmark process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"port {port} not ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(values[int(len(values) * 0.95)] * 1000, 3),
    }


async def measure(
    direct: str, gateway: str, key: str | None, mode: str, n: int, warmup: int, gw_pid: int
) -> dict[str, Any]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from mcp import Client

    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with (
        httpx2.AsyncClient(timeout=60) as h1,
        httpx2.AsyncClient(timeout=60, headers=headers) as h2,
        Client(streamable_http_client(direct, http_client=h1), mode=mode, cache=None) as d,
        Client(streamable_http_client(gateway, http_client=h2), mode=mode, cache=None) as g,
    ):
        await g.list_tools()
        for c, name in ((d, "echo"), (g, "bench.echo")):
            for _ in range(warmup):
                await c.call_tool(name, {"text": "hi"})
        times: dict[str, list[float]] = {"direct": [], "owstack": []}
        cpu = cpu_seconds(gw_pid)
        for i in range(n):
            order = (("direct", d, "echo"), ("owstack", g, "bench.echo"))
            for side, c, name in order if i % 2 else order[::-1]:
                start = time.perf_counter()
                await c.call_tool(name, {"text": "hi"})
                times[side].append(time.perf_counter() - start)
        cpu = cpu_seconds(gw_pid) - cpu
    return _summary(mode, n, cpu, times)


def measure_raw(
    direct: str, gateway: str, key: str | None, mode: str, n: int, warmup: int, gw_pid: int
) -> dict[str, Any]:
    """The same comparison with a minimal client: one `http.client` connection per side, 2026-07-28 only."""
    import http.client
    from urllib.parse import urlsplit

    if mode != "2026-07-28":
        raise SystemExit("--client raw speaks 2026-07-28 only (a 2025 session needs the SDK's handshake)")
    meta = {"io.modelcontextprotocol/protocolVersion": mode, "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-bench", "version": "1"}}  # fmt: skip
    sides = {}
    for side, url, name in (("direct", direct, "echo"), ("owstack", gateway, "bench.echo")):
        parts = urlsplit(url)
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": mode, "Mcp-Method": "tools/call", "Mcp-Name": name}  # fmt: skip
        if key and side == "owstack":
            headers["Authorization"] = f"Bearer {key}"
        sides[side] = (http.client.HTTPConnection(parts.hostname, parts.port), parts.path, name, headers)

    def call(side: str, i: int) -> None:
        conn, path, name, headers = sides[side]
        params = {"name": name, "arguments": {"text": "hi"}, "_meta": meta}
        conn.request("POST", path, json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}),
                     headers)  # fmt: skip
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or b'"result"' not in body:
            raise SystemExit(f"{side}: HTTP {response.status}: {body[:300]!r}")

    for i in range(warmup):
        call("direct", i)
        call("owstack", i)
    times: dict[str, list[float]] = {"direct": [], "owstack": []}
    cpu = cpu_seconds(gw_pid)
    for i in range(n):
        for side in ("direct", "owstack") if i % 2 else ("owstack", "direct"):
            start = time.perf_counter()
            call(side, i)
            times[side].append(time.perf_counter() - start)
    cpu = cpu_seconds(gw_pid) - cpu
    return _summary(mode, n, cpu, times)


def measure_throughput(gateway: str, key: str | None, clients: int, seconds: float, gw_pid: int) -> dict[str, Any]:
    """Calls per second through owstack with `clients` concurrent raw 2026-07-28 clients, and its CPU per call."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(gateway)
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-bench", "version": "1"}}  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "bench.echo"}  # fmt: skip
    if key:
        headers["Authorization"] = f"Bearer {key}"
    counts = [0] * clients
    errors: list[str] = []
    counting, stop = threading.Event(), threading.Event()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        i = 0
        while not stop.is_set():
            i += 1
            params = {"name": "bench.echo", "arguments": {"text": "hi"}, "_meta": meta}
            conn.request("POST", parts.path, json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                                         "params": params}), headers)  # fmt: skip
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or b'"result"' not in body:
                errors.append(f"HTTP {response.status}: {body[:300]!r}")
                return
            if counting.is_set():
                counts[n] += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)  # warm-up: every client connected and calling
    cpu, start = cpu_seconds(gw_pid), time.monotonic()
    counting.set()
    time.sleep(seconds)
    counting.clear()
    cpu, elapsed = cpu_seconds(gw_pid) - cpu, time.monotonic() - start
    stop.set()
    for t in threads:
        t.join(30)
    if errors:
        raise SystemExit(errors[0])
    calls = sum(counts)
    return {"mode": "2026-07-28", "clients": clients, "calls": calls, "calls_per_s": round(calls / elapsed, 1),
            "owstack_cpu_ms_per_call": round(cpu / calls * 1000, 3)}  # fmt: skip


def _summary(mode: str, n: int, cpu: float, times: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": mode, "calls": n, "owstack_cpu_ms_per_call": round(cpu / n * 1000, 3)}
    for side, values in times.items():
        out[side] = percentiles(values)
    out["added_p50_ms"] = round(out["owstack"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    out["added_p95_ms"] = round(out["owstack"]["p95_ms"] - out["direct"]["p95_ms"], 3)
    # each owstack call against the direct call made next to it: drifts in the machine's load cancel out
    pairs = [o - d for o, d in zip(times["owstack"], times["direct"], strict=True)]
    out["added_paired_p50_ms"] = round(statistics.median(pairs) * 1000, 3)
    return out


def edge_counts(gw_port: int) -> dict[str, float]:
    """Which edge served the requests and which channel carried them upstream, from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/metrics", timeout=10).read().decode()
    wanted = ("owstack_mcp_edge_requests_total", "owstack_mcp_upstream_requests_total")
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(wanted)}  # fmt: skip


def config_for(args: argparse.Namespace, tmp: Path, up_port: int) -> dict[str, Any]:
    secure = args.variant == "secure"
    server = {"url": f"http://127.0.0.1:{up_port}/mcp", "allow_networks": ["127.0.0.1/32"],
              "protocol": args.upstream_protocol}  # fmt: skip
    config: dict[str, Any] = {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "metering": {"enabled": secure},
        "audit": {"enabled": secure, "directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys")},
        "mcp": {"servers": {"bench": server}, "lean": args.edge == "lean"},
    }
    if secure:
        config["tenants"] = {"bench": {}}
        config["mcp"]["tenants"] = {"bench": {"allow": ["bench.*"]}}
    return config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=500, help="measured calls per side and mode")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--modes", default="legacy,2026-07-28", help="client modes: legacy (2025-11-25), 2026-07-28")
    p.add_argument("--variant", choices=("core", "secure"), default="core")
    p.add_argument("--edge", choices=("lean", "sdk"), default="lean", help="mcp.lean: the lean edge, or the SDK only")
    p.add_argument("--upstream-protocol", choices=("auto", "legacy", "2026-07-28"), default="auto")
    p.add_argument("--client", choices=("sdk", "raw"), default="sdk", help="the SDK's client, or http.client")
    p.add_argument("--profile", metavar="PATH", help="record owstack with py-spy (speedscope JSON) while measuring")
    p.add_argument("--throughput", type=int, metavar="N", help="calls/s with N concurrent raw 2026-07-28 clients")
    p.add_argument("--seconds", type=float, default=10.0, help="how long --throughput measures")
    p.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    import anyio
    import yaml

    tmp = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    up_port, gw_port = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(tmp / "processes.log", "wb")  # noqa: SIM115 - the children write to it for their whole life
    procs = [subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(up_port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)]  # fmt: skip
    (tmp / "owstack.yaml").write_text(yaml.safe_dump(config_for(args, tmp, up_port)))
    key = None
    try:
        wait_port(up_port, procs[0])
        if args.variant == "secure":
            cmd = [sys.executable, "-m", "owstack", "keys", "create", "--tenant", "bench", "--json"]
            out = subprocess.run(
                [*cmd, "--config", str(tmp / "owstack.yaml")], capture_output=True, text=True, check=True
            )
            key = json.loads(out.stdout)["key"]
        procs.append(subprocess.Popen([sys.executable, "-m", "owstack", "serve", "--config", str(tmp / "owstack.yaml"),
                                       "--port", str(gw_port)], env=env, cwd=tmp,
                                      stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        wait_port(gw_port, procs[1])
        time.sleep(2)
        if args.profile:
            procs.append(subprocess.Popen(["py-spy", "record", "--pid", str(procs[1].pid), "--rate", "1000",
                                           "--format", "speedscope", "-o", args.profile],
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        results = []
        if args.throughput:
            r = measure_throughput(f"http://127.0.0.1:{gw_port}/mcp", key, args.throughput, args.seconds, procs[1].pid)
            results.append(r)
            print(f"{args.variant:6} raw {r['mode']:10}  {r['clients']} clients  {r['calls_per_s']:.1f} calls/s"
                  f"  owstack CPU {r['owstack_cpu_ms_per_call']:.3f} ms/call", flush=True)  # fmt: skip
        for mode in [] if args.throughput else args.modes.split(","):
            urls = (f"http://127.0.0.1:{up_port}/mcp", f"http://127.0.0.1:{gw_port}/mcp")
            if args.client == "raw":
                r = measure_raw(*urls, key, mode, args.n, args.warmup, procs[1].pid)
            else:
                r = anyio.run(measure, *urls, key, mode, args.n, args.warmup, procs[1].pid)
            results.append(r)
            d, o = r["direct"], r["owstack"]
            print(f"{args.variant:6} {args.client:3} {mode:10}  direct p50 {d['p50_ms']:.3f} p95 {d['p95_ms']:.3f} ms"
                  f"  owstack p50 {o['p50_ms']:.3f} p95 {o['p95_ms']:.3f} ms"
                  f"  added p50 {r['added_p50_ms']:+.3f} p95 {r['added_p95_ms']:+.3f} ms"
                  f" (paired p50 {r['added_paired_p50_ms']:+.3f})"
                  f"  owstack CPU {r['owstack_cpu_ms_per_call']:.3f} ms/call", flush=True)  # fmt: skip
        summary = {"variant": args.variant, "edge": args.edge, "client": args.client,
                   "upstream_protocol": args.upstream_protocol, "load": os.getloadavg(),
                   "results": results, "served": edge_counts(gw_port)}  # fmt: skip
        print(json.dumps(summary, indent=1))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT) if proc.args[0] == "py-spy" else proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
