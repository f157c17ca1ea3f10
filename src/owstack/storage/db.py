"""One SQLAlchemy engine per database URL: SQLite (embedded default) or PostgreSQL (shared store).

    engine("sqlite:///owstack.db")            WAL journal, busy timeout, explicit BEGIN (transactional DDL)
    engine("postgresql://user@host/db")      the psycopg 3 driver (postgresql+psycopg), pre-ping, timeouts
    is_outage(exc)                            True for errors worth retrying (database down, locked)
    error_reason(exc)                         the driver's first line of a database error, for messages
    in_memory(url)                            True for an in-memory SQLite URL (it exists in one process only)
    safe_url(url)                             the URL with its password masked, for messages and logs

Engines are cached per URL for the life of the process; `dispose()` closes them (tests, shutdown).
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from owstack.errors import ConfigError
from owstack.storage.urls import ALLOWED, check_url

#: seconds a SQLite writer waits for another process's lock before failing with "database is locked"
SQLITE_BUSY_TIMEOUT_S = 10.0
#: seconds to wait for a PostgreSQL connection before treating the database as unreachable
PG_CONNECT_TIMEOUT_S = 5
#: milliseconds a PostgreSQL connection may leave sent data unacknowledged before the kernel drops it
#: (TCP_USER_TIMEOUT): a call over a connection into a network partition fails instead of waiting for the
#: kernel's retransmissions (some 15 minutes); idle connections are probed with keepalives as well
PG_TCP_USER_TIMEOUT_MS = 10_000
#: seconds a caller waits for a pooled connection before the database counts as unavailable
POOL_TIMEOUT_S = 5.0
#: the execution option that makes the next BEGIN on a SQLite connection take the write lock at once
SQLITE_BEGIN = "owstack_sqlite_begin"

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def safe_url(url: str) -> str:
    """The URL with any password replaced by ***; an unparsable URL is returned without its userinfo."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (exc.ArgumentError, ValueError):
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else "<not a URL>"


def resolve_url(url: str) -> URL:
    """Parse and check a storage URL; map `postgresql://` and `postgres://` to the psycopg 3 driver.

    Raises `ConfigError` naming `storage.url` and the accepted forms for anything else (`urls.check_url`,
    which config validation runs without SQLAlchemy).
    """
    check_url(url)
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(f"storage.url: {safe_url(url)!r} is not a database URL; use {ALLOWED}") from None
    backend = parsed.drivername.partition("+")[0]
    return parsed.set(drivername="sqlite" if backend == "sqlite" else "postgresql+psycopg")


def engine(url: str) -> Engine:
    """The process-wide engine for `url` (created on first use, then cached).

    SQLite: WAL journal (readers never block the writer), `synchronous=NORMAL`, a 10 s busy timeout, and
    BEGIN emitted by SQLAlchemy rather than guessed by the sqlite3 module, so that DDL is transactional
    and `conn.execution_options(owstack_sqlite_begin="IMMEDIATE")` can take the write lock up front.
    PostgreSQL: `postgresql+psycopg`, connections checked before use, a 5 s connect timeout, a 10 s TCP user
    timeout and keepalives (a partition fails calls instead of hanging them), a 5 s wait for the pool.
    """
    with _LOCK:
        cached = _ENGINES.get(url)
        if cached is not None:
            return cached
        resolved = resolve_url(url)
        created = _sqlite_engine(resolved) if resolved.get_backend_name() == "sqlite" else _pg_engine(resolved)
        _ENGINES[url] = created
        return created


def dispose(url: str | None = None) -> None:
    """Close the pooled connections of one cached engine (or all) and forget it."""
    with _LOCK:
        urls = [url] if url is not None else list(_ENGINES)
        for key in urls:
            eng = _ENGINES.pop(key, None)
            if eng is not None:
                eng.dispose()


def _pg_engine(url: URL) -> Engine:
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=4,
        max_overflow=4,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "application_name": "owstack",
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        },
    )


def in_memory(url: str | URL) -> bool:
    """True for an in-memory SQLite database (`sqlite://`, `sqlite:///:memory:`); False for anything else,
    an unparsable URL included (`resolve_url` reports that)."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def error_reason(error: BaseException) -> str:
    """The first line of what the driver said (`orig`), or of the error itself, at most 200 characters."""
    text = str(getattr(error, "orig", None) or error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:200]


def _sqlite_engine(url: URL) -> Engine:
    memory = in_memory(url)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each checkout would see a new database
    eng = sa.create_engine(url, **kwargs)

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return eng


def is_outage(error: BaseException) -> bool:
    """True when `error` means the database is unreachable, busy or not ready (keep the rows, retry later);
    False when the rows themselves were refused (a constraint, a value the column cannot hold): retrying
    the same rows cannot succeed."""
    if isinstance(error, (exc.IntegrityError, exc.DataError)):
        return False
    if isinstance(error, exc.DBAPIError):  # operational, interface, programming (e.g. table missing), ...
        return True
    return isinstance(error, (exc.DisconnectionError, exc.TimeoutError))
