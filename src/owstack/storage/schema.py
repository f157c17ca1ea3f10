"""The one `MetaData` every owstack table is declared on (SQLAlchemy Core).

Each area declares its tables in its own module on this `metadata` (the ledger: `owstack.metering.ledger`)
and adds a revision file under `storage/migrations/versions/`. The migrations, not `create_all`, create
the tables; the declarations are what queries are written against and what `autogenerate` compares.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

#: constraint names that are the same on SQLite and PostgreSQL, so later migrations can refer to them
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: modules that declare tables on `metadata` (imported by `load_tables` for autogenerate)
TABLE_MODULES: tuple[str, ...] = (
    "owstack.metering.ledger",
    "owstack.metering.journal",
    "owstack.tenancy.tables",
    "owstack.protocols.responses.store_sql",
)


def load_tables() -> list[MetaData]:
    """Import every table module that exists and return their `MetaData` objects (for autogenerate).

    A module may declare its tables on this `metadata` or on its own; both are returned."""
    found: list[MetaData] = [metadata]
    for name in TABLE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        other = getattr(module, "metadata", None)
        if isinstance(other, MetaData) and all(other is not m for m in found):
            found.append(other)
    return found
