"""Migrations: run by owstack itself, idempotent, serialised across processes, matching the tables."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from owstack import storage
from owstack.metering.ledger import ledger, write_batch
from owstack.storage.migrator import VERSION_TABLE, current_revisions, head_revisions
from owstack.storage.schema import metadata


def test_migrate_creates_the_ledger_at_head_and_is_idempotent(db_url: str) -> None:
    assert current_revisions(db_url) == ()
    storage.migrate(db_url)
    heads = current_revisions(db_url)
    assert heads == head_revisions() and heads
    storage.migrate(db_url)
    assert current_revisions(db_url) == heads
    inspector = sa.inspect(storage.engine(db_url))
    tables = set(inspector.get_table_names())
    assert {"ledger_rows", "ledger_dims", VERSION_TABLE} <= tables
    assert inspector.get_view_names() == ["ledger"]  # what every reader queries
    assert "alembic_version" not in tables  # owstack's own version table, shareable database


def test_the_revision_chain_starts_with_0001_ledger() -> None:
    from alembic.script import ScriptDirectory

    from owstack.storage.migrator import alembic_config

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
    from owstack.storage.migrator import shipped_heads

    assert tuple(sorted(shipped_heads())) == head_revisions()


def test_a_database_at_head_is_checked_without_importing_alembic(db_url: str) -> None:
    storage.migrate(db_url)
    code = f"import sys; from owstack.storage import migrate; migrate({db_url!r}); print('alembic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


WIDE_ROWS = [
    {  # a served stream with a fallback
        "id": "0" * 31 + "a", "request_id": "req-1", "received_at": datetime(2026, 11, 27, 9, 0, 1, 250000, tzinfo=UTC),
        "day": date(2026, 11, 27), "tenant": "acme", "key_id": "k1", "protocol": "openai", "layer": "coding",
        "backend": "gpu", "engine": "vllm", "model": "nemotron", "stream": True, "status": 200, "error_code": None,
        "finish_reason": "stop", "client_disconnected": False, "reasoning_policy": "budget:64", "prompt_tokens": 10,
        "completion_tokens": 20, "reasoning_tokens": 5, "cached_tokens": 2, "tokens_reported": True,
        "tokens_estimated": False, "latency_s": 1.5, "ttft_s": 0.25, "attempts": 2, "fallbacks": 1,
        "attempt_log": [{"backend": "a", "outcome": "upstream_error", "latency_s": 0.1}],
        "cost_usd": 0.01, "cost_kind": "selfhost", "capital_usd": 0.008, "utilization": 0.5,
        "counterfactual_usd": 0.05, "counterfactual_model": "gpt-5.4",
    },
    {  # a refusal: most dimensions NULL (they must still match their combination when moved)
        "id": "0" * 31 + "b", "request_id": "req-2", "received_at": datetime(2026, 11, 28, 0, 0, 0, 1, tzinfo=UTC),
        "day": date(2026, 11, 28), "tenant": "default", "key_id": None, "protocol": "anthropic", "layer": None,
        "backend": None, "engine": None, "model": None, "stream": False, "status": 401, "error_code": "invalid_api_key",
        "finish_reason": None, "client_disconnected": False, "reasoning_policy": None, "prompt_tokens": 0,
        "completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0, "tokens_reported": False,
        "tokens_estimated": False, "latency_s": None, "ttft_s": None, "attempts": 0, "fallbacks": 0,
        "attempt_log": None, "cost_usd": None, "cost_kind": "none", "capital_usd": None, "utilization": None,
        "counterfactual_usd": None, "counterfactual_model": None,
    },
]  # fmt: skip


def _wide(conn: sa.Connection) -> list[dict[str, object]]:
    """The rows of 0001's table or of the view, without their ids, in time order."""
    table = sa.table("ledger", *(sa.column(c.name, c.type) for c in ledger.columns if c.name != "id"))
    found = conn.execute(sa.select(table).order_by(table.c.received_at)).mappings().all()
    return [{k: (v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v) for k, v in r.items()}
            for r in found]  # fmt: skip


def test_0003_moves_the_wide_rows_into_the_compact_tables_and_back(db_url: str) -> None:
    """Upgrading a ledger with rows keeps every value (read through the view), and so does the downgrade."""
    from alembic import command

    from owstack.storage.migrator import alembic_config

    expected = [{k: v for k, v in r.items() if k != "id"} for r in WIDE_ROWS]
    eng = storage.engine(db_url)
    with eng.connect() as conn, conn.begin():
        command.upgrade(alembic_config(connection=conn), "0002_keys")
    types = {"id": sa.String(32), "attempt_log": sa.JSON(none_as_null=True)}  # as 0001 declared them
    wide = sa.table("ledger", *(sa.column(c.name, types.get(c.name, c.type)) for c in ledger.columns))
    with eng.begin() as conn:
        conn.execute(sa.insert(wide), WIDE_ROWS)
    storage.migrate(db_url)
    with eng.connect() as conn:
        assert _wide(conn) == expected
        assert conn.execute(sa.select(sa.func.count()).select_from(sa.table("ledger_dims"))).scalar() == 2
    later = {**expected[0], "request_id": "req-3", "received_at": datetime(2026, 11, 27, 12, tzinfo=UTC)}
    write_batch(eng, [later])  # the same combination: the moved dims row is reused
    with eng.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sa.table("ledger_dims"))).scalar() == 2
    with eng.connect() as conn, conn.begin():
        command.downgrade(alembic_config(connection=conn), "0002_keys")
    inspector = sa.inspect(eng)
    assert "ledger" in inspector.get_table_names() and "ledger_rows" not in inspector.get_table_names()
    with eng.connect() as conn:
        assert _wide(conn) == [expected[0], later, expected[1]]
        ids = conn.execute(sa.text("SELECT id FROM ledger")).scalars().all()
    assert len(ids) == 3 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    storage.migrate(db_url)  # and up again
    with eng.connect() as conn:
        assert _wide(conn) == [expected[0], later, expected[1]]
