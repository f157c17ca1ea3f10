"""Alembic migrations of owstack's database, run by `owstack.storage.migrate` (see its docstring)."""
