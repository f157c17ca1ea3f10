"""The console tests' running stack: a real `owstack serve` with two tenants and a fake upstream, its keys,
and traffic made by real requests (the official openai client)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
import sqlalchemy as sa

from owstack import storage
from procs import Proc, upstream_backend


@dataclass
class Stack:
    gateway: Proc
    url: str
    admin_key: str
    acme_key: str
    globex_key: str
    #: the gateway's working directory (its audit log is owstack-audit/ there)
    home: Path
    #: the gateway's config file
    config: Path
    #: ledger row ids of each tenant's requests
    rows: dict[str, list[int]] = field(default_factory=dict)

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.base_url, api_key=key, max_retries=0, timeout=30)


def stack_config(tmp: Path, upstream: Proc) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "backends": {
            "echo": upstream_backend(upstream, "echo", hardware="8xH100", catalog="nemotron-3-super"),
            "flaky": upstream_backend(upstream, "fail-before-first-byte", health_check=False),
        },
        "layers": {"edge": {"backends": ["echo"]}, "coding": {"backends": ["flaky"], "fallback": ["echo"]}},
        "tenants": {"acme": {"budget_usd_month": 50, "requests_per_minute": 600}, "globex": {}},
        "metering": {"journal_max_rows": 0, "flush_interval_ms": 50},
        "routing": {"breaker": {"failure_threshold": 100}},
        "ui": {"refresh_s": 5},
    }


def make_traffic(stack: Stack) -> None:
    for key, layers in ((stack.acme_key, ["edge"] * 5 + ["coding"] * 3), (stack.globex_key, ["edge"] * 4)):
        client = stack.client(key)
        for layer in layers:
            client.chat.completions.create(model=layer, messages=[{"role": "user", "content": "Say hello."}])
    denied = stack.client("ows-000000000000-" + "A" * 43)
    with pytest.raises(openai.AuthenticationError):
        denied.chat.completions.create(model="edge", messages=[{"role": "user", "content": "hi"}])


def filed(url: str, want: int, timeout: float = 30.0) -> dict[str, list[int]]:
    """Each tenant's ledger row ids, once `want` rows are filed (the ledger process files each batch at once)."""
    deadline = time.monotonic() + timeout
    query = sa.text("SELECT r.id, d.tenant FROM ledger_rows r JOIN ledger_dims d ON d.id = r.dim")
    while True:
        with storage.engine(url).connect() as conn:
            found = conn.execute(query).all()
        if len(found) >= want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    rows: dict[str, list[int]] = {}
    for row_id, tenant in found:
        rows.setdefault(tenant, []).append(int(row_id))
    return rows
