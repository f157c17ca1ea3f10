"""CLI commands of the MCP group: `owstack mcp tools|approve|usage`, and `owstack egress proxy`.

`owstack mcp tools` lists every tool definition the gateway has seen (approved, pending, superseded) with
its digest and content findings; `owstack mcp approve files.read_file` approves the newest pending
definition of a tool (the gateways pick it up within a second) and records the approval in the audit log.
`owstack egress proxy` runs the egress forward proxy on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from owstack.cli.common import fail, group

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.mcp.pins import PinStore

mcp_app = group("mcp", "The MCP gateway: tool pins, approvals, tool-call usage.")
CONFIG = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help="Config file (storage.url, mcp:).")


def register(app: typer.Typer) -> None:
    from owstack.cli.security import egress_app

    app.add_typer(mcp_app, name="mcp")
    egress_app.command("proxy", help="Run the egress forward proxy (HTTP and CONNECT) under security.egress.")(
        egress_proxy
    )


def _config(path: Path | None) -> Config:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as error:
        fail(str(error))


def _store(config: Config) -> PinStore:
    from owstack.mcp.pins import PinStore
    from owstack.storage.db import safe_url

    try:
        return PinStore(config.file.storage.url)
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        fail(f"cannot open the pin store at {safe_url(config.file.storage.url)}: {first}", code=1)


@mcp_app.command("tools", help="List the tool definitions seen, with their state, digest and findings.")
def tools(
    config: Path | None = CONFIG,
    server: str | None = typer.Option(None, "--server", help="Only this server's tools."),
    as_json: bool = typer.Option(False, "--json", help="JSON, with each definition."),
) -> None:
    pins = _store(_config(config)).list(server)
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in pins], indent=2))
        return
    if not pins:
        typer.echo("no tool definitions seen yet (they are recorded when the gateway first lists a server)")
        return
    for p in pins:
        flags = sorted({str(f.get("category")) for f in p.findings})
        extra = (f"  findings: {', '.join(flags)}" if flags else "") + (
            f"  renamed from: {p.renamed_from}" if p.renamed_from else ""
        )
        typer.echo(f"{p.server}.{p.tool:30} {p.state:10} {p.digest[:16]}  {p.first_seen_at:%Y-%m-%d %H:%M}{extra}")


@mcp_app.command("approve", help="Approve a tool's newest pending definition (or the one with --digest).")
def approve(
    tool: str = typer.Argument(..., help="SERVER.TOOL, e.g. files.read_file"),
    digest: str | None = typer.Option(None, "--digest", help="A digest (or its prefix) from `owstack mcp tools`."),
    config: Path | None = CONFIG,
) -> None:
    from owstack.compliance.service import audit_admin_event, local_actor
    from owstack.mcp.pins import PinNotFound

    server, sep, name = tool.partition(".")
    if not sep or not name:
        fail(f"{tool!r} is not SERVER.TOOL (e.g. files.read_file)")
    cfg = _config(config)
    actor = local_actor()
    try:
        pin = _store(cfg).approve(server, name, digest, by=actor)
    except PinNotFound as error:
        fail(str(error), code=1)
    try:
        audit_admin_event(cfg, "mcp.tool_approved", {"tool": tool, "digest": pin.digest}, actor=actor)
    except Exception as error:
        typer.echo(f"warning: the approval is stored but not in the audit log: {error}", err=True)
    typer.echo(f"approved {tool} {pin.digest[:16]} (gateways serve it within a second)")


@mcp_app.command("usage", help="Tool calls per tenant and tool, from the metering ledger.")
def usage(config: Path | None = CONFIG, as_json: bool = typer.Option(False, "--json")) -> None:
    import sqlalchemy as sa

    from owstack.metering.journal import catch_up
    from owstack.metering.ledger import ledger
    from owstack.storage import engine

    url = _config(config).file.storage.url
    try:
        catch_up(url)
        query = (
            sa.select(
                ledger.c.tenant,
                ledger.c.model,
                sa.func.count().label("calls"),
                sa.func.sum(sa.case((ledger.c.status >= 400, 1), else_=0)).label("errors"),
            )
            .where(ledger.c.protocol == "mcp")
            .group_by(ledger.c.tenant, ledger.c.model)
            .order_by(ledger.c.tenant, ledger.c.model)
        )
        with engine(url).connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
    except Exception as error:
        fail(f"cannot read the ledger: {(str(error).splitlines() or ['?'])[0]}", code=1)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['tenant']:20} {r['model'] or '-':40} {r['calls']:8} calls {r['errors'] or 0:6} errors")


def egress_proxy(
    config: Path | None = CONFIG,
    host: str | None = typer.Option(None, "--host", help="Listen address (default mcp.proxy.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (default mcp.proxy.port, 8899)."),
    max_bytes: int | None = typer.Option(None, "--max-bytes", help="Cut responses and tunnels past this size."),
) -> None:
    import asyncio

    from owstack.logs import setup_logging
    from owstack.mcp.proxy import EgressProxy

    cfg = _config(config)
    overrides = {k: v for k, v in {"host": host, "port": port, "max_bytes": max_bytes}.items() if v is not None}
    setup_logging(cfg.file.server.log_level)
    keystore = None
    if cfg.file.tenants:  # keys identify tenants to the proxy, as to /v1
        from owstack.tenancy.keys import KeyStore

        keystore = KeyStore(cfg.file.storage.url)
    proxy = EgressProxy.from_config(cfg, keystore, **overrides)

    async def run() -> None:
        await proxy.start()
        typer.echo(f"owstack egress proxy on {proxy.url}: set HTTP_PROXY and HTTPS_PROXY to it", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await proxy.aclose()

    try:
        asyncio.run(run())
    except OSError as error:
        fail(f"cannot listen on {proxy.host}:{proxy.port}: {error.strerror or error}", code=1)
    except KeyboardInterrupt:
        pass
