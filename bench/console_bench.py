"""The console on a big ledger, and what it costs the gateway.

    .venv/bin/python bench/console_bench.py                    # 1,000,000 rows; pages; gateway A/B
    .venv/bin/python bench/console_bench.py --rows 200000 --skip-gateway
    .venv/bin/python bench/console_bench.py --db /tmp/big.db   # reuse a ledger made by an earlier run

1. Filing: synthetic requests over the last 30 days (8 tenants with 3 keys each, 5 backends on three layers,
   adapters, streams, refusals and backend errors in realistic shares, log-normal tokens and latencies) are
   filed in batches of 1,024 through `ledger.write_values`, the path every ledger row takes, so the rollups
   are kept as they are in production. Reported: µs of filing per row with the rollups, and without them
   (the first `--baseline` rows again into a scratch database, the hook switched off): their cost.
2. Pages: every console page (several ranges and groupings, filtered and deep request-log pages, one
   request, the CSV) rendered `--repeat` times in process through the console's ASGI app, after one warm-up;
   reported: median and slowest wall time per page (target: under 300 ms each), and requests per page load.
3. Gateway: `owstack serve` against a fake upstream (tests/fakes/upstream.py), alternately with the console
   off (A) and on with chromium open on the overview and its auto-refresh switched on (B), `--rounds` times
   each in the same run; reported: the gateway process's CPU per request (robust on a busy machine: it does
   not count time spent waiting for a core) and requests per second (which does), and B's ratio to A.

Writes bench/results/console-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from gwbench.procs import free_port, say, start, tree_pids, wait_http  # noqa: E402

DAY = 86400
BATCH = 1024
TENANTS = [f"tenant-{i}" for i in range(8)]
LAYERS = {"edge": (["edge-local", "edge-b"], 0.5), "coding": (["gpu-a", "gpu-b"], 0.35), "multimodal": (["mm-a"], 0.15)}
OUTCOMES = [(200, None, 0.96), (429, "rate_limit_exceeded", 0.01), (403, "residency_violation", 0.004),
            (400, "guard_blocked", 0.004), (502, "upstream_error", 0.012), (401, "invalid_api_key", 0.01)]  # fmt: skip


def synthetic(rows: int, seed: int = 1, span_s: float = 30 * DAY) -> Any:
    """`record.row_values` tuples, oldest first, spread over the `span_s` seconds before now, in batches of
    BATCH."""
    from owstack.metering.record import new_id

    rng = random.Random(seed)
    now = time.time()
    keys = {t: [f"{i:02x}{k:010x}" for k in range(3)] for i, t in enumerate(TENANTS)}
    layer_names = list(LAYERS)
    layer_weights = [LAYERS[n][1] for n in layer_names]
    statuses = [o[:2] for o in OUTCOMES]
    status_weights = [o[2] for o in OUTCOMES]
    batch: list[tuple[Any, ...]] = []
    for i in range(rows):
        ts = now - span_s + span_s * i / rows
        tenant = TENANTS[min(int(rng.paretovariate(1.2)) - 1, len(TENANTS) - 1)]
        layer = rng.choices(layer_names, layer_weights)[0]
        backend = rng.choice(LAYERS[layer][0])
        model = f"{backend}-model" + (
            rng.choice([":support", ":legal"]) if layer == "edge" and rng.random() < 0.1 else ""
        )
        status, code = rng.choices(statuses, status_weights)[0]
        stream = rng.random() < 0.6
        served = status == 200
        dim = (tenant, rng.choice(keys[tenant]), "openai" if rng.random() < 0.7 else "anthropic", layer, backend,
               "vllm", model, stream, "stop" if served else None, None, "selfhost", "gpt-5.4")  # fmt: skip
        prompt = int(rng.lognormvariate(6.5, 1.0)) if served else 0
        completion = int(rng.lognormvariate(5.0, 0.9)) if served else 0
        latency = rng.lognormvariate(-0.5, 0.8)
        batch.append((
            new_id(), f"req_{i:012x}", ts, dim, status, code, False, prompt, completion,
            int(completion * 0.3) if layer == "coding" else 0, int(prompt * 0.2), True, False,
            latency, latency * 0.15 if stream else None, 1, None,
            (prompt + completion) * 2e-7, (prompt + completion) * 1e-7, 0.4, (prompt * 2.5 + completion * 15) / 1e6,
        ))  # fmt: skip
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def file_rows(url: str, rows: int, *, rollups_on: bool = True, span_s: float = 30 * DAY) -> float:
    """File `rows` synthetic requests; µs of CPU per row spent in `write_values` (SQL, interning, rollups): the
    thread's CPU time, which waiting for a core on a busy machine does not inflate."""
    from owstack import storage
    from owstack.metering import ledger, rollups

    storage.migrate(url)
    dims = ledger.Dims()
    spent = 0.0
    saved = rollups.add, rollups.unfiled
    if not rollups_on:
        rollups.add, rollups.unfiled = (lambda *a, **k: 0), (lambda conn, values: values)  # type: ignore[assignment]
    try:
        with storage.engine(url).connect() as conn:
            for n, batch in enumerate(synthetic(rows, span_s=span_s)):
                started = time.thread_time()
                ledger.write_values(conn, batch, dims)
                spent += time.thread_time() - started
                if rollups_on and n % 100 == 0:
                    say(f"  filed {(n + 1) * BATCH:,} rows")
    finally:
        rollups.add, rollups.unfiled = saved
    return spent / rows * 1e6


PAGES = [
    "/ui/", "/ui/?range=7d", "/ui/?range=365d", "/ui/?range=30d&tenant=tenant-0",
    "/ui/usage?by=layer&range=7d", "/ui/usage?by=backend&range=30d", "/ui/usage?by=model&range=30d",
    "/ui/usage?by=tenant&range=365d", "/ui/usage?by=adapter&range=7d", "/ui/usage?by=model&range=90d",
    "/ui/usage?by=layer&range=24h", "/ui/usage?by=layer&range=1h", "/ui/usage.csv?by=tenant&range=30d",
    "/ui/backends", "/ui/tenants", "/ui/requests", "/ui/requests?tenant=tenant-3&status=errors",
    "/ui/requests?code=residency_violation", "/ui/compliance", "/ui/security", "/ui/about",
]  # fmt: skip


async def time_pages(url: str, repeat: int) -> dict[str, dict[str, float]]:
    from owstack.config.load import from_dict
    from owstack.tenancy.keys import KeyStore
    from owstack.ui.console import Console
    from owstack.ui.session import COOKIE, Session

    home = Path(url.removeprefix("sqlite:///")).parent
    config = from_dict({
        "storage": {"url": url},
        "audit": {"directory": str(home / "audit"), "keys_directory": str(home / "keys")},
        "backends": {b: {"engine": "vllm", "url": "http://gpu.invalid/v1", "model": f"{b}-model", "hardware": "8xH100",
                         "catalog": "nemotron-3-super"} for bs, _ in LAYERS.values() for b in bs},
        "layers": {layer: {"backends": bs} for layer, (bs, _) in LAYERS.items()},
        "tenants": {t: {"budget_usd_month": 1000, "requests_per_minute": 600} for t in TENANTS},
    })  # fmt: skip
    _, admin = KeyStore(url).create("console-admin", admin=True)
    console = Console(config, host="127.0.0.1")
    await console.start()
    problem = await console.prepare()
    if problem is not None:
        raise RuntimeError(problem)
    cookie = console.sessions.issue(Session.new(f"key:{admin.key_id}", "admin"))
    out: dict[str, dict[str, float]] = {}
    transport = httpx.ASGITransport(app=console)
    async with httpx.AsyncClient(transport=transport, base_url="http://console", cookies={COOKIE: cookie}) as client:
        for path in [*PAGES, "/ui/requests/{id}"]:
            if path == "/ui/requests/{id}":
                page = (await client.get("/ui/requests")).text
                path = "/ui/requests/" + page.split('href="/ui/requests/', 1)[1].split('"', 1)[0]
            got = await client.get(path)  # warm-up (and the status to check)
            if got.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {got.status_code}: {got.text[:300]}")
            times, cpu = [], []
            for _ in range(repeat):
                started, used = time.perf_counter(), time.process_time()
                await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - used) * 1000)
            out[path] = {"median_ms": statistics.median(times), "max_ms": max(times), "bytes": len(got.content),
                         "cpu_median_ms": statistics.median(cpu), "cpu_max_ms": max(cpu)}  # fmt: skip
            say(f"  {path:45s} wall median {out[path]['median_ms']:6.1f} ms, slowest {max(times):6.1f}; "
                f"CPU median {out[path]['cpu_median_ms']:6.1f} ms, most {max(cpu):6.1f}")  # fmt: skip
    await console.aclose()
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, seconds: float, concurrency: int) -> int:
    body = {"model": "edge", "messages": [{"role": "user", "content": "Write one short sentence."}], "max_tokens": 32}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                r = await client.post("/v1/chat/completions", json=body)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def load(port: int, seconds: float, concurrency: int) -> int:
    """`drive` on a thread of its own (Playwright's sync API keeps an event loop on this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, drive(port, seconds, concurrency)).result()


def gateway_ab(db: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    up_port = free_port()
    upstream = start("upstream", [sys.executable, str(REPO / "tests" / "fakes" / "upstream.py"), str(up_port)],
                     workdir=work, cores=None)  # fmt: skip
    kinds = args.variants.split(",")
    results: dict[str, dict[str, list[float]]] = {k: {"cpu_us": [], "rps": [], "ledger_cpu_us": []} for k in kinds}
    try:
        wait_http(upstream, f"http://127.0.0.1:{up_port}/health")
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run"])  # fmt: skip
            for round_ in range(args.rounds):
                for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
                    port = free_port()
                    config = {
                        "storage": {"url": f"sqlite:///{db}"},
                        "backends": {"up": {"engine": "vllm", "url": f"http://127.0.0.1:{up_port}/v1", "model": "fake",
                                            "health_check": False}},
                        "ui": {"enabled": kind != "A", "refresh_s": args.refresh_s},
                    }  # fmt: skip
                    (work / f"gw-{port}.yaml").write_text(yaml.safe_dump(config))
                    cmd = [sys.executable, "-m", "owstack", "serve", "--config", str(work / f"gw-{port}.yaml"),
                           "--port", str(port), "--log-level", "warning"]  # fmt: skip
                    gw = start(f"gateway-{kind}-{round_}", cmd, workdir=work, cores=None)
                    page = None
                    try:
                        wait_http(gw, f"http://127.0.0.1:{port}/readyz")
                        load(port, 3, args.concurrency)  # warm-up
                        if kind == "B":
                            page = chromium.new_page()
                            page.goto(f"http://127.0.0.1:{port}/ui/?refresh=on")
                            page.wait_for_function("() => document.querySelectorAll('figure.chart.drawn').length >= 3")
                        ledger = [pid for pid in tree_pids(gw.pid) if pid != gw.pid]
                        before = cpu_seconds(gw.pid), sum(cpu_seconds(p) for p in ledger)
                        started = time.monotonic()
                        n = load(port, args.seconds, args.concurrency)
                        elapsed = time.monotonic() - started
                        after = cpu_seconds(gw.pid), sum(cpu_seconds(p) for p in ledger)
                        results[kind]["cpu_us"].append((after[0] - before[0]) / n * 1e6)
                        results[kind]["ledger_cpu_us"].append((after[1] - before[1]) / n * 1e6)
                        results[kind]["rps"].append(n / elapsed)
                        got = {m: v[-1] for m, v in results[kind].items()}
                        say(f"  round {round_ + 1} {kind}: {got['cpu_us']:7.1f} µs gateway CPU/request, "
                            f"{got['rps']:7.1f} req/s, ledger process {got['ledger_cpu_us']:.1f} µs")  # fmt: skip
                    finally:
                        if page is not None:
                            page.close()
                        gw.stop()
            chromium.close()
    finally:
        upstream.stop()
    median = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in results.items()}
    ratios = {k: {"cpu": median[k]["cpu_us"] / median["A"]["cpu_us"], "rps": median[k]["rps"] / median["A"]["rps"]}
              for k in kinds if k != "A"}  # fmt: skip
    return {"rounds": results, "median": median, "ratios_to_A": ratios}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--baseline", type=int, default=100_000, help="rows filed again without the rollups")
    p.add_argument("--db", type=Path, help="a ledger from an earlier run (skips filing)")
    p.add_argument("--repeat", type=int, default=5, help="renders per page")
    p.add_argument("--skip-gateway", action="store_true")
    p.add_argument("--rounds", type=int, default=3, help="A/B rounds of the gateway part")
    p.add_argument("--seconds", type=float, default=40.0, help="seconds of traffic per round")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--refresh-s", type=int, default=30, help="the browser's auto-refresh interval (ui.refresh_s)")
    p.add_argument("--variants", default="A,B", help="A: console off; B: on, a browser on the overview; C: on, none")
    p.add_argument("--skip-pages", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="owstack-console-bench-"))
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    db = args.db or work / "ledger.db"
    if args.db is None:
        say(f"filing {args.rows:,} rows into {db}")
        out["filing_us_per_row"] = file_rows(f"sqlite:///{db}", args.rows)
        say(f"filing (CPU): {out['filing_us_per_row']:.1f} µs/row ({args.rows:,} rows over 30 days)")
        # the rollups' cost: `--baseline` rows with and without them, as history (a batch spans 43 minutes of
        # 30 days compressed: many minute rows per batch, the dear case) and as live traffic at 1,000 requests/s
        # (a batch spans about a second, as the writer's flush interval makes it)
        for name, span in (("history", 30 * DAY * args.baseline / args.rows), ("live", args.baseline / 1000)):
            for on in (True, False):
                key = f"filing_{name}_us_per_row_{'with' if on else 'without'}_rollups"
                out[key] = file_rows(f"sqlite:///{work / f'{key}.db'}", args.baseline, rollups_on=on, span_s=span)
            say(f"filing {args.baseline:,} rows as {name}: {out[f'filing_{name}_us_per_row_with_rollups']:.1f} µs/row "
                f"with rollups, {out[f'filing_{name}_us_per_row_without_rollups']:.1f} without")  # fmt: skip
    copy = work / "pages.db"
    shutil.copyfile(db, copy)
    if not args.skip_pages:
        say("pages:")
        out["pages"] = asyncio.run(time_pages(f"sqlite:///{copy}", args.repeat))
        slowest = max(out["pages"].items(), key=lambda kv: kv[1]["max_ms"])
        costliest = max(out["pages"].items(), key=lambda kv: kv[1]["cpu_max_ms"])
        say(f"slowest page: {slowest[0]} {slowest[1]['max_ms']:.0f} ms wall; most CPU: {costliest[0]} "
            f"{costliest[1]['cpu_max_ms']:.0f} ms")  # fmt: skip
    if not args.skip_gateway:
        say("gateway: console off (A); on, a browser on the overview refreshing (B); on, no browser (C):")
        out["gateway"] = gateway_ab(copy, args, work)
        for kind, ratio in out["gateway"]["ratios_to_A"].items():
            say(f"gateway CPU per request {kind}/A: {ratio['cpu']:.3f}; requests/s {kind}/A: {ratio['rps']:.3f}")
    result = BENCH / "results" / f"console-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    result.write_text(
        json.dumps(out, indent=1, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x)
    )
    say(f"wrote {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
