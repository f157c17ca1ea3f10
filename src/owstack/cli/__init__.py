"""The `owstack` command: one Typer app, one module per command group.

Each module in `GROUPS` exposes `register(app)`. Modules import only typer and rich at the top; anything
heavy (llama_cpp, torch, matplotlib, SQLAlchemy) is imported inside the command that needs it. Help text
is shown as written (no Rich markup), so `[default: ...]` and other brackets stay visible.
"""

from __future__ import annotations

import importlib

import typer

from owstack import __version__
from owstack.cli.common import RootGroup

GROUPS = (
    "serve",  # serve
    "chat",  # chat
    "config",  # config check, show, schema; init
    "catalog",  # recipe, models
    "economics",  # plan
    "metering",  # usage, savings
    "security",  # scan, egress, guard
    "efficiency",  # eval, distill
    "compliance",  # audit, tenants erase, docs, bom
    "tenancy",  # keys, residency
    "redteam",  # redteam run, compare
    "storage",  # db migrate
    "mcp",  # mcp tools, approve, usage; egress proxy
    "finetune",  # finetune run, check, demo
    "adapters",  # adapters list, add, remove
    "console",  # console (the web dashboard alone), console rebuild-rollups
)

app = typer.Typer(
    name="owstack",
    cls=RootGroup,
    help="Run an AI-agent stack on self-hosted open-weight models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"owstack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Run an AI-agent stack on self-hosted open-weight models."""


for _group in GROUPS:
    importlib.import_module(f"owstack.cli.{_group}").register(app)


def main() -> None:
    app()
