"""Checking a storage URL without SQLAlchemy (config validation runs in every gateway; SQLAlchemy loads only
with a feature that opens the database). `storage.db.resolve_url` parses it for real when that happens and
gives the same errors."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from owstack.errors import ConfigError

ALLOWED = "sqlite:///PATH or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_.+-]*)://")


def redacted(url: str) -> str:
    """The URL with any password replaced by ***."""
    return re.sub(r"^([^:/]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def check_url(url: str) -> None:
    """Raise `ConfigError` (naming `storage.url` and the accepted forms) unless `url` is a SQLite or
    PostgreSQL (psycopg 3) URL."""
    match = _SCHEME.match(url)
    if match is None:
        raise ConfigError(f"storage.url: {redacted(url)!r} is not a database URL; use {ALLOWED}")
    name = match.group(1)
    backend, _, driver = name.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        try:
            urlsplit(url).port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            raise ConfigError(f"storage.url: {redacted(url)!r} is not a database URL; use {ALLOWED}") from None
        return
    raise ConfigError(f"storage.url: unsupported database {name!r}; use {ALLOWED} (PostgreSQL via psycopg 3)")
