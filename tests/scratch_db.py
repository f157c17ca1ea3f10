"""A PostgreSQL database of a test's own: created empty on 127.0.0.1:5432 (user postgres, trust auth) and
dropped afterwards, so tests never see each other's rows and the shared server keeps no state.

Import from any test area (or bench/, with tests/ on sys.path) as `from scratch_db import pg_database`:

    with pg_database() as url:          # postgresql://postgres@127.0.0.1:5432/owstack_test_<uuid>
        ...
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
PG_BASE = "postgresql://postgres@127.0.0.1:5432"


def create(prefix: str = "owstack_test") -> str:
    """Create `<prefix>_<uuid>`; returns its URL (drop it with `drop`)."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{PG_BASE}/{name}"


def drop(url: str) -> None:
    """Close owstack's connections to `url`'s database and drop it (with whatever still holds it open)."""
    import psycopg
    from psycopg import sql

    from owstack import storage

    storage.dispose(url)
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def pg_database(prefix: str = "owstack_test") -> Iterator[str]:
    url = create(prefix)
    try:
        yield url
    finally:
        drop(url)
