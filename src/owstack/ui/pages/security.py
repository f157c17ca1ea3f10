"""Security (admins): the injection guard's blocks per day (rollups) and its recent decisions with their
categories (the audit log's tail: never the matched text), the MCP gateway's tools with their pinning
state and the content scanner's findings on each definition, tool traffic by tool, and the approval of a
pending definition (recorded in the audit log, as `owstack mcp approve` does).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from owstack.mcp.pins import Pin, PinNotFound, PinStore
from owstack.ui import web
from owstack.ui.audit import AuditRefused
from owstack.ui.data import audit, usage
from owstack.ui.page import Page
from owstack.ui.pages.common import per_day, presets, scope
from owstack.ui.ranges import Range

GUARD_BLOCKED = "guard_blocked"


def _pins(conn: sa.Connection, url: str) -> list[Pin]:
    if not sa.inspect(conn).has_table("mcp_pins"):
        return []
    return PinStore(url, migrate=False).list()


def load(conn: sa.Connection, page: Page, rng: Range) -> dict[str, Any]:
    daily = per_day(rng)
    blocked = {b: 0 for b in daily.buckets}
    r = usage.R
    query = sa.select(r.bucket, sa.func.sum(r.requests)).where(
        r.grain == daily.grain, r.bucket >= daily.since, r.bucket < daily.until, r.error_code == GUARD_BLOCKED
    )
    for bucket, count in conn.execute(query.group_by(r.bucket)):
        blocked[int(bucket)] = int(count or 0)
    tools, _ = usage.groups(conn, rng, "model", where=[usage.R.backend.like("mcp:%")])
    return {"blocked": blocked, "daily_grain": daily.grain, "tools": tools, "pins": _pins(conn, page.console.url)}


def _guard(page: Page) -> dict[str, Any]:
    directory = Path(page.config.file.audit.directory).expanduser().resolve()
    if not page.config.file.audit.enabled or not directory.is_dir():
        return {"decisions": [], "since": None, "categories": []}
    got = audit.guard_decisions(directory)
    categories: Counter[str] = Counter()
    for record in got.records:
        for name, count in (record.get("guardrail") or {}).get("categories", {}).items():
            categories[str(name)] += int(count)
    return {"decisions": got.records[:50], "since": got.since, "categories": categories.most_common()}


async def view(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    where = scope(page, default="30d")
    data = await page.db(load, page, where.rng)
    guard = await page.console.run(_guard, page)
    return await page.render(
        "security.html.j2",
        title="Security",
        rng=where.rng,
        presets=presets(),
        tenant=None,
        guard=guard,
        mcp_servers=sorted(page.config.file.mcp.servers),
        done=page.request.query.get("done"),
        **data,
    )


async def approve(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    form = page.request.form
    server, tool, digest = form.get("server", ""), form.get("tool", ""), form.get("digest") or None
    problem = page.console.audit.problem()
    if problem is not None:
        return await page.message("Not approved", f"The audit log cannot be written: {problem}", 503)
    store = PinStore(page.console.url, migrate=False)
    try:
        pin = await page.console.run(lambda: store.approve(server, tool, digest, by=page.viewer.actor))
    except PinNotFound as exc:
        return await page.message("Not approved", str(exc), 404)
    details = {"tool": f"{server}.{tool}", "digest": pin.digest, "via": "console"}
    try:
        await page.console.audit.record("mcp.tool_approved", details, actor=page.viewer.actor)
    except AuditRefused as exc:
        return await page.message("Approved, not recorded", f"{server}.{tool} is approved, but {exc}", 500)
    return web.redirect(f"/ui/security?done=approved-{server}.{tool}")
