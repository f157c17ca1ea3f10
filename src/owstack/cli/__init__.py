"""The `owstack` command: one Typer app, one module per command group.

Each module in `GROUPS` exposes `register(app)`. Modules import only typer and rich at the top; anything
heavy (llama_cpp, torch, matplotlib, SQLAlchemy) is imported inside the command that needs it.
"""

from __future__ import annotations

import importlib

import typer

GROUPS = (
    "serve",  # serve
    "chat",  # chat
    "config",  # config check, show, schema
    "catalog",  # recipe, models
    "economics",  # plan
    "metering",  # usage, savings
    "security",  # scan, egress, guard
    "efficiency",  # eval, distill
    "compliance",  # audit, tenants erase, docs, bom
    "tenancy",  # keys, residency
    "mcp",  # mcp tools, approve, usage; egress proxy
    "console",  # console (the web dashboard alone), console rebuild-rollups
)

app = typer.Typer(
    name="owstack",
    help="Run an AI-agent stack on self-hosted open-weight models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from owstack import __version__

        typer.echo(__version__)
        raise typer.Exit()


for _group in GROUPS:
    importlib.import_module(f"owstack.cli.{_group}").register(app)


def main() -> None:
    app()
