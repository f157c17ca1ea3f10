"""CLI commands of the economics group: `owstack plan`."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from owstack.cli.common import require_extra

#: CLI flag of each scenario field, for error messages that name what the user typed
FLAGS: dict[str, str] = {
    "tokens_per_day": "--tokens-per-day",
    "input_share": "--input-share",
    "cached_share": "--cached-share",
    "reasoning_share": "--reasoning-share",
    "compression": "--compression",
    "compression_applies_to": "--compression-applies-to",
    "api": "--api",
    "batch": "--batch",
    "residency": "--residency",
    "model": "--model",
    "variant": "--variant",
    "hardware": "--hardware",
    "compare": "--compare",
    "acquisition": "--acquisition",
    "capex_per_node": "--capex",
    "rental_per_gpu_hour": "--rental",
    "lifetime_years": "--lifetime-years",
    "usd_per_kwh": "--power-price",
    "pue": "--pue",
    "overhead_share": "--overhead",
    "utilization": "--utilization",
    "peak_to_mean": "--peak-to-mean",
    "hourly_profile": "--hourly-profile",
    "throughput_per_gpu": "--throughput-per-gpu",
    "output_throughput_per_gpu": "--output-throughput-per-gpu",
    "replica_gpus": "--replica-gpus",
}
_NUMBERS = {
    "input_share",
    "cached_share",
    "reasoning_share",
    "compression",
    "capex_per_node",
    "rental_per_gpu_hour",
    "lifetime_years",
    "usd_per_kwh",
    "pue",
    "overhead_share",
    "utilization",
    "peak_to_mean",
    "throughput_per_gpu",
    "output_throughput_per_gpu",
}

_HELP = """Plan self-hosting against a proprietary API: costs per day and month, GPUs and nodes, break-even
tokens per day, payback months, a sensitivity table.

Numbers accept 100M, 1.5B, 250k or 1e8. A --scenario YAML file takes the same fields (snake_case, e.g.
tokens_per_day, input_share, hourly_profile); flags override it. --config FILE overrides catalog prices and
hardware numbers (an `economics:` section; see docs/economics.md)."""


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("plan", help=_HELP, no_args_is_help=False)(plan)


def plan(
    tokens_per_day: str | None = typer.Option(
        None, "--tokens-per-day", help="Tokens per day (input+output): 100M, 1.5B."
    ),
    input_share: str | None = typer.Option(None, "--input-share", help="Fraction of tokens that are input [0.75]."),
    cached_share: str | None = typer.Option(None, "--cached-share", help="Fraction of input served from cache [0]."),
    reasoning_share: str | None = typer.Option(
        None, "--reasoning-share", help="Fraction of output that is reasoning [0]."
    ),
    compression: str | None = typer.Option(
        None, "--compression", help="OPSDC cut of reasoning tokens, 0.59 = 59% fewer."
    ),
    compression_applies_to: str | None = typer.Option(
        None, "--compression-applies-to", help="selfhost (default: the compressed open model only) or both."
    ),
    api: str | None = typer.Option(None, "--api", help="Proprietary API model, e.g. gpt-5.4 [gpt-5.4]."),
    batch: bool | None = typer.Option(None, "--batch/--no-batch", help="Price the API at its batch discount."),
    residency: bool | None = typer.Option(None, "--residency/--no-residency", help="Data-residency API endpoint."),
    model: str | None = typer.Option(None, "--model", help="Self-hosted model [nemotron-3-super]."),
    variant: str | None = typer.Option(None, "--variant", help="Throughput profile variant (e.g. thinking)."),
    hardware: str | None = typer.Option(
        None, "--hardware", help="Primary hardware: H100, H200, B200, GB200 NVL72, ..."
    ),
    compare: list[str] | None = typer.Option(
        None, "--compare", help="Hardware to compare (repeat; default: all profiled)."
    ),
    acquisition: str | None = typer.Option(None, "--acquisition", help="own or rent [own where a price is known]."),
    capex: str | None = typer.Option(None, "--capex", help="Purchase price per node/rack, USD (primary hardware)."),
    rental: str | None = typer.Option(None, "--rental", help="Rental USD per GPU-hour (primary hardware)."),
    lifetime_years: str | None = typer.Option(None, "--lifetime-years", help="Amortization period [3]."),
    power_price: str | None = typer.Option(None, "--power-price", help="USD per kWh [0.12]."),
    pue: str | None = typer.Option(None, "--pue", help="Power usage effectiveness [1.56]."),
    overhead: str | None = typer.Option(None, "--overhead", help="Staff and security overhead share [0.25]."),
    utilization: str | None = typer.Option(None, "--utilization", help="Fixed utilization (instead of a load curve)."),
    peak_to_mean: str | None = typer.Option(None, "--peak-to-mean", help="Peak-hour / mean load [2]."),
    hourly_profile: str | None = typer.Option(None, "--hourly-profile", help="24 comma-separated hourly loads."),
    throughput_per_gpu: str | None = typer.Option(None, "--throughput-per-gpu", help="Total tok/s per GPU (override)."),
    output_throughput_per_gpu: str | None = typer.Option(
        None, "--output-throughput-per-gpu", help="Output tok/s per GPU (override)."
    ),
    replica_gpus: str | None = typer.Option(None, "--replica-gpus", help="GPUs per model replica (override)."),
    scenario_file: str | None = typer.Option(None, "--scenario", help="YAML scenario file."),
    config: str | None = typer.Option(None, "--config", help="Config file with an economics: section."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    chart: str | None = typer.Option(None, "--chart", help="Write a PNG chart of cost against tokens/day."),
    report: str | None = typer.Option(None, "--report", help="Write the analysis as a self-contained HTML page."),
    seed_check: bool = typer.Option(False, "--seed-check", help="Recompute the seed article's economic claims."),
) -> None:
    from owstack.errors import ConfigError

    if seed_check:
        _seed_check(json_out)
        return
    flags = {
        "tokens_per_day": tokens_per_day,
        "input_share": input_share,
        "cached_share": cached_share,
        "reasoning_share": reasoning_share,
        "compression": compression,
        "compression_applies_to": compression_applies_to,
        "api": api,
        "batch": batch,
        "residency": residency,
        "model": model,
        "variant": variant,
        "hardware": hardware,
        "compare": compare or None,
        "acquisition": acquisition,
        "capex_per_node": capex,
        "rental_per_gpu_hour": rental,
        "lifetime_years": lifetime_years,
        "usd_per_kwh": power_price,
        "pue": pue,
        "overhead_share": overhead,
        "utilization": utilization,
        "peak_to_mean": peak_to_mean,
        "hourly_profile": hourly_profile,
        "throughput_per_gpu": throughput_per_gpu,
        "output_throughput_per_gpu": output_throughput_per_gpu,
        "replica_gpus": replica_gpus,
    }
    try:
        updates = _parse_flags({k: v for k, v in flags.items() if v is not None})
        scenario = _scenario(updates, scenario_file, config)
        from owstack.economics.planner import plan as run_plan

        result = run_plan(scenario)
    except ConfigError as exc:
        _fail(str(exc))
    outputs = _write_outputs(result, chart, report)
    if json_out:
        data = result.to_dict()
        data.update(outputs)
        typer.echo(json.dumps(data, allow_nan=False))
        return
    from rich.console import Console

    from owstack.economics.render import print_plan

    console = Console(width=max(120, Console().width))
    print_plan(result, console)
    for kind, path in outputs.items():
        console.print(f"{kind}: {path}")


def _parse_flags(raw: dict[str, Any]) -> dict[str, Any]:
    from owstack.economics.quantity import EXAMPLES, parse_quantity
    from owstack.errors import ConfigError

    out = dict(raw)
    for field, text in raw.items():
        flag = FLAGS[field]
        try:
            if field in _NUMBERS:
                out[field] = parse_quantity(text)
            elif field == "replica_gpus":
                out[field] = int(text)
            elif field == "hourly_profile":
                out[field] = tuple(parse_quantity(x) for x in str(text).replace(";", ",").split(",") if x.strip())
            elif field == "compare":
                out[field] = tuple(raw[field])
        except ValueError:
            raise ConfigError(f"{flag}: {text!r} is not a number ({EXAMPLES})") from None
    return out


def _scenario(updates: dict[str, Any], scenario_file: str | None, config: str | None) -> Any:
    from owstack.economics.scenario import make_scenario, read_yaml_mapping
    from owstack.errors import ConfigError

    raw: dict[str, Any] = read_yaml_mapping(scenario_file, "scenario file") if scenario_file else {}
    if config:
        raw["overrides"] = _merge(_config_section(config), raw.get("overrides") or {})
    raw.update(updates)
    if raw.get("tokens_per_day") is None:
        raise ConfigError("--tokens-per-day: required (e.g. 100M, 1.5B), or tokens_per_day in a --scenario file")
    names = {field: FLAGS[field] for field in updates}
    return make_scenario(raw, source=scenario_file, names=names)


def _config_section(path: str) -> dict[str, Any]:
    """The `economics:` section of a gateway config file, or a file holding just that section."""
    from pydantic import ValidationError

    from owstack.economics.config import EconomicsSection
    from owstack.economics.scenario import read_yaml_mapping
    from owstack.errors import ConfigError

    raw = read_yaml_mapping(path, "config file")
    section = raw.get("economics", {}) if "economics" in raw or not set(raw) <= {"site", "hardware", "prices"} else raw
    try:
        EconomicsSection.model_validate(section)
    except ValidationError as exc:
        problems = "; ".join(
            f"economics.{'.'.join(str(p) for p in e['loc'])}: "
            + ("unknown field" if e["type"] == "extra_forbidden" else str(e["msg"]).removeprefix("Value error, "))
            for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    return dict(section)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _write_outputs(result: Any, chart: str | None, report: str | None) -> dict[str, str]:
    outputs: dict[str, str] = {}
    png: bytes | None = None
    if chart:
        require_extra("charts", "matplotlib")
        from owstack.economics.chart import chart_data, draw_chart

        try:
            path = draw_chart(chart_data(result), chart)
        except OSError as exc:
            _fail(f"--chart: cannot write {chart}: {exc.strerror or exc}")
        png = path.read_bytes()
        outputs["chart"] = str(path)
    if report:
        from owstack.economics.report import write_report

        try:
            outputs["report"] = str(write_report(result, report, chart_png=png))
        except OSError as exc:
            _fail(f"--report: cannot write {report}: {exc.strerror or exc}")
    return outputs


def _seed_check(json_out: bool) -> None:
    from owstack.economics.seedcheck import seed_check

    checks = seed_check()
    if json_out:
        typer.echo(json.dumps({"claims": [c.to_dict() for c in checks]}, allow_nan=False))
        return
    from rich.console import Console

    from owstack.economics.render import print_seed_check

    print_seed_check(checks, Console(width=max(120, Console().width)))


def _fail(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    sys.exit(2)
