"""Alembic environment: run by `owstack.storage.migrator` with an open connection in a transaction.

For developer commands without a connection (e.g. `command.revision(alembic_config(url), ...)` with
`autogenerate=True`), the URL comes from `alembic_config(url)` or the OWSTACK_STORAGE_URL variable.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from owstack.storage.migrator import VERSION_TABLE
from owstack.storage.schema import load_tables


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=load_tables(),
        version_table=VERSION_TABLE,
        # SQLite runs DDL in a transaction too (owstack's engine emits BEGIN itself)
        transactional_ddl=True,
        render_as_batch=sqlite,
        # progress for `owstack db migrate` (owstack.storage.migrator.migrate's on_step)
        on_version_apply=context.config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("owstack_url") or os.environ.get("OWSTACK_STORAGE_URL")
    if not url:
        raise SystemExit("no database: pass alembic_config(url) or set OWSTACK_STORAGE_URL")
    from owstack.storage.db import engine

    with engine(url).connect() as conn, conn.begin():
        _run(conn)


main()
