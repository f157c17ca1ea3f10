"""Schema migrations, run by owstack itself at start (no alembic.ini at run time).

    migrate(url)              upgrade the database to the newest revision (idempotent)
    pending_revisions(url)    what `migrate` would apply, oldest first
    current_revisions(url)    the revisions the database is at (empty before the first migration)
    alembic_config(url)       an Alembic `Config` for developer commands (`command.revision`, `history`)

The revisions live in `owstack/storage/migrations/versions/`, one file per revision, chained by
`down_revision` (0001_ledger <- 0002_keys <- ...). Every area adds its own file there; `migrate` applies
all of them. The version table is `owstack_schema_version`, so that owstack can share a PostgreSQL
database with other Alembic users.

Several gateway processes may start at once against one database. `migrate` serialises them: on
PostgreSQL with a transaction-scoped advisory lock, on SQLite with `BEGIN IMMEDIATE` (the write lock is
taken before the version table is read). Both engines run the DDL inside that one transaction, so a
failed upgrade leaves the schema as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from owstack.storage.db import SQLITE_BEGIN, engine

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "owstack_schema_version"
SCRIPT_LOCATION = Path(__file__).with_name("migrations")
#: an arbitrary constant: the key of the PostgreSQL advisory lock that serialises migrations
ADVISORY_LOCK_KEY = 0x6F77_7374_6163_6B  # "owstack"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic `Config` pointing at the packaged migrations (and at `url` or an open `connection`)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        cfg.attributes["owstack_url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(url: str, on_step: Callable[[str], None] | None = None) -> None:
    """Upgrade the database at `url` to the newest schema revision.

    Idempotent (at head it only reads the version table, without importing Alembic) and safe when several
    processes call it at once. `on_step(revision)` is called after each revision is applied (progress for
    `owstack db migrate`). Raises the driver's error wrapped by SQLAlchemy (`sqlalchemy.exc.OperationalError`,
    ...) when the database is unreachable.
    """
    if _at_head(url):
        return  # the usual restart: no Alembic import at all (it costs some 11 MB of memory)
    from alembic import command

    eng = engine(url)
    with eng.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with conn.begin():
            if not sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            cfg = alembic_config(connection=conn)
            if on_step is not None:
                cfg.attributes["on_version_apply"] = lambda *, step, **_: on_step(step.up_revision_id or "")
            command.upgrade(cfg, "heads")


def pending_revisions(url: str) -> tuple[str, ...]:
    """The revisions `migrate` would apply, oldest first (() at the newest)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    current = current_revisions(url)
    done = {r.revision for r in script.iterate_revisions(current, "base")} if current else set()
    return tuple(r.revision for r in reversed(list(script.walk_revisions())) if r.revision not in done)


_REVISION = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


@cache
def shipped_heads() -> frozenset[str]:
    """The newest revision ids in the versions folder, read from the files' `revision` and
    `down_revision` lines without importing Alembic (see `head_revisions` for Alembic's own view)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (SCRIPT_LOCATION / "versions").glob("*.py"):
        text_ = path.read_text(encoding="utf-8")
        found = _REVISION.search(text_)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(text_)
        if down is not None:
            parents.update(re.findall(r"""["']([^"']+)["']""", down.group(1)))
    return frozenset(revisions - parents)


def _at_head(url: str) -> bool:
    """True when the database's version table lists exactly the shipped heads (a read, no lock)."""
    with engine(url).connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return frozenset(found) == shipped_heads()


def current_revisions(url: str) -> tuple[str, ...]:
    """The revision ids the database is at; () when it has never been migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine(url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return tuple(sorted(ctx.get_current_heads()))


def head_revisions() -> tuple[str, ...]:
    """The newest revision ids shipped with this version of owstack."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))
