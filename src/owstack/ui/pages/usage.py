"""Usage: per tenant, layer, backend, model, adapter, key or protocol over any range: requests, errors and
their codes, tokens in/out/reasoning/cached, cost, the counterfactual and savings, p50/p95/p99 latency and
time to first token (from the rollups' histograms); the same table as CSV.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa

from owstack.ui import web
from owstack.ui.data import usage
from owstack.ui.data.usage import GROUPS
from owstack.ui.page import Page
from owstack.ui.pages.common import presets, scope
from owstack.ui.ranges import Range

QUANTILES = (0.50, 0.95, 0.99)


def _by(page: Page) -> str:
    by = page.request.query.get("by") or "layer"
    if by not in GROUPS:
        raise ValueError(f"by: {by!r} is not one of {', '.join(GROUPS)}")
    if by == "tenant" and not page.viewer.admin:
        return "layer"
    return by


def load(conn: sa.Connection, page: Page, rng: Range, tenant: str | None, by: str) -> dict[str, Any]:
    groups, total = usage.groups(conn, rng, by, tenant=tenant, adapter=page.console.dims.adapter)
    return {
        "groups": groups,
        "total": total,
        "points": usage.series(conn, rng, tenant),
        "tenants": page.console.dims.values(conn, "tenant") if page.viewer.admin else [],
        "pending": usage.journal_pending(conn),
    }


async def view(page: Page) -> web.Response:
    where, by = scope(page), _by(page)
    data = await page.db(load, page, where.rng, where.tenant, by)
    groups_shown = [g for g in GROUPS if page.viewer.admin or g != "tenant"]
    return await page.render(
        "usage.html.j2",
        title="Usage",
        rng=where.rng,
        tenant=where.tenant,
        by=by,
        group_names=groups_shown,
        presets=presets(),
        quantiles=QUANTILES,
        csv_url=page.request.url("/usage.csv"),
        **data,
    )


COLUMNS = (
    "requests", "errors", "error_rate", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens",
    "cost_usd", "counterfactual_usd", "savings_usd", "uncosted", "fallbacks",
    "latency_p50_s", "latency_p95_s", "latency_p99_s", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s",
)  # fmt: skip


def _row(group: usage.Group) -> list[Any]:
    values: list[Any] = []
    for name in COLUMNS:
        if name.startswith(("latency_p", "ttft_p")):
            kind, q = name.split("_p")
            values.append(getattr(group, kind)(int(q[:2]) / 100))
        else:
            values.append(getattr(group, name))
    return values


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (model names come from clients)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def export(page: Page) -> web.Response:
    where, by = scope(page), _by(page)
    data = await page.db(load, page, where.rng, where.tenant, by)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by, *COLUMNS])
    for group in [*data["groups"], data["total"]]:
        writer.writerow([_cell(group.key), *("" if v is None else v for v in _row(group))])
    name = f"owstack-usage-by-{by}-{where.rng.from_date}-{where.rng.to_date}.csv"
    return web.csv_download(out.getvalue(), name)
