"""Benchmark: what the audit log's durability costs per request.

N concurrent "requests" (asyncio tasks) each build a realistic request record (HMACs, catalog facts,
retention) and await `AuditWriter.append`, which returns only once the record is fsynced (group commit).
The same loop without the append is the baseline. Reported: appends/s, the added wall time per request
at that concurrency (the durability cost), the append latency (p50/p99) each request waits, and how many
records share one fsync.

    .venv/bin/python bench/audit_durability.py                     # 16 concurrent, 4000 requests
    .venv/bin/python bench/audit_durability.py -c 1 -n 1000        # one at a time: the pure fsync latency
    .venv/bin/python bench/audit_durability.py --dir /var/lib/owstack-audit-bench --json

The directory (default: a temporary folder under the working directory, i.e. on the disk the log
would live on) is removed afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from owstack.compliance.records import request_record
from owstack.compliance.service import AuditLog
from owstack.config.load import from_dict
from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import ChatRequest, Usage


def make_ctx(i: int) -> RequestContext:
    ctx = RequestContext(request_id=f"req_{i:08d}", tenant="acme", key_id="key_1")
    ctx.request = ChatRequest(model="edge", messages=[{"role": "user", "content": f"question number {i} " * 20}])
    ctx.layer, ctx.backend, ctx.engine, ctx.model = "edge", "edge-local", "llamacpp", "smollm2-135m-instruct"
    ctx.output_text = ["an answer of moderate length " * 8]
    ctx.usage = Usage(prompt_tokens=60, completion_tokens=40)
    ctx.finish_reason = "stop"
    ctx.attempts = [Attempt("edge-local", "ok", 0.02)]
    ctx.finished_at = ctx.started + 0.02
    return ctx


async def run(log: AuditLog | None, concurrency: int, requests: int) -> tuple[float, list[float]]:
    waits: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            ctx = make_ctx(i)
            if log is None:
                await asyncio.sleep(0)
                continue
            record = request_record(ctx, keys=log.keys, facts=log.facts)
            t = time.perf_counter()
            await log.writer().append(record)
            waits.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return time.perf_counter() - start, waits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("-n", "--requests", type=int, default=4000)
    p.add_argument("--dir", type=Path, default=None, help="where to write the log (default: a temp dir here)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="audit.group_commit_delay_ms")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="audit-bench-", dir="."))
    audit = {
        "directory": str(root / "audit"),
        "keys_directory": str(root / "keys"),
        "group_commit_delay_ms": args.delay_ms,
    }
    log = AuditLog(from_dict({"audit": audit}))
    log.writer()
    try:
        base, _ = asyncio.run(run(None, args.concurrency, args.requests))
        with_audit, waits = asyncio.run(run(log, args.concurrency, args.requests))
        writer = log.writer()
        batches, records = writer.batches_written, writer.records_written
    finally:
        log.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    waits.sort()
    result: dict[str, Any] = {
        "concurrency": args.concurrency,
        "requests": args.requests,
        "appends_per_s": round(args.requests / with_audit),
        "added_ms_per_request": round((with_audit - base) / args.requests * 1000, 4),
        "append_wait_ms_p50": round(statistics.median(waits) * 1000, 3),
        "append_wait_ms_p99": round(waits[int(len(waits) * 0.99) - 1] * 1000, 3),
        "records_per_fsync": round(records / max(batches, 1), 1),
        "fsync_batches": batches,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
