"""`owstack config check|show|schema`: validate a config file, print it resolved and redacted, or print its
JSON schema (for editors and CI)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from owstack.cli.common import fail

config_app = typer.Typer(help="Validate and inspect configuration files.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


def _load(path: Path | None) -> object:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as exc:
        fail(str(exc), code=1)


@config_app.command("check")
def check(path: Path = typer.Argument(..., help="The config file to validate.")) -> None:
    """Validate a config file: schema, references between sections, pinned model files, key material."""
    from owstack.backends.llamacpp import LlamaCppBackend
    from owstack.config.load import Config
    from owstack.errors import ConfigError

    cfg = _load(path)
    assert isinstance(cfg, Config)
    for name, section in cfg.file.backends.items():
        if section.api_key:
            try:
                cfg.secret(section.api_key, field=f"backends.{name}.api_key")
            except ConfigError as exc:
                fail(str(exc), code=1)
        if section.engine == "llamacpp":
            try:
                LlamaCppBackend.from_section(name, section).verify()
            except ConfigError as exc:
                fail(str(exc), code=1)
    layers = ", ".join(f"{layer}: {'+'.join(spec.backends)}" for layer, spec in cfg.file.layers.items())
    typer.echo(f"ok: {path}: {len(cfg.file.backends)} backend(s), {len(cfg.file.tenants)} tenant(s); {layers}")


@config_app.command("show")
def show(
    path: Path | None = typer.Argument(None, help="The config file (default: the embedded default)."),
) -> None:
    """Print the resolved config, every default filled in and every secret masked, as YAML."""
    import yaml

    from owstack.config.load import Config

    cfg = _load(path)
    assert isinstance(cfg, Config)
    typer.echo(yaml.safe_dump(cfg.redacted(), sort_keys=False))


@config_app.command("schema")
def schema() -> None:
    """Print the config file's JSON schema."""
    from owstack.config.schema import ConfigFile

    typer.echo(json.dumps(ConfigFile.model_json_schema(), indent=2))
