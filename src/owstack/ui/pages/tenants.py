"""Tenants and keys: each tenant's budget and rate caps with what it used (this month's cost, the last
minute's requests and tokens, from the rollups), its residency (which backends each layer may reach), and
its keys. Admins create, revoke and rotate keys here; a new key is shown once, in the response to the form
that made it (never in a URL, never stored), and every change is an audit record first or not at all.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from owstack.layers import LAYERS
from owstack.metering.rollups import DAY, MINUTE
from owstack.tenancy.admin import KEY_CREATED, KEY_REVOKED
from owstack.tenancy.expiry import parse_expires
from owstack.tenancy.keyformat import ADMIN_TENANT
from owstack.ui import web
from owstack.ui.audit import AuditRefused
from owstack.ui.data import usage
from owstack.ui.page import Page
from owstack.ui.ranges import Range


def _month(now: float) -> Range:
    start = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Range(int(start.timestamp()), (int(now) // DAY + 1) * DAY, DAY, "month")


def load(conn: sa.Connection, page: Page, tenant: str | None) -> dict[str, Any]:
    now = time.time()
    minute = (int(now) // MINUTE) * MINUTE

    def by_tenant(rng: Range) -> list[usage.Group]:
        return usage.groups(conn, rng, "tenant", tenant=tenant, percentiles=False)[0]

    month = by_tenant(_month(now))
    last = by_tenant(Range(minute - MINUTE, minute, MINUTE, "1m"))
    this = by_tenant(Range(minute, minute + MINUTE, MINUTE, "1m"))
    return {
        "month": {g.key: g for g in month},
        "last_minute": {g.key: g for g in last},
        "this_minute": {g.key: g for g in this},
        "keys": page.console.keystore().list(tenant=tenant),
    }


def _residency(page: Page, names: list[str]) -> dict[str, Any]:
    from owstack.tenancy.report import residency_report

    report = residency_report(page.config)
    return {t.tenant: t for t in report.tenants if t.tenant in names}


async def view(
    page: Page, *, new_key: str | None = None, new_record: Any = None, error: str | None = None, status: int = 200
) -> web.Response:
    tenant = page.viewer.tenant_filter(page.request.query.get("tenant"))
    data = await page.db(load, page, tenant)
    configured = page.config.file.tenants
    names = [n for n in configured if tenant is None or n == tenant]
    return await page.render(
        "tenants.html.j2",
        title="Tenants & keys",
        status=status,
        tenant=tenant,
        tenants=[(n, configured[n]) for n in names],
        residency=_residency(page, names),
        layers=LAYERS,
        new_key=new_key,
        new_record=new_record,
        error=error,
        done=page.request.query.get("done"),
        admin_tenant=ADMIN_TENANT,
        **data,
    )


async def _refuse(page: Page, error: str) -> web.Response:
    return await view(page, error=error, status=400)


def _form_layers(page: Page) -> list[str] | None:
    chosen = [layer for layer in LAYERS if page.request.form.get(f"layer_{layer}")]
    return chosen or None


async def create(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    form = page.request.form
    admin = form.get("admin") == "on"
    tenant = form.get("tenant") or (ADMIN_TENANT if admin else "")
    if tenant not in page.config.file.tenants and not (admin and tenant == ADMIN_TENANT):
        return await _refuse(page, f"tenant: {tenant or 'none chosen'!r} is not a configured tenant")
    try:
        expires = parse_expires(form.get("expires") or None)
    except ValueError as exc:
        return await _refuse(page, f"expires: {exc}")
    made = await _create(page, tenant, _form_layers(page), expires, form.get("label") or None, admin)
    if isinstance(made, str):
        return await _refuse(page, made)
    return await view(page, new_key=made[0], new_record=made[1])


async def _create(
    page: Page, tenant: str, layers: list[str] | None, expires: Any, label: str | None, admin: bool, **extra: Any
) -> tuple[str, Any] | str:
    """(the key, its record), recorded in the audit log; or why it was not made."""
    problem = page.console.audit.problem()
    if problem is not None:
        return f"not created: the audit log cannot be written ({problem})"
    store = page.console.keystore()
    try:
        key, record = await page.console.run(
            lambda: store.create(tenant, layers=layers, expires=expires, label=label, admin=admin)
        )
    except ValueError as exc:
        return str(exc)
    try:
        details = {**_event(record), **extra}
        await page.console.audit.record(KEY_CREATED, details, actor=page.viewer.actor, tenant=record.tenant)
    except AuditRefused as exc:  # the key must not exist unrecorded
        await page.console.run(store.revoke, record.key_id)
        return f"not created: {exc}; key {record.key_id} was revoked"
    return key, record


def _event(record: Any) -> dict[str, Any]:
    details: dict[str, Any] = record.to_dict()
    details.pop("status", None)
    details["via"] = "console"
    return details


async def _revoke(page: Page, key_id: str, **extra: Any) -> str | None:
    """Revoke a key and record it; None, or what went wrong."""
    problem = page.console.audit.problem()
    if problem is not None:
        return f"not revoked: the audit log cannot be written ({problem})"
    store = page.console.keystore()
    try:
        before = await page.console.run(store.get, key_id)
        record = await page.console.run(store.revoke, key_id)
    except (LookupError, ValueError) as exc:
        return str(exc)
    if before.revoked_at is not None:
        return None
    try:
        details = {**_event(record), **extra}
        await page.console.audit.record(KEY_REVOKED, details, actor=page.viewer.actor, tenant=record.tenant)
    except AuditRefused as exc:
        return f"key {key_id} is revoked, but {exc}"
    return None


async def revoke(page: Page) -> web.Response:
    if not page.viewer.admin:
        return await page.forbidden()
    key_id = page.request.form.get("key_id", "")
    problem = await _revoke(page, key_id)
    if problem is not None:
        return await _refuse(page, problem)
    return web.redirect(f"/ui/tenants?done=revoked-{key_id}")


async def rotate(page: Page) -> web.Response:
    """A new key with the old one's tenant, layers, label, expiry and role; then the old one revoked."""
    if not page.viewer.admin:
        return await page.forbidden()
    key_id = page.request.form.get("key_id", "")
    store = page.console.keystore()
    try:
        old = await page.console.run(store.get, key_id)
    except (LookupError, ValueError) as exc:
        return await _refuse(page, str(exc))
    if old.status() != "active":
        return await _refuse(page, f"key {key_id} is {old.status()}: create a new key instead")
    layers = sorted(old.layers) if old.layers is not None else None
    made = await _create(page, old.tenant, layers, old.expires_at, old.label, old.admin, rotates=old.key_id)
    if isinstance(made, str):
        return await _refuse(page, made)
    problem = await _revoke(page, key_id, rotated_to=made[1].key_id)
    if problem is not None:
        return await view(page, new_key=made[0], new_record=made[1], error=problem, status=500)
    return await view(page, new_key=made[0], new_record=made[1])
