"""Database fixtures: a temporary SQLite file, or a PostgreSQL database of the test's own.

`pg_url` is tests/scratch_db.py's `pg_database()` (any area can use it): each test creates
`owstack_test_<uuid>` on 127.0.0.1:5432 as user postgres (trust auth) and drops it afterwards, so tests
never see each other's rows and the shared server keeps no state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from owstack import storage
from scratch_db import pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """`postgresql://postgres@127.0.0.1:5432/owstack_test_<uuid>`, created empty, dropped after the test."""
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
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url
