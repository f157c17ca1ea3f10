"""CPU time per request of the gateway's ASGI app driven in-process, per thread: where the stages' cost goes.

    PYTHONPATH=src .venv/bin/python bench/inprocess_cpu.py owstack owstack+full [--requests 10000]
        [--concurrency 16] [--rounds 3] [--durable real|none|thread|thread-build] [--no-wal]

No HTTP server and no load generator: `concurrency` tasks call the app (`owstack.assembly.assemble`) with
the bench's chat request, against the bench's nginx upstream (gwbench/upstream.py, pinned to core 1; this
process pinned to core 0 with its threads). Each round prints requests/s and CPU µs per request, in total
and per thread (event loop, audit commit thread, ledger threads; user and kernel), the context switches per
request and the audit log's records per commit. The variants and their configs are gwbench/contenders.py's.

It is meant for questions `gateway_bench.py` cannot answer, never for the performance bar (whose figures
come from `gateway_bench.py` in one run): how much of a variant's cost is its stages' own code and how much
the durable writes. `--durable` replaces the audit writer's append (the variant's record is not written):

    real          the audit writer as configured (default)
    none          append returns at once: the stages' own code, no durable write
    thread        a stand-in commit thread that only completes the futures (the hand-off between threads)
    thread-build  the same thread also builds and hashes each record (the per-record work, no I/O)

and `--no-wal` stops the meter stage from writing the ledger's write-ahead log. Figures move by tens of
percent between runs on a shared VM (docs/benchmarks.md): compare variants within one invocation, in
several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from gwbench import contenders, procs, upstream

from owstack.api.responses import _replay

TICK = os.sysconf("SC_CLK_TCK")


def thread_times() -> collections.Counter[str]:
    """CPU seconds (user, `.sys` kernel) and context switches (`.cs`) per thread name of this process."""
    names = {t.native_id: t.name.split("-")[0] for t in threading.enumerate()}
    out: collections.Counter[str] = collections.Counter()
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/self/task/{tid}/status").read_text()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        out[name] += int(stat[11]) / TICK
        out[name + ".sys"] += int(stat[12]) / TICK
        out[name + ".cs"] += sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
    return out


def replace_append(mode: str) -> None:
    """Swap `AuditWriter.append` for a stand-in (see the module docstring)."""
    from owstack.compliance import writer as audit_writer
    from owstack.storage.threads import Handoff, background_priority

    if mode == "none":

        async def append(self: Any, record: Any) -> None:
            return None

    else:
        build = mode == "thread-build"
        items: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()

        def commit() -> None:
            background_priority()
            while True:
                batch = items.get()
                while not items.empty():
                    batch.extend(items.get())
                if build:
                    for entry, _, _ in batch:
                        audit_writer._hashed_line("0" * 64, entry() if callable(entry) else dict(entry))
                loop = batch[0][1]
                loop.call_soon_threadsafe(lambda done=batch: [f.set_result(None) for _, _, f in done if not f.done()])

        threading.Thread(target=commit, daemon=True, name="audit-standin").start()
        handoff: Handoff[Any] = Handoff(items.put)

        async def append(self: Any, record: Any) -> None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            handoff.add(loop, (record, loop, fut))
            await fut

    audit_writer.AuditWriter.append = append  # type: ignore[method-assign,assignment]


def build_app(variant: str, home: Path, upstream_port: int, no_wal: bool) -> tuple[Any, list[tuple[bytes, bytes]]]:
    from owstack.assembly import assemble
    from owstack.config.load import load

    metering, secure = contenders.VARIANTS[variant]
    config = contenders.owstack_config(home, upstream_port, metering, secure)
    config["metering"].update(contenders.METERING_OPTIONS.get(variant, {}))
    path = home / "owstack.yaml"
    path.write_text(yaml.safe_dump(config))
    headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")]
    if secure:
        headers.append((b"authorization", f"Bearer {contenders.create_key(path, home)}".encode()))
    os.chdir(home)
    app = assemble(load(path))
    if no_wal:
        for service in app.services:
            writer = getattr(service, "writer", None)
            if writer is not None and hasattr(writer, "wal"):
                writer.wal = None
                service.defer_durable = False  # type: ignore[attr-defined]
    return app, headers


async def drive(app: Any, headers: list[tuple[bytes, bytes]], args: argparse.Namespace, variant: str) -> None:
    body = json.dumps(contenders.CHAT_BODY).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def one() -> int:
        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), _replay(body), send)  # the body once, then no disconnect
        return status[0]

    started = asyncio.get_running_loop().create_future()

    async def lifespan_receive() -> dict[str, Any]:
        if not started.done():
            return {"type": "lifespan.startup"}
        await asyncio.Event().wait()
        return {"type": "lifespan.shutdown"}

    async def lifespan_send(message: dict[str, Any]) -> None:
        if not started.done():
            started.set_result(message["type"])

    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan_receive, lifespan_send)
    )
    if await started != "lifespan.startup.complete":
        raise SystemExit(f"{variant}: the app did not start")

    async def worker(n: int, codes: collections.Counter[int]) -> None:
        for _ in range(n):
            codes[await one()] += 1

    for r in range(args.rounds + 1):  # round 0 warms up
        n = args.requests if r else max(args.requests // 4, 500)
        codes: collections.Counter[int] = collections.Counter()
        before, cpu0, wall0 = thread_times(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(n // args.concurrency, codes) for _ in range(args.concurrency)))
        after, cpu1, wall1 = thread_times(), time.process_time(), time.perf_counter()
        if not r:
            continue
        done = sum(codes.values())
        per = {k: (after[k] - before.get(k, 0)) / done for k in after if after[k] - before.get(k, 0) > 0}
        parts = ", ".join(
            f"{k} {v * 1e6:.0f}" if not k.endswith(".cs") else f"{k} {v:.2f}" for k, v in sorted(per.items())
        )
        batches = ""
        for service in app.services:
            log = getattr(service, "log", None)
            if log is not None and getattr(log, "started", False):
                w = log.writer()
                batches = f"; audit records per commit {w.records_written / max(w.batches_written, 1):.1f}"
        print(
            f"{variant} round {r}: {done} requests {dict(codes)}, {done / (wall1 - wall0):,.0f} req/s, "
            f"CPU {(cpu1 - cpu0) / done * 1e6:.0f} µs/request ({parts}){batches}",
            flush=True,
        )
    lifespan.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="gwbench/contenders.py variants (owstack, owstack+full, ...)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--durable", choices=("real", "none", "thread", "thread-build"), default="real")
    parser.add_argument("--no-wal", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:  # one process per variant: nothing carries over from one to the next
        for variant in args.variants:
            child = [sys.executable, __file__, variant, "--child", "--requests", str(args.requests)]
            child += ["--concurrency", str(args.concurrency), "--rounds", str(args.rounds), "--durable", args.durable]
            child += ["--no-wal"] if args.no_wal else []
            procs.say(f"{variant}: durable={args.durable} wal={'off' if args.no_wal else 'on'}")
            subprocess.run(child, check=False, env=contenders.owstack_env())
        return
    variant = args.variants[0]
    work = Path(tempfile.mkdtemp(prefix="owstack-inprocess-"))
    port = procs.free_port()
    nginx = procs.start("nginx", upstream.nginx_command(upstream.write_conf(work, port)), workdir=work, cores={1})
    try:
        time.sleep(0.5)
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {0})
        if args.durable != "real":
            replace_append(args.durable)
        home = work / "gateway"
        home.mkdir()
        app, headers = build_app(variant, home, port, args.no_wal)
        import uvloop

        uvloop.run(drive(app, headers, args, variant))
    finally:
        nginx.stop()
    os._exit(0)  # the gateway's threads are not shut down: the figures are taken


if __name__ == "__main__":
    main()
