"""Compliance (admins): the audit chain (each stream's last signed checkpoint, the last full check and a
button to run one), owstack's refusals over the range (residency, guard, limits, keys) from the rollups and
the newest ones from the ledger, and the EU AI Act documents: the Annex IV skeleton and the ML-BOM.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from owstack.ui import web
from owstack.ui.audit import AuditRefused
from owstack.ui.data import audit, requests, usage
from owstack.ui.data import verify as checks
from owstack.ui.page import Page
from owstack.ui.pages.common import per_day, presets, scope
from owstack.ui.ranges import Range


def _directory(page: Page) -> Path:
    return Path(page.config.file.audit.directory).expanduser().resolve()


def load(conn: sa.Connection, page: Page, rng: Range) -> dict[str, Any]:
    refused = [usage.R.error_code.in_(requests.REFUSALS)]
    by_tenant, total = usage.groups(conn, per_day(rng), "tenant", percentiles=False, where=refused)
    recent = requests.page(conn, requests.Filters(codes=requests.REFUSALS), None, 20)
    directory = _directory(page)
    return {
        "codes": sorted(total.codes.items(), key=lambda kv: -kv[1]),
        "refusals_by_tenant": by_tenant,
        "refusals": total.requests,
        "recent": recent,
        "last_check": checks.last(conn),
        "checkpoints": audit.checkpoints(directory) if directory.is_dir() else [],
        "log_bytes": audit.log_size(directory) if directory.is_dir() else 0,
    }


async def view(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    where = scope(page, default="30d")
    data = await page.db(load, page, where.rng)
    return await page.render(
        "compliance.html.j2",
        title="Compliance",
        rng=where.rng,
        presets=presets(),
        tenant=None,
        audit_enabled=page.config.file.audit.enabled,
        directory=str(_directory(page)),
        running=page.console.verifying,
        done=page.request.query.get("done"),
        **data,
    )


async def verify(page: Page) -> web.Response:
    """Start a full check of the chain in a child process; the page shows it running, then its outcome."""
    if not page.viewer.admin:
        return await page.forbidden()
    if page.console.verifying:
        return web.redirect("/ui/compliance?done=already-running")
    try:
        await page.console.audit.record(
            "console.audit_verify", {"directory": str(_directory(page))}, actor=page.viewer.actor
        )
    except AuditRefused as exc:
        return await page.message("Not started", str(exc), 503)
    row = await page.db(checks.started, page.viewer.actor)
    page.console.start_verify(row, _directory(page))
    return web.redirect("/ui/compliance?done=verify-started")


async def annex_iv(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    from owstack.compliance.annex_iv import render

    files = await page.console.run(render, page.config)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            archive.writestr(f"annex-iv/{name}", text)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return web.download(buffer.getvalue(), f"owstack-annex-iv-{stamp}.zip", "application/zip")


async def bom(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    from owstack.compliance.bom import BomError, bom_json

    try:
        text = await page.console.run(bom_json, page.config)
    except BomError as exc:
        return await page.message("No ML-BOM", str(exc), 500)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return web.download(text.encode(), f"owstack-ml-bom-{stamp}.cdx.json", "application/vnd.cyclonedx+json")
