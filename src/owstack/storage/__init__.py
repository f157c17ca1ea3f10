"""Database engines and schema migrations: SQLite (embedded default) and PostgreSQL through one layer.

    engine(url) -> sqlalchemy.engine.Engine    cached per URL (see `owstack.storage.db`)
    migrate(url) -> None                       upgrade to the newest revision; idempotent, process-safe

URLs: `sqlite:///owstack.db` (made absolute against the config file's folder when the config loads), `sqlite:////abs/path.db`,
`postgresql://user:password@host:5432/db` (driven by psycopg 3).
"""

from owstack.storage.db import dispose, engine, error_reason, in_memory, is_outage, safe_url
from owstack.storage.migrate import migrate

__all__ = ["dispose", "engine", "error_reason", "in_memory", "is_outage", "migrate", "safe_url"]
