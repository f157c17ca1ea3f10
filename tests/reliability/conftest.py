"""Fixtures for the fault-injection tests: a PostgreSQL database of the test's own behind a TCP proxy that
the test can pause (a partition) or cut (an outage), and gateway configs that use it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from owstack import storage
from owstack.metering.journal import catch_up
from reliability.tcpproxy import TcpProxy
from scratch_db import pg_database


@dataclass
class Database:
    #: the database, straight
    url: str
    #: the same database through `proxy` (what the gateway is given)
    via: str
    proxy: TcpProxy


@pytest.fixture
def pg_behind_proxy() -> Iterator[Database]:
    with pg_database() as url:
        proxy = TcpProxy(("127.0.0.1", 5432)).start()
        via = url.replace("127.0.0.1:5432", proxy.url_host)
        try:
            yield Database(url, via, proxy)
        finally:
            proxy.close()
            storage.dispose(via)


def gateway_config(tmp: Path, upstream_url: str, storage_url: str, **extra: Any) -> dict[str, Any]:
    """One layer on the fake upstream, a tenant with keys, the audit log in `tmp`."""
    return {
        "storage": {"url": storage_url},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "backends": {"up": {"engine": "vllm", "url": upstream_url, "model": "edge-model", "jurisdiction": "local"}},
        "layers": {"edge": {"backends": ["up"]}},
        "tenants": {"acme": {}},
        **extra,
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ledger of the test's own: a SQLite file, or a PostgreSQL database created for it and dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'owstack.db'}"
        return
    with pg_database() as url:
        yield url


def ledger_statuses(url: str) -> dict[str, int]:
    """Each ledger row's request id and status (journaled batches moved in first)."""
    catch_up(url)
    with storage.engine(url).connect() as conn:
        rows = conn.execute(sa.text("SELECT request_id, status FROM ledger")).all()
    storage.dispose(url)
    return {str(r[0]): int(r[1]) for r in rows}


def ledger_ids(url: str) -> set[str]:
    catch_up(url)
    with storage.engine(url).connect() as conn:
        return {row[0] for row in conn.execute(sa.text("SELECT request_id FROM ledger"))}
