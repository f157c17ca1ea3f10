"""Prefix-cache-aware routing against least-outstanding and round-robin, in one run (issue 19, item 3).

    .venv/bin/python bench/prefix_routing.py                 # 3 replicas, 24 agents x 10 turns, one gateway
    .venv/bin/python bench/prefix_routing.py --agents 6 --turns 4 --json out.json     # a quick look

Mock vLLM replicas (bench/prefix_replica.py) model a prefix cache: time to first token is the wait for the
replica's GPU plus the uncached part of the prompt times `--prefill-ms-per-kb`; each replica caches
`--cache-kb`. One `owstack serve` routes three layers over the same replicas, one per policy (coding:
prefix, multimodal: least-outstanding, edge: round-robin), and the workload is run once per layer with
the replicas' caches emptied in between. The workload is a fleet of agents: each sends a shared system
prompt and its own task, then for `--turns` turns streams an answer and appends it with a tool result (the
whole conversation is resent every turn, as agents do). Reported per policy: time to first token (mean,
p50, p95, from the client), the share of prompt bytes the replicas had cached, requests/s and tokens/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
POLICIES = {"prefix": "coding", "least-outstanding": "multimodal", "round-robin": "edge"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--agents", type=int, default=24, help="concurrent agents (default 24)")
    p.add_argument("--turns", type=int, default=10, help="turns per agent (default 10)")
    p.add_argument("--system-kb", type=float, default=6.0, help="the shared system prompt (default 6 KB)")
    p.add_argument("--task-kb", type=float, default=2.0, help="each agent's task (default 2 KB)")
    p.add_argument("--tool-kb", type=float, default=2.0, help="each turn's tool result (default 2 KB)")
    p.add_argument("--max-tokens", type=int, default=16, help="tokens per answer (default 16)")
    p.add_argument(
        "--prefill-ms-per-kb", type=float, default=20.0, help="uncached prompt cost (default 20 ms/KB: ~13k tok/s)"
    )
    p.add_argument("--decode-ms", type=float, default=25.0)
    p.add_argument("--cache-kb", type=int, default=256, help="prefix cache per replica (default 256 KB)")
    p.add_argument("--max-imbalance", type=int, help="routing.prefix.max_imbalance (default: the config's)")
    p.add_argument("--policies", default="prefix,least-outstanding,round-robin")
    p.add_argument("--seed", type=int, default=19)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def text(rng: random.Random, kb: float, tag: str) -> str:
    words = [f"{tag}{rng.randrange(10_000)}" for _ in range(int(kb * 1024 / 8))]
    return " ".join(words)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s")


def gateway_config(replica_ports: list[int], tmp: Path, max_imbalance: int | None) -> dict[str, Any]:
    names = [f"r{i}" for i in range(len(replica_ports))]
    backends = {
        n: {"engine": "vllm", "url": f"http://127.0.0.1:{port}/v1", "model": "mock", "jurisdiction": "local"}
        for n, port in zip(names, replica_ports, strict=True)
    }
    return {
        "backends": backends,
        "layers": {layer: {"backends": names, "routing": policy} for policy, layer in POLICIES.items()},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "audit": {"enabled": False},
        "routing": {
            "health": {"interval_s": 30},
            "prefix": {} if max_imbalance is None else {"max_imbalance": max_imbalance},
        },
    }


async def agent(
    client: httpx.AsyncClient, layer: str, n: int, args: argparse.Namespace, system: str, out: list[dict[str, Any]]
) -> None:
    rng = random.Random(args.seed * 1000 + n)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": text(rng, args.task_kb, f"task{n}-")},
    ]
    for turn in range(args.turns):
        body = {
            "model": layer,
            "messages": messages,
            "stream": True,
            "max_tokens": args.max_tokens,
            "stream_options": {"include_usage": True},
        }
        started = time.perf_counter()
        first: float | None = None
        answer, usage = [], None
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        first = first or time.perf_counter()
                        answer.append(content)
        ended = time.perf_counter()
        cached = ((usage or {}).get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        out.append(
            {
                "agent": n,
                "turn": turn,
                "ttft_s": (first or ended) - started,
                "latency_s": ended - started,
                "prompt_tokens": (usage or {}).get("prompt_tokens", 0),
                "cached_tokens": cached,
                "completion_tokens": (usage or {}).get("completion_tokens", 0),
                "backend": response.headers.get("x-owstack-backend"),
            }
        )
        messages += [
            {"role": "assistant", "content": "".join(answer)},
            {"role": "user", "content": text(rng, args.tool_kb, f"tool{n}.{turn}-")},
        ]


async def run_policy(gateway: str, replicas: list[int], policy: str, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=120) as admin:
        for port in replicas:
            await admin.post(f"http://127.0.0.1:{port}/reset")
    system = text(random.Random(args.seed), args.system_kb, "sys")
    records: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=args.agents * 2, max_keepalive_connections=args.agents * 2)
    async with httpx.AsyncClient(base_url=gateway, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(agent(client, POLICIES[policy], n, args, system, records) for n in range(args.agents)))
        wall = time.perf_counter() - started
    ttfts = sorted(r["ttft_s"] for r in records)
    prompt = sum(r["prompt_tokens"] for r in records)
    return {
        "policy": policy,
        "requests": len(records),
        "ttft_mean_ms": 1000 * statistics.fmean(ttfts),
        "ttft_p50_ms": 1000 * ttfts[len(ttfts) // 2],
        "ttft_p95_ms": 1000 * ttfts[min(len(ttfts) - 1, int(len(ttfts) * 0.95))],
        "cached_share": sum(r["cached_tokens"] for r in records) / prompt if prompt else 0.0,
        "requests_per_s": len(records) / wall,
        "tokens_per_s": sum(r["completion_tokens"] for r in records) / wall,
        "wall_s": wall,
        "per_backend": {
            b: sum(1 for r in records if r["backend"] == b) for b in sorted({r["backend"] for r in records})
        },
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| policy | TTFT mean | TTFT p50 | TTFT p95 | prompt cached | requests/s | tokens/s | wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['policy']} | {r['ttft_mean_ms']:.0f} ms | {r['ttft_p50_ms']:.0f} ms | {r['ttft_p95_ms']:.0f} ms | "
            f"{100 * r['cached_share']:.0f}% | {r['requests_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
            f"{r['wall_s']:.1f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise SystemExit(f"--policies: unknown {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ports = [free_port() for _ in range(args.replicas)]
    with tempfile.TemporaryDirectory(prefix="owstack-prefix-bench-") as tmp_name:
        tmp = Path(tmp_name)
        replica_cmd = [
            sys.executable,
            str(BENCH / "prefix_replica.py"),
            *map(str, ports),
            f"--prefill-ms-per-kb={args.prefill_ms_per_kb}",
            f"--decode-ms={args.decode_ms}",
            f"--cache-kb={args.cache_kb}",
        ]
        replicas = subprocess.Popen(replica_cmd, env=env)
        config = tmp / "owstack.yaml"
        config.write_text(yaml.safe_dump(gateway_config(ports, tmp, args.max_imbalance)))
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "owstack", "serve", "--config", str(config), "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "gateway.log", "wb"),  # noqa: SIM115 - the child writes to it for its life
        )
        try:
            for p in ports:
                wait_ready(f"http://127.0.0.1:{p}/health", replicas)
            wait_ready(f"http://127.0.0.1:{port}/readyz", gateway)
            results = [asyncio.run(run_policy(f"http://127.0.0.1:{port}", ports, p, args)) for p in policies]
        finally:
            for proc in (gateway, replicas):
                proc.terminate()
                proc.wait(30)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(f"\n{args.replicas} replicas, {args.agents} agents x {args.turns} turns, settings: {settings}\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=2))


if __name__ == "__main__":
    main()
