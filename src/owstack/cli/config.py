"""`owstack config check|show|schema`: validate a config file, print it resolved and redacted, or print its
JSON schema (for editors and CI); `owstack init`: write a commented starter config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from owstack.cli.common import fail, group

if TYPE_CHECKING:
    from owstack.config.load import Config

config_app = group("config", "Validate and inspect configuration files.")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.command("init")(init)


def init(
    path: Path = typer.Argument(Path("owstack.yaml"), dir_okay=False, help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter config: the three layers with catalog backends (Nemotron 3 Super, Mistral
    Small 4, the embedded edge model), a tenant with EU residency, and the counterfactual prices. It passes
    `owstack config check` as written; replace the GPU hosts with yours."""
    from importlib.resources import files

    if path.exists() and not force:
        fail(f"PATH: {path} already exists; choose another path or add --force to overwrite it")
    text = files("owstack.config").joinpath("data/starter.yaml").read_text(encoding="utf-8")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"PATH: cannot write {path}: {exc.strerror or exc}")
    typer.echo(f"wrote {path}")
    typer.echo(f"next: owstack config check {path} && owstack serve --config {path}")


def _load(path: Path | None) -> Config:
    from owstack.config.load import load

    return load(path)  # a ConfigError becomes one `error:` line and exit 2 (cli.common.RootGroup)


@config_app.command("check")
def check(
    path: Path = typer.Argument(..., dir_okay=False, help="The config file to validate."),
    host: str | None = typer.Option(None, help="Check as if served on this address. [default: server.host]"),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Check as if served on this port. [default: server.port]"
    ),
) -> None:
    """Validate a config file exactly as `owstack serve` does before it starts: schema, references between
    sections, catalog lookups (hardware, counterfactual models), secrets, ports, model files. Exit 0 when
    the gateway would start, 2 (with every problem, one line per field) when it would not."""
    from owstack.cli.progress import status
    from owstack.config.validate import validate

    cfg = _load(path)
    with status(f"checking {path}"):
        checked = validate(cfg, host=host, port=port)
    file = cfg.file
    layers = ", ".join(f"{layer}: {'+'.join(spec.backends)}" for layer, spec in file.layers.items())
    typer.echo(f"ok: {path}: {len(file.backends)} backend(s), {len(file.tenants)} tenant(s); {layers}")
    typer.echo(f"relative paths resolve against {cfg.base}; serving on {checked.host}:{checked.port}")
    for note in checked.notes:
        typer.echo(f"note: {note}")


@config_app.command("show")
def show(
    path: Path | None = typer.Argument(None, help="The config file (default: the embedded default)."),
) -> None:
    """Print the resolved config, every default filled in and every secret masked, as YAML."""
    import yaml

    cfg = _load(path)
    typer.echo(yaml.safe_dump(cfg.redacted(), sort_keys=False))


@config_app.command("schema")
def schema() -> None:
    """Print the config file's JSON schema."""
    from owstack.config.schema import ConfigFile

    typer.echo(json.dumps(ConfigFile.model_json_schema(), indent=2))
