"""How much the meter stage adds to one request, and how fast the ledger writer drains.

    python bench/metering_overhead.py [--n 100000] [--url sqlite:///PATH] [--writer process|thread]

Prints microseconds per call of `MeterStage.after(ctx)` and of its parts (metrics, snapshot, queue
append), against an empty stage's `after` (metering off), then the writer's records per second for
the same records (counting, pricing and batched INSERTs on its thread). Contexts are built once, as the
gateway's pipeline would have left them: a served request with upstream usage, a stream without usage
(counted by the writer), a refused request and a 502 with a fallback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gwbench.procs import cpu_seconds

from owstack.config.load import from_dict
from owstack.metering.record import snapshot
from owstack.metering.stage import MeterStage
from owstack.pipeline.context import Attempt, RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.types import ChatRequest, Usage


def contexts(stream_backend: str) -> list[RequestContext]:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a GPU? " * 20}]
    out = []
    for i, (backend, status, usage) in enumerate(
        [
            ("gpu", 200, Usage(420, 130, 0, 64, True)),
            (stream_backend, 200, Usage()),
            (None, 401, Usage()),
            ("vllm", 502, Usage()),
        ]
    ):
        ctx = RequestContext(request_id=("usage", "stream-no-usage", "refused", "fallback-502")[i])
        ctx.request = ChatRequest(model="auto", messages=messages, stream=usage.reported is False)
        ctx.layer, ctx.backend, ctx.status, ctx.usage = "coding", backend, status, usage
        ctx.engine = "vllm" if backend == "gpu" else "llamacpp"
        ctx.output_text = ["A GPU is a processor ", "built for parallel work."] if status == 200 else []
        ctx.first_byte_at, ctx.finished_at = ctx.started + 0.05, ctx.started + 0.8
        if backend is not None:
            ctx.attempts = [Attempt(backend, "ok" if status == 200 else "upstream_error", 0.4)]
        if status == 502:
            ctx.attempts.insert(0, Attempt("gpu", "upstream_timeout", 0.3))
        out.append(ctx)
    return out


CHUNK = 1000


def per_call_us(fn: Callable[[RequestContext], object], ctxs: list[RequestContext], n: int) -> float:
    """Median over chunks of CHUNK calls (robust to other processes sharing the CPU), in microseconds."""
    gc.collect()
    k, times = len(ctxs), []
    for start in range(0, n, CHUNK):
        t0 = time.perf_counter()
        for i in range(start, start + CHUNK):
            fn(ctxs[i % k])
        times.append((time.perf_counter() - t0) / CHUNK * 1e6)
    return statistics.median(times)


def per_call_async_us(
    fn: Callable[[RequestContext], Awaitable[None]],
    ctxs: list[RequestContext],
    n: int,
    between: Callable[[], None] = lambda: None,
) -> float:
    """Like `per_call_us` for a coroutine function; `between()` runs untimed after each chunk."""

    async def loop() -> float:
        k, times = len(ctxs), []
        for start in range(0, n, CHUNK):
            t0 = time.perf_counter()
            for i in range(start, start + CHUNK):
                await fn(ctxs[i % k])
            times.append((time.perf_counter() - t0) / CHUNK * 1e6)
            between()
        return statistics.median(times)

    gc.collect()
    return asyncio.run(loop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="calls per measurement")
    parser.add_argument("--url", help="ledger database (default: a temporary SQLite file)")
    parser.add_argument("--gguf", action="store_true", help="count the usage-less stream with the GGUF tokenizer")
    parser.add_argument(
        "--writer", choices=("process", "thread"), default="process", help="metering.writer (default: process)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        config = from_dict(
            {
                "storage": {"url": url},
                # the journal is filed only by the flush below, so that its two costs are measured apart
                "metering": {"max_buffer": 10 * args.n, "writer": args.writer, "journal_spare_cpu": 2.0},
                "backends": {
                    "edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct"},
                    "gpu": {"engine": "vllm", "url": "http://gpu:8000/v1", "model": "nemotron", "hardware": "8xH100"},
                    "vllm": {"engine": "vllm", "url": "http://gpu:8000/v1", "model": "some-model"},
                },
            }
        )
        stage = MeterStage(config)
        writer = stage.writer
        assert writer is not None
        ctxs = contexts("edge-local" if args.gguf else "vllm")
        n = args.n
        off = per_call_async_us(BaseStage().after, ctxs, n)
        observe = per_call_us(stage.metrics.observe, ctxs, n)
        snap = per_call_us(snapshot, ctxs, n)
        # 1. the stage alone: the writer is not running; the queue is emptied between chunks, untimed
        alone = per_call_async_us(stage.after, ctxs, n, between=writer._queue.clear)
        for ctx in ctxs * (n // len(ctxs)):
            writer.submit(snapshot(ctx))
        # 2. the writer drains those n records: wall time and CPU time of the whole process; with the ledger
        # process, until they are journaled (its CPU then), and then until the flush has filed them
        submitted = writer.depth
        cpu0, wall0 = time.process_time(), time.perf_counter()
        writer.start()
        first_cpu = first_written = 0.0  # the ledger process's CPU once it has started and taken its first batch
        while writer.written + writer.rejected < submitted:
            pid = getattr(writer.sink, "pid", None)
            if not first_written and writer.written and pid is not None:
                first_cpu, first_written = cpu_seconds(pid), writer.written
            time.sleep(0.001)
        drain_wall, drain_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        pid = getattr(writer.sink, "pid", None)
        journal_cpu = cpu_seconds(pid) if pid is not None else 0.0
        file_wall = time.perf_counter()
        writer.flush(3600)
        file_wall = time.perf_counter() - file_wall
        filing_cpu = (cpu_seconds(pid) if pid is not None else 0.0) - journal_cpu
        # 3. the stage while the writer works alongside it (GIL shared with the writer thread)
        busy = per_call_async_us(stage.after, ctxs, n)
        writer.flush(3600)
        writer.close()
        kinds = ", ".join(c.request_id for c in ctxs)
        print(f"records: {kinds}; n={n} per measurement, median of {CHUNK}-call chunks; ledger {url.split(':')[0]}")
        print(f"after(), metering off (empty stage):        {off:6.2f} us/call")
        print(f"after(), metering on, writer idle:          {alone:6.2f} us/call")
        print(f"  Metrics.observe(ctx):                     {observe:6.2f} us/call")
        print(f"  snapshot(ctx):                            {snap:6.2f} us/call")
        print(f"after(), metering on, writer draining:      {busy:6.2f} us/call (GIL shared with the writer)")
        print(
            f"writer ({args.writer}): {n / drain_wall:,.0f} records/s, {drain_cpu / n * 1e6:.1f} us CPU per record "
            f"in the gateway's process (count, price, rows{', INSERT' if args.writer == 'thread' else ', encode'}); "
            f"written {writer.written}, rejected {writer.rejected}, dropped {writer.dropped}"
        )
        if pid is not None:
            journaling = (journal_cpu - first_cpu) / max(submitted - first_written, 1)
            print(
                f"ledger process: start-up and first batch {first_cpu:.2f} s CPU; journaling "
                f"{journaling * 1e6:.1f} us CPU per record after it; "
                f"filing the journal into the ledger {filing_cpu / n * 1e6:.1f} us per record, "
                f"{n / file_wall:,.0f} records/s"
            )


if __name__ == "__main__":
    main()
