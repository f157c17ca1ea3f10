"""Requests: the log of recent requests (metadata only: the ledger holds no content), filtered and paged by
cursor; and one request with what each stage decided, from its ledger row and, when it is still in the
log's tail, its audit record (guard decision, generation parameters, the record's place in the chain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from owstack.ui import web
from owstack.ui.data import audit, requests
from owstack.ui.data.dims import Dim
from owstack.ui.page import Page

#: the dims filters of the log, by query parameter
DIM_FILTERS = ("tenant", "layer", "backend", "model", "protocol")
STATUSES = ("", "ok", "errors", "400", "401", "403", "404", "429", "500", "502", "503", "504")


def _filters(page: Page) -> tuple[dict[str, str], Any]:
    q = page.request.query
    wanted = {name: q[name] for name in DIM_FILTERS if q.get(name)}
    if page.viewer.tenant is not None:
        wanted["tenant"] = page.viewer.tenant
    status = q.get("status") or None
    if status is not None and status not in STATUSES and not (status.isascii() and status.isdigit()):
        raise ValueError(f"status: {status!r} is not one of {', '.join(s for s in STATUSES if s)}")
    code = q.get("code") or None
    return wanted, (status, code)


def load(
    conn: sa.Connection, page: Page, wanted: dict[str, str], status: str | None, code: str | None
) -> dict[str, Any]:
    cache = page.console.dims

    def keep(dim: Dim) -> bool:
        return all(dim.group(name) == value for name, value in wanted.items())

    dims = cache.matching(conn, keep) if wanted else None
    filters = requests.Filters(dims=dims, status=status, codes=(code,) if code else ())
    found = requests.page(conn, filters, page.request.query.get("before"))
    tenant = page.viewer.tenant
    only = cache.matching(conn, lambda d: tenant is None or d.tenant == tenant)
    choices = {name: cache.values(conn, name, only) for name in DIM_FILTERS if page.viewer.admin or name != "tenant"}
    return {"log": found, "choices": choices}


async def view(page: Page) -> web.Response:
    wanted, (status, code) = _filters(page)
    data = await page.db(load, page, wanted, status, code)
    return await page.render(
        "requests.html.j2",
        title="Requests",
        wanted=wanted,
        status_filter=status or "",
        code=code or "",
        statuses=STATUSES,
        **data,
    )


async def detail(page: Page) -> web.Response:
    raw = page.request.path_params.get("id", "")
    if not (raw.isascii() and raw.isdigit()):
        return await page.message("No such request", f"{raw!r} is not a ledger row id.", 404)
    row = await page.db(requests.one, int(raw))
    if row is None or (page.viewer.tenant is not None and row["tenant"] != page.viewer.tenant):
        return await page.message("No such request", f"No request {raw} in the ledger.", 404)
    record = None
    if page.viewer.admin and page.config.file.audit.enabled:
        directory = Path(page.config.file.audit.directory).expanduser().resolve()
        record = await page.console.run(audit.request_record, directory, row["request_id"])
    return await page.render("request.html.j2", title=f"Request {row['request_id']}", row=row, record=record)
