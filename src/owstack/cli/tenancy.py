"""CLI commands of the tenancy group: `owstack keys create|list|revoke` and `owstack residency check`.

Usage errors (unknown tenant or layer, a bad `--expires`, a malformed key id, an invalid config) print
one `error:` line and exit 2; a key store that cannot be opened, an unknown key id and a residency check
that finds a layer without a reachable backend exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from owstack.cli.common import fail, group
from owstack.layers import LAYERS
from owstack.tenancy.keyformat import ADMIN_TENANT

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.tenancy.keys import KeyRecord, KeyStore

keys_app = group("keys", "Create, list and revoke API keys (stored as SHA-256 hashes).")
residency_app = group("residency", "Check where each tenant's data may go.")

CONFIG_HELP = "Config file (tenants, storage.url); default: $OWSTACK_CONFIG, else the embedded default."
EXPIRES_HELP = "When the key stops working: 30d, 12h, 2w, 90m, an ISO date (2027-01-31, 00:00 UTC) or never."


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(residency_app, name="residency")


def _config(path: Path | None) -> Config:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as error:
        fail(str(error))


def _store(config: Config) -> KeyStore:
    from owstack.errors import ConfigError
    from owstack.storage.db import safe_url
    from owstack.tenancy.keys import KeyStore

    url = config.file.storage.url
    try:
        return KeyStore(url)
    except ConfigError as error:
        fail(str(error))
    except Exception as error:  # the driver's errors: unreachable server, unwritable file, ...
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        fail(f"cannot open the key store at {safe_url(url)}: {first}", code=1)


def _layers(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _check_request(config: Config, tenant: str, layers: list[str] | None) -> None:
    tenants = config.file.tenants
    if tenant not in tenants:
        if not tenants:
            fail(f"--tenant: no tenants are configured in {config.source}; add one under `tenants:`")
        fail(f"--tenant: unknown tenant {tenant!r}; configured tenants: {', '.join(sorted(tenants))}")
    for layer in layers or ():
        if layer not in LAYERS:
            fail(f"--layers: unknown layer {layer!r}; the layers are {', '.join(LAYERS)}")
        if not tenants[tenant].allows_layer(layer):
            allowed = ", ".join(tenants[tenant].layers or ())
            fail(f"--layers: tenant {tenant!r} may not use layer {layer!r}; it may use: {allowed}")


@keys_app.command("create")
def keys_create(
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", help="A tenant defined under `tenants:` (required unless --admin)."
    ),
    layers: list[str] | None = typer.Option(
        None, "--layers", "-l", help="Layers the key may use (comma-separated or repeated); default: all."
    ),
    expires: str | None = typer.Option(None, "--expires", help=EXPIRES_HELP),
    label: str | None = typer.Option(None, "--label", help="A note for `keys list` (who or what uses it)."),
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the key and its record as JSON."),
    admin: bool = typer.Option(
        False, "--admin", help=f"A console admin key (without --tenant: for the console only, tenant {ADMIN_TENANT!r})."
    ),
) -> None:
    """Create a key and print it once: it cannot be shown again (only its hash is stored)."""
    from owstack.tenancy.expiry import parse_expires

    config = _config(config_path)
    wanted = _layers(layers)
    if tenant is None and not admin:
        fail("--tenant: required (or --admin for a console admin key)")
    if tenant is not None:
        _check_request(config, tenant, wanted)
    tenant = tenant or ADMIN_TENANT
    try:
        expires_at = parse_expires(expires)
    except ValueError as error:
        fail(f"--expires: {error}")
    if label is not None and (len(label) > 200 or not label.isprintable()):
        fail("--label: at most 200 printable characters")
    store = _store(config)
    key, record = store.create(tenant, layers=wanted, expires=expires_at, label=label, admin=admin)
    _audit_created(config, store, record)
    if as_json:
        typer.echo(json.dumps({"key": key, **record.to_dict()}, indent=2))
    else:
        typer.echo(key)
    typer.echo(f"created key {record.key_id} for tenant {tenant!r} ({_describe(record)}).", err=True)
    typer.echo("This is the only time the key is shown: store it now.", err=True)
    _warn_residency(config, tenant)


def _audit_created(config: Config, store: KeyStore, record: KeyRecord) -> None:
    from owstack.tenancy.admin import KEY_CREATED, record_admin_event

    try:
        record_admin_event(config, KEY_CREATED, _event(record), tenant=record.tenant)
    except Exception as error:  # the audit log refused: the key must not exist unrecorded
        store.revoke(record.key_id)
        fail(f"the audit log did not record the new key ({error}); key {record.key_id} was revoked", code=1)


def _event(record: KeyRecord) -> dict[str, Any]:
    details = record.to_dict()
    details.pop("status", None)
    return details


def _describe(record: KeyRecord) -> str:
    layers = ", ".join(sorted(record.layers)) if record.layers is not None else "all layers"
    expires = record.expires_at.isoformat(timespec="seconds") if record.expires_at else "never"
    return f"layers: {layers}; expires: {expires}"


def _warn_residency(config: Config, tenant: str) -> None:
    from owstack.tenancy.report import residency_report

    for problem in residency_report(config).problems:
        if problem.startswith(f"tenant {tenant!r}:"):
            typer.echo(f"warning: {problem}", err=True)


@keys_app.command("list")
def keys_list(
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant's keys."),
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List keys (ids, tenants, layers, expiry, status); never their secrets."""
    config = _config(config_path)
    records = _store(config).list(tenant=tenant)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        typer.echo("no keys" + (f" for tenant {tenant!r}" if tenant else "") + " (create one: owstack keys create)")
        return
    _print_table(records)


def _print_table(records: list[KeyRecord]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("key id", "tenant", "layers", "status", "created", "expires", "label", "admin"):
        table.add_column(column, no_wrap=column in ("key id", "status"))
    for r in records:
        layers = ",".join(sorted(r.layers)) if r.layers is not None else "all"
        expires = r.expires_at.strftime("%Y-%m-%d %H:%M") if r.expires_at else "never"
        created = r.created_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(
            r.key_id, r.tenant, layers, r.status(), created, expires, r.label or "", "admin" if r.admin else ""
        )
    Console(width=max(100, Console().width)).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key id (12 hex digits) from `owstack keys list`."),
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
) -> None:
    """Revoke a key: every gateway refuses it within about a second."""
    from owstack.tenancy import keyformat
    from owstack.tenancy.admin import KEY_REVOKED, record_admin_event
    from owstack.tenancy.keys import KeyNotFound

    try:
        key_id = keyformat.check_key_id(key_id)
    except ValueError as error:
        fail(f"KEY_ID: {error}")
    config = _config(config_path)
    store = _store(config)
    try:
        before = store.get(key_id)
        record = store.revoke(key_id)
    except KeyNotFound as error:
        fail(str(error), code=1)
    if before.revoked_at is not None:
        typer.echo(f"key {key_id} was already revoked on {before.revoked_at.isoformat(timespec='seconds')}")
        return
    try:
        record_admin_event(config, KEY_REVOKED, _event(record), tenant=record.tenant)
    except Exception as error:  # the revocation stands; say that the record is missing
        typer.echo(f"warning: the audit log did not record the revocation: {error}", err=True)
    typer.echo(f"revoked key {key_id} (tenant {record.tenant!r}); gateways refuse it within about a second")


@residency_app.command("check")
def residency_check(
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per tenant and layer: the backends it may reach, fallbacks included; exit 1 if a layer has none."""
    from owstack.tenancy.report import residency_report

    config = _config(config_path)
    report = residency_report(config)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        count = len(report.problems)
        typer.echo(f"error: {count} tenant layer(s) without a backend inside their jurisdictions:", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1)


def _print_report(report: Any) -> None:
    for tenant in report.tenants:
        where = ", ".join(tenant.jurisdictions) or "self-hosted backends"
        proprietary = "allowed" if tenant.allow_proprietary else "not allowed"
        typer.echo(f"{tenant.tenant}: jurisdictions {where}; proprietary APIs {proprietary}")
        for reach in tenant.layers:
            if not reach.permitted:
                typer.echo(f"  {reach.layer:<11} not permitted for this tenant")
                continue
            line = f"  {reach.layer:<11} backends: {', '.join(reach.primary) or '-'}"
            line += f"; fallback: {', '.join(reach.fallback) or '-'}"
            if not reach.ok:
                line += "  <- NO BACKEND"
            typer.echo(line)
            for name, why in reach.excluded:
                typer.echo(f"  {'':<11} excluded {name}: {why}")
    if report.ok:
        typer.echo("ok: every tenant reaches a backend on every layer it may use")
