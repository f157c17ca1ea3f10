"""`owstack adapters list|add|remove`: register fine-tuned adapters for the gateway's backends.

`add` copies a run's adapter into the registry (`adapters.registry` in the config) and registers it for a
backend after checking that the backend's engine loads adapters, that its jurisdiction is one the
adapter's training data allows, and (embedded engine) that its weights are the adapter's base. For vLLM
and SGLang it also loads the adapter into the running server (`--no-load` to skip). The gateway reads the
registry when it starts. Each change is an audit event (`adapter.added`, `adapter.removed`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from owstack.cli.common import fail, group

adapters_app = group("adapters", "Fine-tuned adapters served by the gateway.")
_CONFIG = typer.Option(None, "--config", "-c", help="Gateway config file (default: the embedded default).")


def register(app: typer.Typer) -> None:
    app.add_typer(adapters_app, name="adapters")


def _config(path: Path | None) -> Any:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as exc:
        fail(str(exc))


def _registry(config: Any) -> Any:
    from owstack.finetune.registry import Registry

    return Registry(Path(config.file.adapters.registry))


def _audit(config: Any, kind: str, details: dict[str, Any]) -> None:
    from owstack.compliance.service import audit_admin_event

    try:
        audit_admin_event(config, kind, details)
    except Exception as exc:  # the change is made; an unwritable log is reported, not hidden
        typer.echo(f"warning: audit event {kind} not recorded: {exc}", err=True)


@adapters_app.command("list")
def list_command(
    config: Path | None = _CONFIG,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The registered adapters, their backends, base model and jurisdictions."""
    adapters = _registry(_config(config)).adapters()
    if as_json:
        typer.echo(json.dumps([a.to_dict() for a in adapters.values()]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("adapter", "backends", "base", "served in", "sha256", "added")
    for a in adapters.values():
        table.add_row(a.name, ", ".join(a.backends) or "-", a.base, ", ".join(a.jurisdictions), a.sha256[:12], a.added)
    Console().print(table)


@adapters_app.command("add")
def add_command(
    run: Path = typer.Argument(..., help="A finished `owstack finetune run` folder."),
    backend: str = typer.Option(..., "--backend", "-b", help="The backend that serves it (a name in the config)."),
    name: str | None = typer.Option(None, help="The adapter's name in requests (default: the run's name)."),
    server_path: str | None = typer.Option(None, help="vLLM/SGLang: the PEFT folder's path on the server."),
    load: bool = typer.Option(True, "--load/--no-load", help="vLLM/SGLang: load it into the running server now."),
    config: Path | None = _CONFIG,
) -> None:
    """Register a run's adapter for a backend (copied into the registry)."""
    from owstack.compliance.service import local_actor
    from owstack.finetune import lineage, remote
    from owstack.finetune.errors import FinetuneError
    from owstack.finetune.registry import check_backend

    cfg = _config(config)
    section = cfg.file.backends.get(backend)
    if section is None:
        fail(f"--backend: no backend {backend!r} in the config (backends: {', '.join(cfg.file.backends)})")
    registry = _registry(cfg)
    try:
        adapter = registry.add_run(run, name or str(lineage.read(run)["name"]), local_actor())
        check_backend(adapter, backend, section)
        if section.engine in remote.ENDPOINTS and load:
            api_key = cfg.secret(section.api_key, field=f"backends.{backend}.api_key")
            remote.load(section, backend, adapter.name, server_path or str(adapter.peft.resolve()), api_key)
            adapter.remote[backend] = {"server_path": server_path or str(adapter.peft.resolve())}
    except (FinetuneError, ValueError) as exc:
        fail(str(exc))
    if backend not in adapter.backends:
        adapter.backends.append(backend)
    registry.save(adapter)
    _audit(cfg, "adapter.added", {"adapter": adapter.name, "backend": backend, "sha256": adapter.sha256})
    model = f"{_layer_of(cfg, backend)}:{adapter.name}"
    typer.echo(f"adapter {adapter.name} registered for {backend}; restart the gateway, then request model {model!r}")


def _layer_of(config: Any, backend: str) -> str:
    for layer, spec in config.file.layers.items():
        if backend in spec.backends:
            return str(layer)
    return backend


@adapters_app.command("remove")
def remove_command(
    name: str = typer.Argument(..., help="The adapter."),
    backend: str | None = typer.Option(None, "--backend", "-b", help="Only from this backend (default: everywhere)."),
    config: Path | None = _CONFIG,
) -> None:
    """Unregister an adapter from one backend, or delete it from the registry."""
    from owstack.finetune import remote
    from owstack.finetune.errors import FinetuneError

    cfg = _config(config)
    registry = _registry(cfg)
    try:
        adapter = registry.get(name)
        gone = [backend] if backend else list(adapter.backends)
        for b in gone:
            section = cfg.file.backends.get(b)
            if section is not None and section.engine in remote.ENDPOINTS and b in adapter.remote:
                remote.unload(section, b, name, cfg.secret(section.api_key, field=f"backends.{b}.api_key"))
        if backend:
            adapter.backends = [b for b in adapter.backends if b != backend]
            adapter.remote.pop(backend, None)
            registry.save(adapter)
        else:
            registry.remove(name)
    except (FinetuneError, ValueError) as exc:
        fail(str(exc))
    _audit(cfg, "adapter.removed", {"adapter": name, "backends": gone})
    typer.echo(f"adapter {name} removed from {', '.join(gone) if backend else 'the registry'}")
