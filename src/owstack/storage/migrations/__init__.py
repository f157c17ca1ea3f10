"""Alembic migrations of owstack's database, run by `owstack.storage.migrator` (see its docstring)."""
