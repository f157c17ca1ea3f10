"""`owstack redteam run|compare`: red-team a running gateway and gate CI on the hit rates.

Exit codes: 0 every probe at or below its threshold (or no threshold given), 1 a probe above it (or,
for `compare --fail-on-regression`, a regression), 2 a usage error, printed as one `error:` line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from owstack.cli.common import fail, header_value, http_url

redteam_app = typer.Typer(
    name="redteam",
    help="Probe a gateway for injection, control-token smuggling, exfiltration, residency escape.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(redteam_app, name="redteam")


def _thresholds(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            fail(f"--max-hit-rate-probe must be NAME=RATE with RATE between 0 and 1 (got {item!r})")
        if not sep or not name or not 0 <= out[name] <= 1:
            fail(f"--max-hit-rate-probe must be NAME=RATE with RATE between 0 and 1 (got {item!r})")
    return out


def _residency(config: Path | None, tenant: str | None) -> tuple[dict[str, str], set[str] | None]:
    if config is None:
        return {}, None
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        cfg = load(config)
    except ConfigError as exc:
        fail(str(exc).replace("\n", " "))
    backends = {name: str(b.jurisdiction) for name, b in cfg.file.backends.items()}
    if tenant is None:
        return backends, None
    spec = cfg.file.tenants.get(tenant)
    if spec is None:
        fail(f"--tenant {tenant!r} is not in {config}")
    return backends, set(getattr(spec, "jurisdictions", None) or [])


@redteam_app.command("run", help="Run owstack's probes (and garak's, when installed) against a gateway.")
def run(
    url: str = typer.Option("http://127.0.0.1:8000/v1", "--url", help="The gateway's OpenAI-compatible base URL."),
    model: str = typer.Option("auto", "--model", help="Layer, `auto` or backend model id to attack."),
    api_key_env: str = typer.Option("OWSTACK_API_KEY", "--api-key-env", help="Environment variable with the key."),
    generations: int = typer.Option(3, "--generations", min=1, max=100, help="Attempts per probe prompt."),
    only: str = typer.Option("", "--probes", help="Comma-separated owstack probes to run (default: all)."),
    max_attempts: int = typer.Option(0, "--max-attempts", min=0, help="Prompts per probe (0: all of them)."),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, max=4096),
    garak: bool = typer.Option(True, "--garak/--no-garak", help="Also run garak's probes when garak is available."),
    garak_python: str | None = typer.Option(
        None, "--garak-python", help="Python of a virtualenv with garak. [default: $OWSTACK_GARAK_PYTHON]"
    ),
    garak_probes: str = typer.Option("", "--garak-probes", help="garak probes (default: string-matched ones)."),
    garak_max_prompts: int = typer.Option(5, "--garak-max-prompts", min=1, help="Prompts per garak probe."),
    garak_timeout: float = typer.Option(3600, "--garak-timeout", min=1, help="Seconds before garak is stopped."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Gateway config (backends' jurisdictions)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant whose allowed jurisdictions the key has."),
    out: Path = typer.Option(Path("owstack-redteam"), "--out", "-o", help="Directory for the JSON and HTML reports."),
    max_hit_rate: float | None = typer.Option(None, "--max-hit-rate", min=0, max=1, help="Fail above this rate."),
    max_hit_rate_probe: list[str] = typer.Option([], "--max-hit-rate-probe", help="NAME=RATE per probe (repeatable)."),
) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from owstack.security.redteam import garak_run, probes, report, runner

    per_probe = _thresholds(max_hit_rate_probe)
    backends, allowed = _residency(config, tenant)
    selected = probes.own_probes(backends, allowed)
    names = [n for n in only.split(",") if n]
    unknown = sorted(set(names) - {p.name for p in selected})
    if unknown:
        fail(f"--probes: unknown probe(s) {', '.join(unknown)}; known: {', '.join(p.name for p in selected)}")
    selected = [
        probes.Probe(p.name, p.description, p.attempts[: max_attempts or None])
        for p in selected
        if not names or p.name in names
    ]
    http_url(url, "--url")
    api_key = os.environ.get(api_key_env)
    if api_key:
        header_value(api_key, f"the {api_key_env} environment variable")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("owstack probes", total=None)
        results = runner.run(
            selected,
            base_url=url,
            model=model,
            api_key=api_key,
            generations=generations,
            max_tokens=max_tokens,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    garak_note = "not run (--no-garak)"
    if garak and garak_run.available(garak_python):
        chosen = tuple(p for p in garak_probes.split(",") if p) or garak_run.DEFAULT_PROBES
        try:
            typer.echo(f"garak: {len(chosen)} probes, {garak_max_prompts} prompts each ...", err=True)
            results += garak_run.run(
                base_url=url,
                model=model,
                api_key=api_key,
                generations=generations,
                probes=chosen,
                python=garak_python,
                max_tokens=max_tokens,
                max_prompts=garak_max_prompts,
                timeout=garak_timeout,
                keep=out,
            )
            garak_note = f"ran {','.join(chosen)} ({garak_max_prompts} prompts each)"
        except RuntimeError as exc:
            garak_note = f"failed: {exc}"
    elif garak:
        garak_note = "not installed (pip install 'owstack[redteam]', or --garak-python / $OWSTACK_GARAK_PYTHON)"
    meta: dict[str, Any] = {"target": url, "model": model, "generations": generations, "garak": garak_note}
    data = report.build(results, meta)
    json_path, html_path = report.write(data, out)
    width = max([40, *(len(p["name"]) for p in data["probes"])])
    for p in data["probes"]:
        rate = "-" if p["hit_rate"] is None else f"{p['hit_rate']:.1%}"
        typer.echo(
            f"{p['name']:{width}} {p['hits']:>4}/{p['scored']:<4} hit rate {rate:>6}  "
            f"95% CI {p['ci95'][0]:.1%}-{p['ci95'][1]:.1%}  blocked {p['blocked']}"
        )
    typer.echo(f"garak: {garak_note}\nreport: {json_path} {html_path}")
    failures = report.failing(data, max_hit_rate, per_probe)
    for line in failures:
        typer.echo(f"FAIL {line}", err=True)
    raise typer.Exit(1 if failures else 0)


@redteam_app.command("compare", help="Compare two red-team reports (before/after a model, adapter or guard change).")
def compare(
    before: Path = typer.Argument(..., help="The earlier report (JSON)."),
    after: Path = typer.Argument(..., help="The later report (JSON)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit 1 if any probe regressed."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    from owstack.security.redteam import report

    loaded = []
    for path in (before, after):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"{path}: not a readable red-team report ({exc})")
        if data.get("format") != report.FORMAT:
            fail(f"{path}: not an owstack red-team report (format {data.get('format')!r})")
        loaded.append(data)
    rows = report.compare(*loaded)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            fmt = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
            typer.echo(f"{r['probe']:40} {fmt(r['before']):>7} -> {fmt(r['after']):>7}  {r['verdict']}")
    raise typer.Exit(1 if fail_on_regression and any(r["verdict"] == "regressed" for r in rows) else 0)
