"""Terminal output of `owstack plan` and `owstack plan --seed-check` (rich tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from owstack.economics.quantity import format_quantity

if TYPE_CHECKING:
    from owstack.economics.planner import PlanResult
    from owstack.economics.seedcheck import ClaimCheck

_VERDICT_STYLE = {"holds": "green", "does not hold": "bold red", "holds only under": "yellow"}


def print_plan(result: PlanResult, console: Console) -> None:
    d = result.to_dict()
    s = result.scenario
    w = result.workload
    console.print(
        f"[bold]{format_quantity(s.tokens_per_day)} tokens/day[/] ({format_quantity(w.input)} input, "
        f"{format_quantity(w.cached)} cached, {format_quantity(w.output)} output, "
        f"{format_quantity(w.reasoning)} reasoning); load: {s.load_model}"
    )
    b = d["selfhost_breakdown_per_day"]
    lines = [
        f"API          {result.price.model}: {_usd(d['api_cost_per_day'])}/day, {_usd(d['api_cost_per_month'])}/month",
        f"self-hosted  {result.primary.name} ({d['primary']['acquisition']}): {_usd(d['selfhost_cost_per_day'])}/day, "
        f"{_usd(d['selfhost_cost_per_month'])}/month = capital {_usd(b['capital'])} + power {_usd(b['power'])} "
        f"+ overhead {_usd(b['overhead'])} per day",
        f"fleet        {d['gpus']} GPUs in {d['nodes']} node(s), {d['utilization']:.1%} utilized at the mean load",
        f"break-even   {_qty(d['breakeven_tokens_per_day'])} tokens/day (sustained beyond "
        f"{_qty(d['breakeven_sustained_tokens_per_day'])}; "
        f"this fixed fleet: {_qty(d['breakeven_fixed_fleet_tokens_per_day'])})"
        + (f": {d['breakeven_reason']}" if d["breakeven_reason"] else ""),
        f"payback      {_months(d['payback_months'])} ({d['payback_reason']})",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    console.print(_options_table(d))
    for name, why in d["skipped_options"].items():
        console.print(f"[dim]{name} not compared: {why}[/]")
    console.print(_sensitivity_table(d["sensitivity"]))
    console.print(_load_table(d["load_curve"], result.primary.name))
    for note in d["notes"]:
        console.print(f"[dim]- {note}[/]")


def _options_table(d: dict[str, Any]) -> Table:
    t = Table(title="hardware options", title_justify="left")
    for col in ("hardware", "buy/rent", "GPUs", "util.", "$/GPU-h", "$/day", "break-even/day", "payback", "throughput"):
        t.add_column(col, justify="left" if col in {"hardware", "buy/rent", "throughput"} else "right")
    for o in d["options"]:
        t.add_row(
            o["name"],
            o["acquisition"],
            str(o["gpus"]),
            f"{o['utilization']:.1%}",
            _usd(o["usd_per_gpu_hour"]),
            _usd(o["selfhost_cost_per_day"]),
            _qty(o["breakeven_tokens_per_day"]),
            _months(o["payback_months"]),
            "estimate" if o["throughput"]["estimate"] else "measured",
        )
    return t


def _sensitivity_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="sensitivity (primary option)", title_justify="left")
    for col in (
        "parameter",
        "value",
        "API $/day",
        "self-host $/day",
        "GPUs",
        "util.",
        "$/M out",
        "break-even/day",
        "payback",
    ):
        t.add_column(col, justify="left" if col in {"parameter", "value"} else "right")
    for r in rows:
        gpus = r["gpus"]
        t.add_row(
            r["parameter"],
            r["value"],
            _usd(r["api_cost_per_day"]),
            _usd(r["selfhost_cost_per_day"]),
            f"{gpus:g}" if isinstance(gpus, int) else f"{gpus:.2f}",
            f"{r['utilization']:.1%}",
            _usd(r["selfhost_cost_per_m_output"]),
            "-" if r.get("naive") else _qty(r["breakeven_tokens_per_day"]),
            _months(r["payback_months"]),
        )
    return t


def _load_table(rows: list[dict[str, Any]], name: str) -> Table:
    t = Table(title=f"load curve: the sized {name} fleet at other loads", title_justify="left")
    for col in ("utilization", "tokens/day", "$/M tokens", "$/M output", "API $/M tokens"):
        t.add_column(col, justify="right")
    for r in rows:
        mark = " <- scenario" if r["scenario"] else ""
        t.add_row(
            f"{r['utilization']:.1%}{mark}",
            _qty(r["tokens_per_day"]),
            _usd(r["selfhost_cost_per_m_tokens"]),
            _usd(r["selfhost_cost_per_m_output"]),
            _usd(r["api_cost_per_m_tokens"]),
        )
    return t


def print_seed_check(checks: list[ClaimCheck], console: Console) -> None:
    for c in checks:
        style = _VERDICT_STYLE.get(c.verdict, "")
        verdict = c.verdict + (f": {c.assumption}" if c.assumption else "")
        console.print(f"[bold]{c.claim}[/]")
        console.print(f"  recomputed: {c.recomputed}")
        console.print(f"  verdict:    [{style}]{verdict}[/]")
        console.print(f"  why:        {c.reason}", soft_wrap=False)
        console.print()


def _usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if abs(value) < 1e5 else f"${value:,.0f}"


def _qty(value: float | None) -> str:
    return "never" if value is None else format_quantity(value)


def _months(value: float | None) -> str:
    if value is None:
        return "never"
    return "immediate" if value == 0 else f"{value:.1f} months"
