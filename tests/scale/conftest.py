"""Fixtures for the scale tests: a Redis key prefix and a PostgreSQL database of each test's own, removed
afterwards (the services are the machine's: Redis on 6379, PostgreSQL on 5432 with trust auth)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
    import psycopg

    name = f"owstack_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    yield url
    from owstack.storage import dispose

    dispose(url)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
