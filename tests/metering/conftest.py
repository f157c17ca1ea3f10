"""Fixtures for the metering tests: databases (as in tests/storage/conftest.py) and an outage proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from metering_helpers import TcpProxy

from owstack import storage
from scratch_db import pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own (owstack_test_<uuid>), dropped afterwards."""
    with pg_database() as url:
        yield url


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
