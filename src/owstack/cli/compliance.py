"""CLI commands of the compliance group: `owstack audit verify|export|prune`, `owstack tenants erase`,
`owstack docs annex-iv` and `owstack bom`.

Usage errors (a bad date, an invalid config) print one `error:` line and exit 2; a damaged or missing
audit log and a log that cannot be written exit 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from owstack.cli.common import group

if TYPE_CHECKING:
    from owstack.config.load import Config

audit_app = group("audit", "Verify, export and prune the tamper-evident audit log.")
tenants_app = group("tenants", "Tenant data: crypto-shredding erasure.")
docs_app = group("docs", "Documentation for auditors (EU AI Act Annex IV).")

CONFIG_HELP = "Config file (the `audit:` section); default: $OWSTACK_CONFIG, else the embedded default."
DIR_HELP = "Audit directory to read (e.g. an auditor's copy); default: audit.directory of the config."
ConfigOpt = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP, show_envvar=False)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(docs_app, name="docs")
    app.command("bom", help="Write a CycloneDX 1.6 ML-BOM: owstack, its dependencies and its models.")(bom)


def _fail(message: str, code: int = 2) -> NoReturn:
    from owstack.cli.common import fail

    fail(message, code)


def _config(path: Path | None) -> Config:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as error:
        _fail(str(error))


def _audit_dir(config_path: Path | None, directory: Path | None) -> Path:
    if directory is not None:
        path = directory.resolve()
        if not path.is_dir():
            _fail(f"--dir: {path} is not a folder")
    else:
        path = Path(_config(config_path).file.audit.directory).expanduser().resolve()
    if not path.is_dir():
        _fail(f"audit directory {path} does not exist (no audit log has been written there)", code=1)
    if not (path / "streams").is_dir():
        _fail(f"{path} holds no audit streams (no `streams/` folder): not an audit directory, or emptied", code=1)
    return path


def _date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{option}: {value!r} is not a date; use YYYY-MM-DD or an ISO 8601 time such as 2026-11-27T10:00:00Z")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@audit_app.command("verify")
def verify(
    config: Path | None = ConfigOpt,
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (its `heads` can serve as --anchor)."),
    anchor: Path | None = typer.Option(
        None, "--anchor", help="An earlier --json report kept elsewhere: its heads must still be there."
    ),
    trusted_key: list[str] = typer.Option(
        [], "--trusted-key", help="Accept only checkpoints signed by this key id (repeatable)."
    ),
) -> None:
    """Check every stream's hash chain, signed checkpoints and manifest. Exit 0 intact, 1 damaged."""
    from owstack.compliance.report import load_anchor
    from owstack.compliance.verify import verify as run

    try:
        anchors = load_anchor(anchor) if anchor else None
    except (OSError, ValueError) as exc:
        _fail(f"--anchor: {exc}")
    path = _audit_dir(config, directory)
    report = run(path, anchors=anchors, trusted_keys=set(trusted_key) or None)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report: object) -> None:
    from owstack.compliance.report import Report

    assert isinstance(report, Report)
    total = sum(s.records for s in report.streams)
    cps = sum(s.checkpoints for s in report.streams)
    verdict = "intact" if report.ok else "DAMAGED"
    typer.echo(f"audit log {report.directory}: {verdict}")
    typer.echo(f"  {len(report.streams)} stream(s), {total} records, {cps} signed checkpoints")
    for s in report.streams:
        span = f"seq {s.first_seq}..{s.last_seq}, {s.first_time} .. {s.last_time}" if s.records else "no records"
        pruned = f", pruned before seq {s.pruned_before_seq}" if s.pruned_before_seq else ""
        typer.echo(f"  {s.stream}: {s.state}, {span}{pruned}, keys {', '.join(s.key_ids) or '-'}")
        for w in s.warnings:
            typer.echo(f"warning: stream {s.stream}: {w}", err=True)
    for d in report.damage:
        typer.echo(f"damage: {d.line()}", err=True)


@audit_app.command("export")
def export(
    since: str = typer.Option(..., "--since", help="From this date/time (inclusive), UTC."),
    until: str = typer.Option(..., "--until", help="Up to this date/time (exclusive), UTC."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (records as stored) or csv (flattened columns)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
    types: list[str] = typer.Option(
        [], "--type", help="Only record types starting with this (repeatable), e.g. inference, admin."
    ),
    config: Path | None = ConfigOpt,
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP),
) -> None:
    """Export the records of a time window for an auditor (content stays encrypted)."""
    from owstack.compliance import export as ex

    if fmt not in ("jsonl", "csv"):
        _fail(f"--format: {fmt!r} is not a format; use jsonl or csv")
    start, end = _date(since, "--since"), _date(until, "--until")
    if start and end and start >= end:
        _fail("--until: must be after --since")
    path = _audit_dir(config, directory)
    items = ex.records(path, since=start, until=end, types=types)
    try:
        if fmt == "jsonl":
            if out is None:
                n = ex.write_jsonl(items, sys.stdout.buffer)
            else:
                with out.open("wb") as fh:
                    n = ex.write_jsonl(items, fh)
        elif out is None:
            n = ex.write_csv(items, sys.stdout)
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                n = ex.write_csv(items, fh)
    except OSError as exc:
        _fail(f"--out: cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"exported {n} records ({start} .. {end})", err=True)


@audit_app.command("prune")
def prune(
    config: Path | None = ConfigOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    now: str | None = typer.Option(None, "--now", help="Judge age as of this date instead of today (planning)."),
    force: bool = typer.Option(False, "--force", help="Prune even when `audit verify` finds damage."),
) -> None:
    """Remove segments older than audit.retention_days (legal hold respected); the chain stays verifiable."""
    from datetime import datetime

    from owstack.compliance import retention
    from owstack.compliance.keys import AuditKeyError, load_keys, resolve_paths
    from owstack.compliance.verify import verify as run

    when = _date(now, "--now")
    cfg = _config(config)
    section = cfg.file.audit
    path = _audit_dir(config, None)
    if section.legal_hold:
        typer.echo("audit.legal_hold is on: nothing is pruned")
        return
    cutoff = retention.cutoff_for(section.retention_days, datetime.fromisoformat(when) if when else None)
    report = run(path)
    if not report.ok and not force:
        _fail(f"the log is damaged ({report.damage[0].line()}); not pruning evidence (use --force)", code=1)
    plans = retention.plan(path, cutoff=cutoff, hold_tenants=frozenset(section.legal_hold_tenants))
    if not plans:
        typer.echo(f"nothing older than {cutoff} ({section.retention_days} days) to prune")
        return
    for p in plans:
        typer.echo(("would remove " if dry_run else "removing ") + retention.describe(p))
    if dry_run:
        return
    try:
        keys = load_keys(section, resolve_paths(section), create=False)
        retention.apply(plans, keys, cutoff=cutoff)
    except (AuditKeyError, OSError) as exc:
        _fail(f"cannot prune: {exc}", code=1)
    details = {
        "cutoff": cutoff,
        "streams": {
            p.stream: {"segments": len(p.remove), "records": p.records, "first_kept_seq": p.first_seq} for p in plans
        },
    }
    _admin_event(cfg, "audit.pruned", details)


def _admin_event(cfg: Config, kind: str, details: Mapping[str, object], tenant: str | None = None) -> None:
    from owstack.compliance.keys import AuditKeyError
    from owstack.compliance.service import audit_admin_event
    from owstack.compliance.writer import AuditUnavailable

    try:
        done = audit_admin_event(cfg, kind, dict(details), tenant=tenant)
    except (AuditUnavailable, AuditKeyError) as exc:
        _fail(f"the audit log cannot be written: {exc}", code=1)
    if done is not None:
        typer.echo(f"recorded {kind} in the audit log (stream {done.stream}, seq {done.seq})")


@tenants_app.command("erase")
def erase(
    tenant: str = typer.Argument(..., help="The tenant whose stored responses are deleted and content shredded."),
    config: Path | None = ConfigOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Erase a tenant: delete its stored responses (Responses API) and crypto-shred its captured content
    (destroy its content key: the content can no longer be decrypted; the audit chain, hashes and ciphertext
    only, still verifies)."""
    from sqlalchemy.exc import SQLAlchemyError

    from owstack.compliance.keys import AuditKeyError, load_master_key, resolve_paths
    from owstack.compliance.keystore import ContentKeystore, key_file
    from owstack.protocols.responses.store import erase_tenant
    from owstack.storage import error_reason, safe_url

    cfg = _config(config)
    section = cfg.file.audit
    paths = resolve_paths(section)
    has_key = key_file(paths.keystore, tenant).is_file()
    if tenant not in cfg.file.tenants and not has_key:
        known = ", ".join(sorted(cfg.file.tenants)) or "none"
        _fail(
            f"TENANT: unknown tenant {tenant!r}: not under `tenants:` in {cfg.source} (configured: {known}) "
            "and no content was ever captured for it; nothing to erase"
        )
    what = "delete its stored responses" + (" and destroy its content key" if has_key else "")
    if not yes and not typer.confirm(f"Erase tenant {tenant!r}: {what}? This cannot be undone"):
        _fail("not confirmed; nothing erased", code=1)
    url = cfg.file.storage.url
    try:
        deleted = erase_tenant(url, tenant)
    except SQLAlchemyError as exc:  # the database's own words, without secrets
        _fail(f"cannot delete the stored responses of {tenant!r} in {safe_url(url)}: {error_reason(exc)}", code=1)
    typer.echo(f"tenant {tenant!r}: {deleted} stored response(s) deleted")
    key_id = None
    if not has_key:
        typer.echo(f"tenant {tenant!r} has no content key: no captured content to erase")
    else:
        try:
            store = ContentKeystore(paths.keystore, load_master_key(section, paths, create=False))
            key_id = store.destroy(tenant)
        except (AuditKeyError, OSError) as exc:
            _fail(f"cannot erase tenant {tenant!r}: {exc}", code=1)
        typer.echo(f"tenant {tenant!r}: content key {key_id} destroyed; its captured content is now unreadable")
    details = {"tenant": tenant, "content_key_id": key_id, "stored_responses_deleted": deleted}
    _admin_event(cfg, "tenant.erased", details, tenant=tenant)


@docs_app.command("annex-iv")
def annex_iv(
    config: Path | None = ConfigOpt,
    out: Path = typer.Option(Path("annex-iv"), "--out", "-o", help="Directory for the Markdown files."),
    results: Path | None = typer.Option(
        None, "--results", help="Evaluation results (a JSON file; its scalar values are tabled)."
    ),
) -> None:
    """Write the Annex IV technical documentation skeleton (nine sections) from the config and catalog."""
    from owstack.compliance.annex_iv import write_annex_iv

    cfg = _config(config)
    if results is not None and not results.is_file():
        _fail(f"--results: {results} is not a file")
    try:
        files = write_annex_iv(cfg, out, results=results)
    except (OSError, ValueError) as exc:
        _fail(f"cannot write the documentation to {out}: {exc}", code=1)
    typer.echo(f"wrote {len(files)} files to {out} (search for 'TO BE COMPLETED BY THE PROVIDER')")


def bom(
    config: Path | None = ConfigOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
) -> None:
    """Write a CycloneDX 1.6 ML-BOM (JSON), validated against the CycloneDX schema before it is written."""
    from owstack.compliance.bom import BomError, bom_json

    cfg = _config(config)
    try:
        text = bom_json(cfg)
    except BomError as exc:
        _fail(str(exc), code=1)
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(f"--out: cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"wrote {out}", err=True)
