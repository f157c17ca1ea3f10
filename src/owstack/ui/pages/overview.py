"""Overview: requests, tokens, self-hosted cost against the proprietary counterfactual and the savings, per
day over the chosen range; and for admins, whether the stack has paid for itself: the planner's break-even
against the last seven days of measured traffic, and payback of the capital spent.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from owstack.metering import rollups
from owstack.metering.rollups import DAY, HOUR
from owstack.ui import web
from owstack.ui.data import breakeven, usage
from owstack.ui.page import Page
from owstack.ui.pages.common import per_day, presets, scope
from owstack.ui.ranges import Range

WINDOW_DAYS = 7


def _all_time(conn: sa.Connection) -> dict[str, float]:
    r = rollups.ledger_rollups.c
    query = sa.select(sa.func.sum(r.cost_usd), sa.func.sum(r.counterfactual_usd), sa.func.sum(r.capital_usd))
    got = conn.execute(query.where(r.grain == DAY)).one()
    cost, cf, capital = (float(x or 0.0) for x in got)
    return {"cost_usd": cost, "counterfactual_usd": cf, "savings_usd": cf - cost, "capital_usd": capital}


def _measured(total: usage.Group, days: float) -> dict[str, float]:
    prompt, completion = float(total.prompt_tokens), float(total.completion_tokens)
    tokens = prompt + completion
    return {
        "tokens_per_day": tokens / days if days > 0 else 0.0,
        "input_share": prompt / tokens if tokens else 0.75,
        "cached_share": min(float(total.cached_tokens) / prompt, 1.0) if prompt else 0.0,
        "reasoning_share": min(float(total.reasoning_tokens) / completion, 1.0) if completion else 0.0,
    }


def load(conn: sa.Connection, page: Page, rng: Range, tenant: str | None) -> dict[str, Any]:
    chart = per_day(rng)
    out: dict[str, Any] = {
        "points": usage.series(conn, chart, tenant),
        "chart_grain": chart.grain,
        "total": usage.totals(conn, rng, tenant),
        "pending": usage.journal_pending(conn),
        "tenants": page.console.dims.values(conn, "tenant") if page.viewer.admin else [],
        "breakeven": None,
        "payback": None,
    }
    if page.viewer.admin and tenant is None:
        until = (int(time.time()) // HOUR + 1) * HOUR
        week = Range(until - WINDOW_DAYS * DAY, until, HOUR, "7d")
        by_backend, week_total = usage.groups(conn, week, "backend", percentiles=False)
        tokens = {g.key: int(g.prompt_tokens + g.completion_tokens) for g in by_backend}
        out["breakeven"] = breakeven.breakeven(page.config, _measured(week_total, WINDOW_DAYS), tokens)
        out["payback"] = breakeven.payback(page.config, _all_time(conn))
    return out


async def view(page: Page) -> web.Response:
    where = scope(page, default="30d")
    data = await page.db(load, page, where.rng, where.tenant)
    return await page.render(
        "overview.html.j2", title="Overview", rng=where.rng, tenant=where.tenant, presets=presets(), **data
    )
