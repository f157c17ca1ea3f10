"""Migration 0002_keys: creates what tenancy/tables.py declares, on SQLite and PostgreSQL, and reverses."""

from __future__ import annotations

import sqlalchemy as sa

from owstack.storage import engine, migrate
from owstack.tenancy.tables import api_key_revision, api_keys


def columns(url: str, table: str) -> dict[str, tuple[bool, str]]:
    inspector = sa.inspect(engine(url))
    return {c["name"]: (c["nullable"], type(c["type"]).__name__) for c in inspector.get_columns(table)}


def test_migration_matches_the_declared_tables(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # idempotent
    for table in (api_keys, api_key_revision):
        found = columns(db_url, table.name)
        assert list(found) == [c.name for c in table.columns]
        assert {name: nullable for name, (nullable, _) in found.items()} == {c.name: c.nullable for c in table.columns}
    inspector = sa.inspect(engine(db_url))
    assert inspector.get_pk_constraint("api_keys")["constrained_columns"] == ["key_id"]
    assert [ix["column_names"] for ix in inspector.get_indexes("api_keys")] == [["tenant"]]
    with engine(db_url).connect() as conn:
        assert conn.execute(sa.select(api_key_revision)).all() == [(1, 0)]


def test_downgrade_removes_the_key_tables(db_url: str) -> None:
    from alembic import command

    from owstack.storage.migrator import alembic_config

    migrate(db_url)
    with engine(db_url).connect() as conn, conn.begin():
        command.downgrade(alembic_config(connection=conn), "0001_ledger")
    tables = set(sa.inspect(engine(db_url)).get_table_names())
    assert "api_keys" not in tables and "api_key_revision" not in tables and "ledger" in tables
    migrate(db_url)
    assert {"api_keys", "api_key_revision"} <= set(sa.inspect(engine(db_url)).get_table_names())
