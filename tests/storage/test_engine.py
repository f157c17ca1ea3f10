"""Engines from URLs: the driver mapping, SQLite's pragmas, the cache, error classification."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from owstack import storage
from owstack.errors import ConfigError
from owstack.storage.db import resolve_url


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///owstack.db", "sqlite"),
        ("sqlite:////var/lib/owstack/ledger.db", "sqlite"),
        ("postgresql://u:p@db:5432/owstack", "postgresql+psycopg"),
        ("postgres://u@db/owstack", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/owstack", "postgresql+psycopg"),
    ],
)
def test_urls_map_to_the_supported_drivers(url: str, driver: str) -> None:
    assert resolve_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://u:secret@db/x", "postgresql+psycopg2://u:secret@db/x", "not a url"])
def test_unsupported_urls_name_the_field_and_the_forms_and_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        storage.engine(url)
    message = str(info.value)
    assert message.startswith("storage.url: ")
    assert "sqlite:///PATH" in message and "postgresql://" in message
    assert "secret" not in message


def test_safe_url_masks_the_password() -> None:
    assert storage.safe_url("postgresql://owstack:hunter2@db:5432/x") == "postgresql://owstack:***@db:5432/x"


def test_sqlite_engine_is_cached_and_uses_wal_with_a_busy_timeout(sqlite_url: str) -> None:
    eng = storage.engine(sqlite_url)
    assert storage.engine(sqlite_url) is eng
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_transactions_are_real_including_ddl(sqlite_url: str) -> None:
    eng = storage.engine(sqlite_url)
    with pytest.raises(RuntimeError), eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("roll back")
    assert not sa.inspect(eng).has_table("t")


@pytest.mark.postgres
def test_postgres_engine_uses_psycopg3(pg_url: str) -> None:
    eng = storage.engine(pg_url)
    assert eng.dialect.driver == "psycopg"
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == pg_url.rsplit("/", 1)[1]


@pytest.mark.postgres
def test_is_outage_tells_an_unreachable_server_from_a_refused_row(pg_url: str) -> None:
    down = "postgresql://postgres@127.0.0.1:1/none"
    try:
        with pytest.raises(exc.OperationalError) as unreachable:
            storage.engine(down).connect()
    finally:
        storage.dispose(down)
    assert storage.is_outage(unreachable.value)
    with storage.engine(pg_url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER CHECK (x > 0))")
    with pytest.raises(exc.IntegrityError) as refused, storage.engine(pg_url).begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (-1)")
    assert not storage.is_outage(refused.value)
