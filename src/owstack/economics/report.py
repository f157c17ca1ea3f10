"""`owstack plan --report FILE.html`: the whole analysis as one self-contained page.

The template is `economics/templates/report.html.j2`, rendered in jinja2's sandbox with autoescape on:
every value (model names, sources, notes) is escaped. The chart is embedded as a base64 PNG.
"""

from __future__ import annotations

import base64
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from owstack.catalog.hardware import hardware
from owstack.economics.quantity import format_quantity

if TYPE_CHECKING:
    from owstack.economics.planner import PlanResult


def render_report(result: PlanResult, *, chart_png: bytes | None = None) -> str:
    """The HTML page. Draws the chart itself when `chart_png` is None."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from owstack import __version__

    if chart_png is None:
        chart_png = _draw(result)
    env = ImmutableSandboxedEnvironment(autoescape=True, trim_blocks=False)
    env.globals.update(usd=_usd, pct=_pct, qty=_qty, months=_months, num=_num)
    text = resources.files("owstack.economics").joinpath("templates", "report.html.j2").read_text(encoding="utf-8")
    data = result.to_dict()
    return env.from_string(text).render(
        r=data,
        scenario=result.scenario,
        primary=data["primary"],
        scenario_rows=_scenario_rows(result),
        chart=base64.b64encode(chart_png).decode("ascii") if chart_png else None,
        hardware_sources=_hardware_sources(result),
        version=__version__,
    )


def write_report(result: PlanResult, path: str | Path, *, chart_png: bytes | None = None) -> Path:
    out = Path(path)
    out.write_text(render_report(result, chart_png=chart_png), encoding="utf-8")
    return out


def _draw(result: PlanResult) -> bytes:
    from owstack.economics.chart import chart_data, draw_chart

    with tempfile.TemporaryDirectory() as tmp:
        path = draw_chart(chart_data(result), Path(tmp) / "chart.png")
        return path.read_bytes()


def _scenario_rows(result: PlanResult) -> list[tuple[str, str]]:
    s = result.scenario
    w = result.workload
    return [
        (
            "tokens per day",
            f"{format_quantity(s.tokens_per_day)} ({format_quantity(w.input)} input, "
            f"{format_quantity(w.output)} output)",
        ),
        ("input share / cached share", f"{s.input_share:g} / {s.cached_share:g}"),
        (
            "reasoning share / compression",
            f"{s.reasoning_share:g} / {s.compression:g} (applies to {s.compression_applies_to})",
        ),
        (
            "API model",
            f"{result.price.model} (${result.price.input_per_m:g} / ${result.price.output_per_m:g} per M"
            f"{', batch' if s.batch else ''})",
        ),
        ("self-hosted model", s.model),
        ("load model", s.load_model),
    ]


def _hardware_sources(result: PlanResult) -> list[str]:
    out = []
    for option in result.options:
        hw = hardware(option.hardware)
        out.append(f"{hw.name}: {hw.source} ({hw.date})")
        for label, rng in (
            ("capex", hw.capex_per_node),
            ("rental", hw.rental_per_gpu_hour),
            ("power", hw.node_power_kw),
        ):
            if rng is not None:
                out.append(f"{hw.name} {label}: {rng.source} ({rng.date})")
    return out


def _usd(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if abs(value) < 1e5 else f"${value:,.0f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _qty(value: Any) -> str:
    return "never" if value is None else format_quantity(value)


def _months(value: Any) -> str:
    if value is None:
        return "never"
    return "immediate" if value == 0 else f"{value:.1f} months"


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if isinstance(value, int) else f"{value:.2f}"
