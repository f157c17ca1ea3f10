"""Fixtures for the metering tests: databases (as in tests/storage/conftest.py) and an outage proxy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from metering_helpers import TcpProxy
from psycopg import sql

from owstack import storage

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"


def _create_pg() -> tuple[str, str]:
    name = f"owstack_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop_pg(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own (owstack_test_<uuid>), dropped afterwards."""
    name, url = _create_pg()
    try:
        yield url
    finally:
        storage.dispose(url)
        _drop_pg(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    yield url
    storage.dispose(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The test runs twice: on SQLite and on PostgreSQL."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of PostgreSQL, and the URL of the test's database through it: `down()`
    makes the database unreachable (connections cut, new ones refused), `up()` brings it back."""
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    try:
        yield proxy, url
    finally:
        storage.dispose(url)
        proxy.close()
