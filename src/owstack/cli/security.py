"""CLI commands of the security group: `owstack scan`, `owstack egress check`, `owstack guard scan|eval|neutralize`.

Exit codes: 0 clean (or every URL allowed), 1 a finding at or above `--fail-on` (or a blocked URL),
2 a usage error, printed as one `error:` line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from owstack.cli.common import fail, group

SEVERITY_CHOICES = ("low", "medium", "high", "critical")
FORMATS = ("text", "json", "sarif")
SOURCES = ("tool", "document", "user", "instructions")

egress_app = group("egress", "SSRF-safe egress: check which URLs owstack may fetch.")
guard_app = group("guard", "Prompt-injection and control-token guard.")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command(
        "scan", help="Find agent config that executes or bypasses trust (or, with --models, unsafe model files)."
    )(scan)
    app.add_typer(egress_app, name="egress")
    app.add_typer(guard_app, name="guard")


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value.lower() not in allowed:
        fail(f"{option} must be one of {', '.join(allowed)} (got {value!r})")
    return value.lower()


def scan(
    path: Path = typer.Argument(..., help="Repository folder or file to scan (a model file or folder with --models)."),
    output_format: str = typer.Option("text", "--format", "-f", help="Output: text, json or sarif."),
    fail_on: str = typer.Option(
        "high", "--fail-on", help="Exit 1 when a finding reaches this severity: low, medium, high or critical."
    ),
    models: bool = typer.Option(
        False,
        "--models",
        help=(
            "Scan model files: GGUF (header, tensors, chat templates), safetensors, pickles (any protocol), PyTorch"
            " (zip with tensor bounds, legacy tar, TorchScript code and mobile bytecode), numpy .npy/.npz, joblib"
            " (gzip, zlib, bz2, xz; lz4 when the lz4 package is installed), tar and zip archives, Keras (.keras, .h5),"
            " ONNX, TensorFlow .pb, SentencePiece, chat-template files."
        ),
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Glob of repository paths to leave out, e.g. 'vendor/**' or '*.min.json' (repeatable)."
    ),
) -> None:
    fmt = _choice("--format", output_format, FORMATS)
    threshold = _choice("--fail-on", fail_on, SEVERITY_CHOICES)
    if not path.exists():
        fail(f"PATH {str(path)!r} does not exist")
    from owstack import __version__
    from owstack.security import report

    if models:
        from owstack.security.model_scan import scan_models

        findings: list[Any] = list(scan_models(path))
    else:
        from owstack.security.config_scan import scan_path

        findings = list(scan_path(path, tuple(exclude)))
    if fmt == "json":
        typer.echo(json.dumps(report.as_json(findings, threshold), indent=2, ensure_ascii=False))
    elif fmt == "sarif":
        typer.echo(json.dumps(report.as_sarif(findings, path, __version__), indent=2, ensure_ascii=False))
    else:
        typer.echo(report.as_text(findings, threshold))
    raise typer.Exit(1 if report.failing(findings, threshold) else 0)


def _policy(config: Path | None, allow_networks: list[str]) -> Any:
    from owstack.security.egress import EgressPolicy

    section = None
    if config is not None:
        from owstack.config.load import load
        from owstack.errors import ConfigError

        try:
            section = load(config).file.security.egress
        except ConfigError as exc:
            fail(str(exc).replace("\n", " "))
    try:
        extra = {"allow_networks": [*(section.allow_networks if section else ()), *allow_networks]}
        return EgressPolicy.from_section(section, **extra)
    except ValueError:
        fail(f"--allow-network must be a network in CIDR form, e.g. 10.0.0.0/8 (got {', '.join(allow_networks)})")


def _resolver(entries: list[str]) -> Any:
    import ipaddress

    from owstack.security.egress import StaticResolver, SystemResolver

    table: dict[str, list[str]] = {}
    for entry in entries:
        name, sep, address = entry.partition("=")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            fail(f"--resolve must be NAME=ADDRESS with an IP address (got {entry!r})")
        if not sep or not name:
            fail(f"--resolve must be NAME=ADDRESS (got {entry!r})")
        table.setdefault(name.lower(), []).append(address)
    return StaticResolver(table, fallback=SystemResolver())


@egress_app.command("check", help="Say, per URL, whether owstack may fetch it, why, and the addresses checked.")
def egress_check(
    urls: list[str] = typer.Argument(..., help="URLs to check."),
    as_json: bool = typer.Option(False, "--json", help='Print {"results": [{url, allowed, reason, addresses}]}.'),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Config file whose security.egress policy applies (default: the secure defaults)."
    ),
    resolve: list[str] = typer.Option(
        [], "--resolve", help="NAME=ADDRESS: answer NAME with ADDRESS instead of DNS (repeatable), like curl --resolve."
    ),
    allow_network: list[str] = typer.Option(
        [], "--allow-network", help="CIDR to allow although not public (repeatable)."
    ),
) -> None:
    import asyncio

    from owstack.security.egress import check_url

    policy = _policy(config, allow_network)
    resolver = _resolver(resolve)

    async def run() -> list[Any]:
        return [await check_url(u, policy, resolver) for u in urls]

    decisions = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps({"results": [d.as_dict() for d in decisions]}, indent=2, ensure_ascii=False))
    else:
        for d in decisions:
            verdict = "allowed" if d.allowed else "blocked"
            addresses = ", ".join(d.addresses) or "-"
            typer.echo(f"{verdict:7}  {d.url}\n         reason: {d.reason}\n         addresses: {addresses}")
    raise typer.Exit(0 if all(d.allowed for d in decisions) else 1)


def _read_input(file: str) -> str:
    if file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            fail(f"FILE {file!r} cannot be read: {exc.strerror or exc}")
    if b"\x00" in data[:8192]:
        fail(f"FILE {file!r} is binary; guard scan reads UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"FILE {file!r} is not UTF-8 text")


@guard_app.command("scan", help="Print prompt-injection findings in a tool output or document (FILE or - for stdin).")
def guard_scan(
    file: str = typer.Argument(..., help="Text file to scan, or - for standard input."),
    source: str = typer.Option(
        "tool", "--source", help="Where the text came from: tool, document, user or instructions."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"findings": [...]}.'),
    fail_on: str = typer.Option("medium", "--fail-on", help="Exit 1 when a finding reaches this severity."),
) -> None:
    src = _choice("--source", source, SOURCES)
    threshold = _choice("--fail-on", fail_on, SEVERITY_CHOICES)
    text = _read_input(file)
    from owstack.security.guard import at_least, scan_text

    findings = scan_text(text, source=src)
    if as_json:
        typer.echo(json.dumps({"findings": [f.as_dict() for f in findings]}, indent=2, ensure_ascii=False))
    elif not findings:
        typer.echo("no findings")
    else:
        for f in findings:
            typer.echo(f"{f.start}-{f.end}: {f.severity} {f.rule} [{f.category}] {f.message}: {f.excerpt}")
    raise typer.Exit(1 if any(at_least(f.severity, threshold) for f in findings) else 0)


@guard_app.command("neutralize", help="Print FILE (or - for stdin) with chat-template control tokens made inert.")
def guard_neutralize(
    file: str = typer.Argument(..., help="Text file, or - for standard input."),
    family: str = typer.Option(
        "chatml",
        "--family",
        help="Template family (catalog `template:`), e.g. chatml, llama3, mistral, qwen3, nemotron.",
    ),
) -> None:
    from owstack.security.guard import family_names, neutralize

    if family not in family_names():
        fail(f"--family must be one of {', '.join(family_names())} (got {family!r})")
    text, count = neutralize(_read_input(file), family)
    sys.stdout.write(text)
    typer.echo(f"{count} control tokens neutralised", err=True)


@guard_app.command("eval", help="Measure detection and false-positive rates on the shipped labelled corpus.")
def guard_eval(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    split: str = typer.Option("all", "--split", help="Corpus split: dev, test or all."),
    misses: bool = typer.Option(False, "--misses", help="Also list the samples the guard got wrong."),
) -> None:
    chosen = _choice("--split", split, ("dev", "test", "all"))
    from owstack.security.guard.evaluate import evaluate, format_report

    result = evaluate(split=chosen)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        typer.echo(format_report(result, misses=misses))
