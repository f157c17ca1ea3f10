"""CLI commands of the catalog group: `owstack recipe` and `owstack models`.

Only typer and the standard library at import; the catalog is imported inside each command.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import typer

_ENGINES = "vllm, sglang, ollama, llamacpp"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _pretty(argv: list[str], env: dict[str, str]) -> str:
    """One long option (with its values) per line, joined by backslash continuations: still valid shell."""
    groups: list[list[str]] = [[f"{k}={shlex.quote(v)}" for k, v in env.items()]]
    for token in argv:
        if token.startswith("--") and groups[-1]:
            groups.append([])
        groups[-1].append(shlex.quote(token))
    return " \\\n    ".join(" ".join(g) for g in groups)


def _hostport(text: str) -> tuple[str, int]:
    """`--gateway HOST:PORT` (IPv6 in brackets: [::1]:8000)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise _fail(f"--gateway: {text!r} is not HOST:PORT, e.g. 127.0.0.1:8000")
    return host.strip("[]") or "127.0.0.1", int(port)


def _human(n: float) -> str:
    return f"{n / 1e9:g}B" if n >= 1e9 else f"{n / 1e6:g}M"


def _recipe_text(r: Any) -> str:
    where = f" on {r.gpus}" if r.gpus else ""
    out = [f"# Serve {r.model} with {r.engine} ({r.variant}{where})", ""]
    if r.setup:
        out += ["## Setup (once)", *(shlex.join(step) for step in r.setup), ""]
    out += ["## Serve command", _pretty(r.command, r.env), ""]
    for label, argv in r.alternatives.items():
        out += [f"## Alternative: {label}", _pretty(argv, {}), ""]
    if r.warnings:
        out += ["## Warnings", *(f"! {w}" for w in r.warnings), ""]
    if r.notes:
        out += ["## Notes", *(f"- {n}" for n in r.notes), ""]
    out += ["## owstack backend entry (paste under `backends:` in owstack.yaml)", r.backend_yaml(), ""]
    out += [f"# source: {r.source} ({r.date})"]
    return "\n".join(out)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""

    @app.command("recipe")
    def recipe_cmd(
        model: str = typer.Argument(..., help="Catalog id, HF repo, alias or Ollama tag (see `owstack models`)."),
        engine: str = typer.Option(..., "--engine", "-e", help=f"Serving engine: {_ENGINES}."),
        gpus: str | None = typer.Option(
            None, "--gpus", help="GPUs, e.g. 8xH100, 2xH200, 1xB200 (default: the published baseline)."
        ),
        variant: str | None = typer.Option(None, "--variant", help="Checkpoint (BF16, FP8, NVFP4) or Ollama tag."),
        option: list[str] = typer.Option([], "--option", "-o", help="Named extra, e.g. mtp (repeatable)."),
        file: str | None = typer.Option(None, "--file", help="GGUF file for llamacpp."),
        host: str | None = typer.Option(None, "--host", help="Address the server binds (default 127.0.0.1)."),
        port: int | None = typer.Option(
            None,
            "--port",
            min=1,
            max=65535,
            help="Port. [default: per engine (vllm 8001, sglang 30000, ollama 11434, llamacpp 8080)]",
        ),
        gateway: str = typer.Option(
            "127.0.0.1:8000",
            "--gateway",
            help="HOST:PORT where owstack serves: the engine's port is kept off it, and a clash is a warning.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the recipe and backend entry as JSON."),
    ) -> None:
        """Print a serve command for MODEL on an engine, and the matching owstack backend entry."""
        from owstack.catalog.recipes import recipe
        from owstack.errors import ConfigError

        where = _hostport(gateway)
        try:
            r = recipe(
                model, engine, gpus, variant=variant, options=option, file=file, host=host, port=port, gateway=where
            )
        except ConfigError as exc:
            raise _fail(str(exc)) from None
        if as_json:  # the text form lists them under "## Warnings"
            for warning in r.warnings:
                typer.echo(f"warning: {warning}", err=True)
        typer.echo(json.dumps(r.to_dict(), indent=2) if as_json else _recipe_text(r))

    @app.command("models")
    def models_cmd(
        model: str | None = typer.Argument(None, help="Show one model (id, HF repo, alias or Ollama tag)."),
        as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    ) -> None:
        """List the model catalog, or show one model's card."""
        from owstack.catalog.models import model_card, model_cards
        from owstack.errors import ConfigError

        try:
            cards = [model_card(model)] if model else model_cards()
        except ConfigError as exc:
            raise _fail(str(exc)) from None
        if as_json:
            data = [c.to_dict() for c in cards]
            typer.echo(json.dumps(data[0] if model else data, indent=2))
        elif model:
            typer.echo(_card_text(cards[0]))
        else:
            typer.echo(_table(cards))


def _table(cards: list[Any]) -> str:
    rows = [("id", "layer", "params", "context", "input", "license", "thinking switch")]
    for c in cards:
        active = "" if c.params_active == c.params_total else f"/{_human(c.params_active)}"
        switch = c.reasoning.switch if c.reasoning.switch == "none" else f"{c.reasoning.key}"
        default = (
            "" if c.reasoning.switch == "none" else (" (default on)" if c.reasoning.default_on else " (default off)")
        )
        osi = "" if c.license_osi else " (not OSI)"
        rows.append(
            (
                c.id,
                c.layer,
                _human(c.params_total) + active,
                f"{c.context:,}",
                "+".join(c.input_modalities),
                c.license + osi,
                switch + default,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _card_text(c: Any) -> str:
    r = c.reasoning
    lines = [
        f"{c.name}  ({c.id})",
        f"  hf_repo:       {c.hf_repo}",
        f"  layer:         {c.layer}",
        f"  architecture:  {c.architecture}",
        f"  params:        {_human(c.params_total)} total / {_human(c.params_active)} active",
    ]
    if c.params_alt:
        lines.append(f"  params (alt):  {_human(c.params_alt[0])} / {_human(c.params_alt[1])} ({c.params_alt_source})")
    lines += [
        f"  context:       {c.context:,} (served by default: {c.context_served:,})",
        f"  modalities:    {'+'.join(c.input_modalities)} in, {'+'.join(c.output_modalities)} out",
        f"  license:       {c.license} ({'OSI-approved' if c.license_osi else 'not OSI-approved'})",
        f"  template:      {c.template}",
        f"  reasoning:     {r.switch}" + (f" {r.key}, default {'on' if r.default_on else 'off'}" if r.key else ""),
    ]
    if r.think_tags:
        lines.append(f"  think tags:    {r.think_tags[0]} ... {r.think_tags[1]}")
    for v in c.variants:
        how = "published" if v.weights_gb_published else "computed"
        arch = f", needs {'/'.join(v.requires_arch)}" if v.requires_arch else ""
        lines.append(f"  variant:       {v.name:6} {v.hf_repo} (~{v.weights_gb:g} GB {how}{arch})")
    for t in c.ollama_tags:
        lines.append(f"  ollama:        {t.tag} ({t.size_gb:g} GB)")
    if c.gguf:
        lines.append(
            f"  gguf:          {c.gguf.package}/{c.gguf.file} ({c.gguf.bytes:,} bytes)\n"
            f"  sha256:        {c.gguf.sha256}"
        )
    lines += [f"  note:          {n}" for n in c.notes]
    lines += [f"  source:        {c.source}", f"  date:          {c.date}"]
    return "\n".join(lines)
