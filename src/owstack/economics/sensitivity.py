"""The planner's sensitivity table, load curve and notes.

The sensitivity table re-plans the primary option with one input changed at a time, each to the low
or high end its sources give. The load curve keeps the fleet fixed and varies the load it serves: it
shows why a fixed-utilization planner misleads (arXiv 2606.11690 measured $0.21 to $15.25 per million
output tokens on H100s, depending on request rate alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from owstack.catalog.hardware import cost_defaults, hardware
from owstack.economics.evaluation import DAYS_PER_MONTH, Evaluation, OptionResult, evaluate
from owstack.economics.quantity import format_quantity
from owstack.economics.scenario import Scenario
from owstack.errors import ConfigError

LOAD_POINTS = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 1.00)
#: what a fixed-utilization planner would report: GPUs as a fraction, busy this share of the day
NAIVE_UTILIZATIONS = (1.0, 0.7)
_CURVES = {"utilization": None, "peak_to_mean": None, "hourly_profile": None}


def sensitivity_table(scenario: Scenario, core: Evaluation) -> list[dict[str, Any]]:
    """One row per variant: the parameter, its value and the headline numbers."""
    rows = [_row("base", "as given", core)]
    rows += [_naive_row(core, u) for u in NAIVE_UTILIZATIONS]
    for parameter, label, updates in _variants(scenario, core):
        data = {**scenario.model_dump(), **updates}
        try:
            rows.append(_row(parameter, label, evaluate(Scenario.model_validate(data))))
        except (ConfigError, ValueError):
            continue  # e.g. renting hardware without a rental price: no row
    return rows


def _variants(s: Scenario, core: Evaluation) -> Iterator[tuple[str, str, dict[str, Any]]]:
    hw = hardware(s.hardware)
    owned = core.primary.per_gpu.acquisition == "own"
    t = s.tokens_per_day
    yield "tokens_per_day", f"{format_quantity(t / 4)} (x0.25)", {"tokens_per_day": t / 4}
    yield "tokens_per_day", f"{format_quantity(t * 4)} (x4)", {"tokens_per_day": t * 4}
    for share in (0.5, 0.9):
        if abs(share - s.input_share) > 1e-9:
            yield "input_share", f"{share:g}", {"input_share": share}
    if s.cached_share == 0:
        yield "cached_share", "0.5", {"cached_share": 0.5}
    yield "load", "flat (peak/mean 1)", {**_CURVES, "peak_to_mean": 1.0}
    yield "load", "peak/mean 3", {**_CURVES, "peak_to_mean": 3.0}
    yield "load", "fixed 100% utilization", {**_CURVES, "utilization": 1.0}
    yield "load", "fixed 30% utilization", {**_CURVES, "utilization": 0.3}
    defaults = cost_defaults()
    if owned and hw.capex_per_node is not None and s.capex_per_node is None:
        for end in ("low", "high"):
            value = getattr(hw.capex_per_node, end)
            if value != hw.capex_per_node.default:
                yield "capex_per_node", f"${value:,.0f} ({end})", {"capex_per_node": value}
    if owned:
        yield (
            "lifetime_years",
            f"{defaults['lifetime_years'].high:g} years",
            {"lifetime_years": defaults["lifetime_years"].high},
        )
        for key in ("usd_per_kwh", "pue"):
            rng = defaults[key]
            if getattr(s, key) is None and rng.low != rng.default:
                yield key, f"{rng.low:g} (low)", {key: rng.low}
    rng = defaults["overhead_share"]
    for value in (rng.low, rng.high):
        if abs(value - (s.overhead_share if s.overhead_share is not None else rng.default)) > 1e-9:
            yield "overhead_share", f"{value:.0%}", {"overhead_share": value}
    if hw.rental_per_gpu_hour is not None:
        if owned:
            yield "acquisition", f"rent at ${hw.rental_per_gpu_hour.default:.2f}/GPU-h", {"acquisition": "rent"}
        if hw.rental_per_gpu_hour.low != hw.rental_per_gpu_hour.default and s.rental_per_gpu_hour is None:
            low = hw.rental_per_gpu_hour.low
            yield (
                "acquisition",
                f"rent at ${low:.2f}/GPU-h (low/spot)",
                {"acquisition": "rent", "rental_per_gpu_hour": low},
            )
    if not s.batch and core.price.batch_discount > 0:
        yield "batch", f"API batch ({core.price.batch_discount:.0%} off)", {"batch": True}
    if s.reasoning_share == 0:
        yield "compression", "50% reasoning, 59% cut (self-host)", {"reasoning_share": 0.5, "compression": 0.59}
    elif s.compression == 0:
        yield "compression", "59% cut (self-host)", {"compression": 0.59}


def _row(parameter: str, label: str, e: Evaluation) -> dict[str, Any]:
    p = e.primary
    out_tokens = e.workload.output_selfhost
    return {
        "parameter": parameter,
        "value": label,
        "naive": parameter == "naive planner",
        "api_cost_per_day": e.api_cost_per_day,
        "selfhost_cost_per_day": p.cost_per_day,
        "gpus": p.fleet.gpus,
        "utilization": p.fleet.utilization,
        "savings_per_month": p.savings_per_month,
        "payback_months": p.payback_months,
        "breakeven_tokens_per_day": p.breakeven.first,
        "selfhost_cost_per_m_output": p.cost_per_day / out_tokens * 1e6 if out_tokens > 0 else None,
    }


def _naive_row(core: Evaluation, utilization: float) -> dict[str, Any]:
    """The naive planner's number: fractional GPUs at a fixed utilization, no peak, no whole nodes.

    Its cost is the real fleet's cost scaled by (measured utilization / assumed utilization).
    """
    row = _row("naive planner", f"fixed {utilization:.0%} utilization, fractional GPUs", core)
    fleet = core.primary.fleet
    scale = fleet.utilization / utilization
    savings = (core.api_cost_per_day - fleet.opex_per_day * scale) * DAYS_PER_MONTH
    capex = fleet.capex * scale
    row.update(
        selfhost_cost_per_day=fleet.cost_per_day * scale,
        gpus=fleet.gpus * scale,
        utilization=utilization,
        savings_per_month=savings,
        payback_months=(capex / savings if capex > 0 else 0.0) if savings > 0 else None,
        breakeven_tokens_per_day=None,
    )
    out = core.workload.output_selfhost
    row["selfhost_cost_per_m_output"] = row["selfhost_cost_per_day"] / out * 1e6 if out > 0 else None
    return row


def load_curve(core: Evaluation) -> list[dict[str, Any]]:
    """The sized fleet serving a share of its flat-out capacity: cost per M tokens rises as load falls."""
    p = core.primary
    raw_capacity = p.fleet.capacity_tokens_per_day * core.scenario.load_factor
    w = core.workload
    out_share = w.output_selfhost / w.tokens_per_day
    api_per_m = core.api_cost_per_day / w.tokens_per_day * 1e6
    rows = []
    for share in (*LOAD_POINTS, round(p.fleet.utilization, 4)):
        tokens = raw_capacity * share
        rows.append(
            {
                "utilization": share,
                "tokens_per_day": tokens,
                "selfhost_cost_per_m_tokens": p.cost_per_day / tokens * 1e6,
                "selfhost_cost_per_m_output": p.cost_per_day / (tokens * out_share) * 1e6 if out_share else None,
                "api_cost_per_m_tokens": api_per_m,
                "scenario": share == round(p.fleet.utilization, 4),
            }
        )
    return sorted(rows, key=lambda r: r["utilization"])


def notes(s: Scenario, core: Evaluation, options: list[OptionResult]) -> list[str]:
    out = [
        f"Load model: {s.load_model}. Utilization is measured (mean load / provisioned capacity), not assumed: "
        "a planner that fixes utilization misleads; measured H100 cost per million output tokens ranges "
        "from $0.21 to $15.25 with the request rate alone (arXiv 2606.11690). See the load curve.",
        "API prices: list prices without long-context surcharges (the planner does not know prompt sizes); "
        "reasoning tokens bill as output.",
        "A month is 365/12 days. Owned hardware: capex amortized over its lifetime, power at full load x PUE, "
        "overhead on both. Rented: power and hosting are inside the rental price.",
    ]
    if s.compression > 0 and s.reasoning_share > 0:
        where = "the self-hosted model only" if s.compression_applies_to == "selfhost" else "both sides"
        out.append(
            f"Compression: {s.compression:.0%} of reasoning tokens ({s.reasoning_share:.0%} of output) removed on "
            f"{where}. OPSDC trains the self-hosted model to reason shorter: fewer tokens to generate, less GPU "
            "time. The proprietary API keeps its own reasoning length unless 'both' is chosen; the API cost "
            "if it were also cut is reported separately."
        )
    if s.utilization is not None:
        out.append(
            f"Fixed utilization {s.utilization:.0%} was given: the fleet is sized for mean load / "
            f"{s.utilization:.0%}, with no peak; the load curve shows how cost moves with real load."
        )
    for option in options:
        hw = hardware(option.hardware)
        if option.throughput.estimate:
            out.append(f"{option.name}: throughput is an ESTIMATE ({option.throughput.source}).")
        if not hw.available:
            out.append(f"{option.name}: {hw.notes.strip()}")
        if not option.breakeven.fixed_fleet_within_capacity and option.breakeven.fixed_fleet is not None:
            out.append(
                f"{option.name}: the sized fleet's break-even volume exceeds what it can serve; "
                "its staircase break-even is the one that counts."
            )
    return out
