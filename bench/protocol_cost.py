"""Gateway CPU per request, by wire protocol, for one or more source trees in the same run.

    .venv/bin/python bench/protocol_cost.py                         # this checkout
    .venv/bin/python bench/protocol_cost.py --src /path/to/other/src --src src --rounds 3

What it measures: the CPU time (user + system, from /proc/<pid>/stat) the gateway process spends per request,
with the stages a protocol shares off (no audit, no metering: the protocols' own cost) and a fake upstream
(tests/fakes/upstream.py) in another process. CPU time, unlike requests per second, does not depend on what
else the machine is doing, so runs on a busy host compare. Kinds: chat, chat-stream, messages,
messages-stream, responses, responses-stream (the same prompt and answer in each protocol).

Prints a table (µs of gateway CPU per request, median of the rounds) and each kind's ratio to chat, and
writes bench/results/protocol-cost-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from gwbench.procs import free_port, say  # noqa: E402

PROMPT = [{"role": "user", "content": "Write one short sentence about GPUs."}]
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": "edge", "messages": PROMPT, "max_tokens": 32}),
    "chat-stream": (
        "/v1/chat/completions",
        {
            "model": "edge",
            "messages": PROMPT,
            "max_tokens": 32,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
    "messages": ("/v1/messages", {"model": "edge", "messages": PROMPT, "max_tokens": 32}),
    "messages-stream": ("/v1/messages", {"model": "edge", "messages": PROMPT, "max_tokens": 32, "stream": True}),
    "responses": (
        "/v1/responses",
        {"model": "edge", "input": PROMPT[0]["content"], "max_output_tokens": 32, "store": False},
    ),
    "responses-stream": (
        "/v1/responses",
        {"model": "edge", "input": PROMPT[0]["content"], "max_output_tokens": 32, "store": False, "stream": True},
    ),
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def start_gateway(src: str, upstream: int, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = {
        "audit": {"enabled": False},
        "metering": {"enabled": False},
        "storage": {"url": f"sqlite:///{tmp / f'bench-{port}.db'}"},
        "backends": {
            "up": {"engine": "vllm", "url": f"http://127.0.0.1:{upstream}/v1", "model": "fake", "health_check": False}
        },
    }
    path = tmp / f"owstack-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": src}
    cmd = [
        sys.executable,
        "-m",
        "owstack",
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, port


async def drive(port: int, path: str, body: dict[str, Any], n: int, concurrency: int) -> None:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                async with client.stream("POST", path, json=body, headers=headers) as r:
                    async for _chunk in r.aiter_raw():
                        pass
                    if r.status_code != 200:
                        raise RuntimeError(f"{path}: HTTP {r.status_code}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def measure(pid: int, port: int, kind: str, n: int, concurrency: int) -> float:
    path, body = KINDS[kind]
    asyncio.run(drive(port, path, body, max(50, n // 10), concurrency))  # warm-up
    before = cpu_seconds(pid)
    asyncio.run(drive(port, path, body, n, concurrency))
    return (cpu_seconds(pid) - before) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", action="append", help="a source tree (the folder holding `owstack`); repeatable")
    p.add_argument("--requests", type=int, default=2000, help="requests per kind and round (default 2000)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kinds", default=",".join(KINDS))
    args = p.parse_args(argv)
    sources = args.src or [str(REPO / "src")]
    kinds = args.kinds.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="owstack-protocol-cost-"))
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "fakes" / "upstream.py"), str(up_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results: dict[str, dict[str, list[float]]] = {src: {k: [] for k in kinds} for src in sources}
    try:
        wait(f"http://127.0.0.1:{up_port}/health", upstream)
        for round_ in range(args.rounds):
            for src in sources if round_ % 2 == 0 else reversed(sources):
                gw, port = start_gateway(src, up_port, tmp)
                try:
                    for kind in kinds:
                        us = measure(gw.pid, port, kind, args.requests, args.concurrency)
                        results[src][kind].append(us)
                        say(f"round {round_ + 1} {src}: {kind:17s} {us:8.1f} µs CPU/request")
                finally:
                    gw.terminate()
                    gw.wait(30)
    finally:
        upstream.terminate()
        upstream.wait(10)
    print("\n| source | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    summary: dict[str, dict[str, float]] = {}
    for src in sources:
        med = {k: statistics.median(v) for k, v in results[src].items()}
        summary[src] = med
        print(
            f"| {src} | "
            + " | ".join(
                f"{med[k]:.0f} µs ({med[k] / med['chat']:.2f}x)" if "chat" in med else f"{med[k]:.0f}" for k in kinds
            )
            + " |"
        )
    out = BENCH / "results" / f"protocol-cost-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"args": vars(args), "rounds": results, "median": summary}, indent=1))
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
