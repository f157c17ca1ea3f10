"""`owstack console`: serve the console (/ui) alone, against the same database as the gateway; and
`owstack console rebuild-rollups`: sum an existing ledger into the console's rollups again.

The console alone has the gateway's rules for who may use it (docs/console.md): open on loopback with no
tenants configured, an admin key or a configured sign-in proxy otherwise. Its pages show the ledger, the
key store, the audit log and the pins; the live routing state (health, breakers) only exists inside the
gateway, so its Backends page says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from owstack.cli.common import fail
from owstack.logs import setup_logging

if TYPE_CHECKING:
    from owstack.config.load import Config

console_app = typer.Typer(
    name="console",
    help="The web console: serve it alone (the gateway serves it at /ui too), or rebuild its rollups.",
    invoke_without_command=True,
)
CONFIG_HELP = "Config file (storage.url, audit, tenants, ui); default: $OWSTACK_CONFIG, else the embedded default."


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(console_app, name="console")


@console_app.callback()
def console(
    ctx: typer.Context,
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
    host: str | None = typer.Option(None, help="Address to listen on [default: server.host, 127.0.0.1]."),
    port: int = typer.Option(8001, min=0, max=65535, help="Port."),
    log_level: str | None = typer.Option(None, help="debug, info, warning or error [default: server.log_level]."),
) -> None:
    """Serve the console at http://HOST:PORT/ui/ (without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config_path
        return
    from owstack.errors import ConfigError
    from owstack.tenancy.openmode import open_mode_allowed
    from owstack.ui.console import Console

    cfg = _config(config_path)
    host = host or cfg.file.server.host
    level = log_level or cfg.file.server.log_level
    setup_logging(level)
    try:
        app = Console(cfg, host=host)
    except ConfigError as exc:
        fail(str(exc))
    local = open_mode_allowed(cfg, host)[0] and not cfg.file.ui.require_login
    who = "open to local users (no tenants, loopback)" if local else "sign-in required"
    typer.echo(f"owstack console: http://{_hostport(host, port)}/ui/ ({who}), database {_safe(cfg)}", err=True)
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level=level,
    )


@console_app.command("rebuild-rollups")
def rebuild_rollups(ctx: typer.Context) -> None:
    """Sum every ledger row into the rollups again (after restoring a ledger, or to check them)."""
    from owstack.metering.rollup_build import rebuild_url

    cfg = _config(ctx.obj)
    url = cfg.file.storage.url

    def progress(rows: int) -> None:
        typer.echo(f"  {rows:,} ledger rows summed", err=True)

    try:
        rows, written = rebuild_url(url, progress=progress)
    except Exception as exc:  # the driver's errors: unreachable server, unwritable file, ...
        from owstack.storage import error_reason

        fail(f"cannot rebuild the rollups at {_safe(cfg)}: {error_reason(exc)}", code=1)
    typer.echo(f"rebuilt the rollups of {_safe(cfg)}: {rows:,} ledger rows into {written:,} rollup rows")


def _config(path: Path | None) -> Config:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as exc:
        fail(str(exc))


def _safe(cfg: Config) -> str:
    from owstack.storage.db import safe_url

    return safe_url(cfg.file.storage.url)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
