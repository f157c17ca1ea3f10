"""Shared pieces of the limit tests: a controllable clock, limiter factories for memory and the real Redis
(a unique key prefix per test, every key under it deleted afterwards), configs and request contexts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis

from owstack.config.load import Config, from_dict
from owstack.pipeline.context import RequestContext
from owstack.tenancy.limits.bucket import Limiter
from owstack.tenancy.limits.memory import MemoryLimiter
from owstack.tenancy.limits.redis_store import RedisLimiter
from owstack.types import ChatRequest

REDIS_URL = "redis://127.0.0.1:6379/0"
#: 2026-11-20 12:00:00 UTC
T0 = 1_795_176_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def keys_under(prefix: str) -> list[bytes]:
    r = redis.Redis.from_url(REDIS_URL)
    try:
        return sorted(r.scan_iter(match=prefix + "*", count=1000))
    finally:
        r.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    p = f"owstack-test-{uuid.uuid4().hex[:12]}:"
    yield p
    r = redis.Redis.from_url(REDIS_URL)
    try:
        for key in r.scan_iter(match=p + "*", count=1000):
            r.delete(key)
    finally:
        r.close()


LimiterFactory = Callable[[], Limiter]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_limiter(request: pytest.FixtureRequest) -> LimiterFactory:
    """A factory (call it inside the event loop that uses the limiter): memory, or Redis under a fresh prefix."""
    if request.param == "memory":
        return MemoryLimiter
    p: str = request.getfixturevalue("prefix")
    return lambda: RedisLimiter(REDIS_URL, prefix=p, timeout_s=2.0)


def config(tenants: dict[str, dict[str, Any]], **extra: Any) -> Config:
    backends = {
        "gpu": {"engine": "vllm", "url": "http://10.0.0.1:8000/v1", "model": "m", "hardware": "8xH100"},
        "api": {
            "engine": "openai",
            "url": "http://10.0.0.2/v1",
            "model": "gpt-5.4",
            "proprietary": True,
            "jurisdiction": "us",
        },
        "free": {"engine": "vllm", "url": "http://10.0.0.3:8000/v1", "model": "m"},
    }
    layers = {"coding": {"backends": ["gpu"]}, "edge": {"backends": ["free"]}, "multimodal": {"backends": ["api"]}}
    return from_dict({"backends": backends, "layers": layers, "tenants": tenants, **extra})


def context(
    tenant: str, cfg: Config, *, content: str = "hi", max_tokens: int | None = None, **kw: Any
) -> RequestContext:
    body: dict[str, Any] = {"model": "coding", "messages": [{"role": "user", "content": content}]}
    params: dict[str, Any] = {}
    if max_tokens is not None:
        body["max_tokens"] = params["max_tokens"] = max_tokens
    raw = orjson.dumps(body)
    ctx = RequestContext(request_id=f"req-{uuid.uuid4().hex[:8]}", tenant=tenant, **kw)
    ctx.policy = cfg.file.tenants.get(tenant)
    ctx.body = raw
    ctx.request = ChatRequest(model="coding", messages=body["messages"], params=params)
    return ctx
