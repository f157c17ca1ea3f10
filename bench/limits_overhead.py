"""How much the limit stage adds to one request: `before` + `after` in memory and on Redis.

    python bench/limits_overhead.py [--n 20000] [--redis redis://127.0.0.1:6379/0] [--concurrency 64]

Cases (microseconds per request, `before` then `after`; the median over chunks of 1,000 requests, the
lowest of three rounds):

    no caps          a tenant without caps (the stage's cost for everyone else)
    rpm+tpm          request and token caps: estimate, reserve, headers; settle the token difference
    rpm+tpm+budget   the same plus the budget check and the request's cost priced and charged
    on Redis         the same cases against a real Redis (one EVALSHA in before, one in after), sequential
    concurrent       requests per second with --concurrency requests in flight on one event loop, and the
                     process's CPU per request (on Redis: mostly redis-py's client)

Caps are set high so that nothing is refused. On Redis the keys go under a prefix of the run's own and are
deleted at the end. Compare only figures from one run: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import orjson

from owstack.config.load import Config, from_dict
from owstack.pipeline.context import Attempt, RequestContext
from owstack.tenancy.limits import LimitStage
from owstack.tenancy.limits.bucket import Limiter
from owstack.tenancy.limits.config import LimitsSection
from owstack.tenancy.limits.memory import MemoryLimiter
from owstack.types import ChatRequest, Usage

CHUNK = 1000
BIG = 10**9


def config() -> Config:
    return from_dict(
        {
            "backends": {
                "gpu": {"engine": "vllm", "url": "http://10.0.0.1:8000/v1", "model": "m", "hardware": "8xH100"}
            },
            "tenants": {
                "none": {},
                "rate": {"requests_per_minute": BIG, "tokens_per_minute": BIG},
                "all": {"requests_per_minute": BIG, "tokens_per_minute": BIG, "budget_usd_month": 1e12},
            },
        }
    )


def make_contexts(cfg: Config, tenant: str, n: int) -> list[RequestContext]:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a GPU? " * 20}]
    body = orjson.dumps({"model": "coding", "messages": messages, "max_tokens": 200})
    out = []
    for i in range(n):
        ctx = RequestContext(request_id=f"r{i}", tenant=tenant)
        ctx.policy = cfg.file.tenants[tenant]
        ctx.body = body
        ctx.request = ChatRequest(model="coding", messages=messages, params={"max_tokens": 200})
        ctx.layer, ctx.backend, ctx.usage = "coding", "gpu", Usage(95, 130, 0, 0, True)
        ctx.attempts = [Attempt("gpu", "ok", 0.8)]
        ctx.finished_at = ctx.started + 0.8
        out.append(ctx)
    return out


async def sequential_us(stage: LimitStage, cfg: Config, tenant: str, n: int) -> float:
    """The lowest chunk median of three rounds: the cost with the least interference from other processes."""
    return min([await _median_us(stage, cfg, tenant, n) for _ in range(3)])


async def _median_us(stage: LimitStage, cfg: Config, tenant: str, n: int) -> float:
    chunks = []
    for _ in range(max(n // CHUNK, 1)):
        ctxs = make_contexts(cfg, tenant, CHUNK)
        t0 = time.perf_counter()
        for ctx in ctxs:
            await stage.before(ctx)
            await stage.after(ctx)
        chunks.append((time.perf_counter() - t0) / CHUNK * 1e6)
    return statistics.median(chunks)


async def concurrent_rps(stage: LimitStage, cfg: Config, tenant: str, n: int, concurrency: int) -> tuple[float, float]:
    """Requests per second, and this process's CPU microseconds per request."""
    ctxs = make_contexts(cfg, tenant, n)
    queue = iter(ctxs)

    async def worker() -> None:
        for ctx in queue:
            await stage.before(ctx)
            await stage.after(ctx)

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0), (time.process_time() - cpu0) / n * 1e6


async def run_cases(label: str, limiter: Limiter, cfg: Config, n: int, concurrency: int) -> None:
    stage = LimitStage(cfg, limiter=limiter, section=LimitsSection(seed_from_ledger=False))
    for tenant, case in (("none", "no caps"), ("rate", "rpm+tpm"), ("all", "rpm+tpm+budget")):
        us = await sequential_us(stage, cfg, tenant, n)
        print(f"{label:<8} {case:<16} {us:9.2f} µs per request (before + after)")
    rps, cpu = await concurrent_rps(stage, cfg, "all", n, concurrency)
    print(
        f"{label:<8} {'concurrent':<16} {rps:9.0f} requests/s, {cpu:.1f} µs of CPU each "
        f"(rpm+tpm+budget, {concurrency} in flight)"
    )
    await stage.aclose()


async def redis_cases(url: str, n: int, concurrency: int) -> None:
    import redis.asyncio as aredis

    from owstack.tenancy.limits.redis_store import RedisLimiter

    prefix = f"owstack-bench-{uuid.uuid4().hex[:8]}:"
    client = aredis.Redis.from_url(url)
    try:
        t0 = time.perf_counter()
        for _ in range(1000):
            await client.ping()
        print(f"{'redis':<8} {'PING (baseline)':<16} {(time.perf_counter() - t0) * 1000:9.2f} µs per round trip")
        await run_cases("redis", RedisLimiter(url, prefix=prefix, timeout_s=2.0), config(), n, concurrency)
    finally:
        async for key in client.scan_iter(match=prefix + "*"):
            await client.delete(key)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="requests per case (default 20000)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL, or 'none' to skip")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run_cases("memory", MemoryLimiter(), config(), args.n, args.concurrency))
    if args.redis != "none":
        asyncio.run(redis_cases(args.redis, max(args.n // 4, CHUNK), args.concurrency))


if __name__ == "__main__":
    main()
