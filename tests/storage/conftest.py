"""Database fixtures: a temporary SQLite file, or a PostgreSQL database of the test's own.

Copy `pg_url` into another area's conftest.py to get the same isolation: each test creates
`owstack_test_<uuid>` on 127.0.0.1:5432 as user postgres (trust auth) and drops it afterwards, so tests
never see each other's rows and the shared server keeps no state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from owstack import storage

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """`postgresql://postgres@127.0.0.1:5432/owstack_test_<uuid>`, created empty, dropped after the test."""
    name = f"owstack_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        storage.dispose(url)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    yield url
    storage.dispose(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The test runs twice: on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url
