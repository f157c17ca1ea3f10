"""Fixtures for the scale tests: a Redis key prefix and a PostgreSQL database of each test's own, removed
afterwards (the services are the machine's: Redis on 6379, PostgreSQL on 5432 with trust auth)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scratch_db import pg_database

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    import redis

    p = f"owstack-scale-{uuid.uuid4().hex[:12]}:"
    yield p
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=p + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_database("owstack_scale") as url:
        yield url


class Replicas:
    """Mock vLLM replicas (bench/prefix_replica.py) in one process, one port each."""

    def __init__(self, tmp: Path, count: int, *args: str) -> None:
        from procs import ROOT, free_port, spawn, wait_http

        self.ports = [free_port() for _ in range(count)]
        log = tmp / f"replicas-{self.ports[0]}.log"
        cmd = [sys.executable, str(ROOT / "bench" / "prefix_replica.py"), *map(str, self.ports), *args]
        self.proc = spawn(cmd, log)
        for port in self.ports:
            wait_http(f"http://127.0.0.1:{port}/health", self.proc, log, timeout=30)

    def backend(self, i: int, **extra: Any) -> dict[str, Any]:
        return {"engine": "vllm", "url": f"http://127.0.0.1:{self.ports[i]}/v1", "model": "mock", **extra}

    def stats(self, i: int) -> dict[str, Any]:
        import httpx

        return dict(httpx.get(f"http://127.0.0.1:{self.ports[i]}/stats", timeout=10).json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., Replicas]]:
    """`replicas(n, "--decode-ms", "100")` starts n mock replicas (stopped after the test)."""
    started: list[Replicas] = []

    def start(count: int, *args: str) -> Replicas:
        r = Replicas(tmp_path, count, *args)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()
