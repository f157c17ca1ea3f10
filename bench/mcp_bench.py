"""Benchmark: the latency a `tools/call` gains by going through owstack's `/mcp`, against calling the same
HTTP upstream directly, in the same run (interleaved, one call at a time, the official `mcp` client).

    .venv/bin/python bench/mcp_bench.py                          # 500 calls per side, both protocol modes
    .venv/bin/python bench/mcp_bench.py -n 2000 --modes legacy --variant secure

The upstream is an `mcp` SDK server (`MCPServer`, Streamable HTTP) with one `echo` tool, started by this
script. owstack runs as `owstack serve` in its core configuration (open mode on loopback, metering and
audit off) or, with `--variant secure`, with a tenant key, metering and the audit log on. The target is an
added p50 of at most 1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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


async def measure(direct: str, gateway: str, key: str | None, mode: str, n: int, warmup: int) -> dict[str, Any]:
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
        for i in range(n):
            order = (("direct", d, "echo"), ("owstack", g, "bench.echo"))
            for side, c, name in order if i % 2 else order[::-1]:
                start = time.perf_counter()
                await c.call_tool(name, {"text": "hi"})
                times[side].append(time.perf_counter() - start)
    out: dict[str, Any] = {"mode": mode, "calls": n}
    for side, values in times.items():
        values.sort()
        out[side] = {"p50_ms": round(statistics.median(values) * 1000, 3),
                     "p90_ms": round(values[int(len(values) * 0.9)] * 1000, 3)}  # fmt: skip
    out["added_p50_ms"] = round(out["owstack"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=500, help="measured calls per side and mode")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--modes", default="legacy,2026-07-28", help="client modes: legacy (2025-11-25), 2026-07-28")
    p.add_argument("--variant", choices=("core", "secure"), default="core")
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
    secure = args.variant == "secure"
    config: dict[str, Any] = {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "metering": {"enabled": secure},
        "audit": {"enabled": secure, "directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys")},
        "mcp": {"servers": {"bench": {"url": f"http://127.0.0.1:{up_port}/mcp", "allow_networks": ["127.0.0.1/32"]}}},
    }
    key = None
    if secure:
        config["tenants"] = {"bench": {}}
        config["mcp"]["tenants"] = {"bench": {"allow": ["bench.*"]}}
    (tmp / "owstack.yaml").write_text(yaml.safe_dump(config))
    try:
        wait_port(up_port, procs[0])
        if secure:
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
        results = []
        for mode in args.modes.split(","):
            r = anyio.run(measure, f"http://127.0.0.1:{up_port}/mcp", f"http://127.0.0.1:{gw_port}/mcp", key,
                          mode, args.n, args.warmup)  # fmt: skip
            results.append(r)
            print(f"{args.variant:6} {mode:10}  direct p50 {r['direct']['p50_ms']:.3f} ms  owstack p50 "
                  f"{r['owstack']['p50_ms']:.3f} ms  added p50 {r['added_p50_ms']:+.3f} ms", flush=True)  # fmt: skip
        print(json.dumps({"variant": args.variant, "results": results}, indent=1))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(15)


if __name__ == "__main__":
    main()
