"""Database engines and schema migrations: SQLite (embedded default) and PostgreSQL through one layer.

    engine(url) -> sqlalchemy.engine.Engine    cached per URL (see `owstack.storage.db`)
    migrate(url) -> None                       upgrade to the newest revision; idempotent, process-safe

URLs: `sqlite:///owstack.db` (made absolute against the config file's folder when the config loads), `sqlite:////abs/path.db`,
`postgresql://user:password@host:5432/db` (driven by psycopg 3).

SQLAlchemy is imported with the first of these names used, not with the package: its submodules that need
no database (`storage.threads`, `storage.durable`) are imported by the audit log and the meter stage, and a
gateway with neither a ledger nor keys in a database never loads the SQL layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from owstack.storage.db import dispose, engine, error_reason, in_memory, is_outage, safe_url
    from owstack.storage.migrator import migrate

__all__ = ["dispose", "engine", "error_reason", "in_memory", "is_outage", "migrate", "safe_url"]

_HOME = {name: "owstack.storage.db" for name in __all__} | {"migrate": "owstack.storage.migrator"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'owstack.storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
