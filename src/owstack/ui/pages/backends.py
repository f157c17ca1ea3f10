"""Backends: each backend's health check, circuit breaker and outstanding requests (live, from the gateway
serving this page), its last hour from the rollups (requests, errors, latency), and the recent requests a
backend failed or fell back from, with the outcome of each attempt.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from owstack.metering.rollups import MINUTE
from owstack.ui import web
from owstack.ui.data import requests, usage
from owstack.ui.page import Page
from owstack.ui.ranges import Range

FAILURES = 20


def _where(url: str | None) -> str:
    if not url:
        return "embedded"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def load(conn: sa.Connection, page: Page, tenant: str | None) -> dict[str, Any]:
    until = (int(time.time()) // MINUTE + 1) * MINUTE
    hour = Range(until - 3600, until, MINUTE, "1h")
    groups, _ = usage.groups(conn, hour, "backend", tenant=tenant)
    keep = page.console.dims.matching(conn, lambda d: tenant is None or d.tenant == tenant)
    failed = requests.page(conn, requests.Filters(dims=None if tenant is None else keep, failures=True), None, FAILURES)
    return {"hour": {g.key: g for g in groups}, "failures": failed}


async def view(page: Page) -> web.Response:
    tenant = page.viewer.tenant_filter(None)
    live = page.live() if page.live is not None else None
    data = await page.db(load, page, tenant)
    file = page.config.file
    rows = []
    for name, b in file.backends.items():
        layers = [layer for layer, spec in file.layers.items() if name in spec.backends]
        fallback_for = [layer for layer, spec in file.layers.items() if name in spec.fallback]
        rows.append(
            {
                "name": name,
                "engine": b.engine,
                "model": b.model,
                "where": _where(b.url),
                "jurisdiction": b.jurisdiction,
                "hardware": b.hardware,
                "proprietary": b.proprietary,
                "layers": layers,
                "fallback_for": fallback_for,
                "live": (live or {}).get("backends", {}).get(name),
                "hour": data["hour"].get(name),
            }
        )
    return await page.render(
        "backends.html.j2", title="Backends", backends=rows, live=live, failures=data["failures"], tenant=tenant
    )
