"""Migrations: run by owstack itself, idempotent, serialised across processes, matching the tables."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from owstack import storage
from owstack.metering.ledger import ledger
from owstack.storage.migrate import VERSION_TABLE, current_revisions, head_revisions
from owstack.storage.schema import metadata


def test_migrate_creates_the_ledger_at_head_and_is_idempotent(db_url: str) -> None:
    assert current_revisions(db_url) == ()
    storage.migrate(db_url)
    heads = current_revisions(db_url)
    assert heads == head_revisions() and heads
    storage.migrate(db_url)
    assert current_revisions(db_url) == heads
    tables = set(sa.inspect(storage.engine(db_url)).get_table_names())
    assert {"ledger", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # owstack's own version table, shareable database


def test_the_revision_chain_starts_with_0001_ledger() -> None:
    from alembic.script import ScriptDirectory

    from owstack.storage.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    chain = [rev.revision for rev in script.walk_revisions()]
    assert chain[-1] == "0001_ledger"
    assert script.get_revision("0001_ledger").down_revision is None


def test_ledger_declaration_matches_what_the_migration_creates(db_url: str) -> None:
    storage.migrate(db_url)
    with storage.engine(db_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diffs = compare_metadata(ctx, metadata)
    ledger_diffs = [d for d in diffs if "ledger" in repr(d)]
    assert ledger_diffs == []
    columns = {c["name"] for c in sa.inspect(storage.engine(db_url)).get_columns("ledger")}
    assert columns == {c.name for c in ledger.columns}


def test_several_processes_migrating_at_once_all_succeed(db_url: str) -> None:
    code = f"from owstack.storage import migrate; migrate({db_url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0], [err for _, err in results]
    assert current_revisions(db_url) == head_revisions()
    with storage.engine(db_url).connect() as conn:
        assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {VERSION_TABLE}")).scalar() == len(head_revisions())


def test_shipped_heads_read_without_alembic_match_alembics_view() -> None:
    from owstack.storage.migrate import shipped_heads

    assert tuple(sorted(shipped_heads())) == head_revisions()


def test_a_database_at_head_is_checked_without_importing_alembic(db_url: str) -> None:
    storage.migrate(db_url)
    code = f"import sys; from owstack.storage import migrate; migrate({db_url!r}); print('alembic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
