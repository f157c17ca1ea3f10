"""What one scenario costs on the API and on its primary hardware option: the core that the planner, the
sensitivity table, the seed check and the console's break-even view all recompute.

    evaluate(scenario) -> Evaluation   the workload, API price and daily cost, and the primary option
                                       sized for the load (`OptionResult`)

Payback months = capex / (monthly API cost - monthly self-hosted opex); opex is power + overhead when
owned (rental + overhead when rented, which has no capex). `None` ("never") when savings are <= 0.
A month is 365/12 days.

It stands apart from the planner (planner.py) because the sensitivity table (sensitivity.py), which the
planner draws, re-evaluates the scenario once per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from owstack.catalog.hardware import hardware
from owstack.catalog.prices import ApiPrice, api_price
from owstack.economics.costs import HardwareProfile, api_cost_parts, build_profile
from owstack.economics.fleet import BreakEven, Fleet, Workload, break_even, replicas_per_token_day, size_fleet, workload
from owstack.economics.scenario import Scenario
from owstack.economics.throughput import ThroughputProfile, throughput_profile

DAYS_PER_MONTH = 365.0 / 12.0


@dataclass(frozen=True)
class OptionResult:
    """One hardware option sized for the scenario's load."""

    hardware: str
    name: str
    per_gpu: HardwareProfile
    throughput: ThroughputProfile
    fleet: Fleet
    breakeven: BreakEven
    savings_per_month: float
    payback_months: float | None
    payback_reason: str
    #: replicas per traffic token/day (see `fleet`): the staircase S(T) is size_fleet(T, k, ...)
    k: float
    load_factor: float

    def cost_at(self, tokens_per_day: float) -> float:
        """Self-hosted cost per day of the fleet sized for `tokens_per_day` (same mix, same load curve)."""
        hw = hardware(self.hardware)
        return size_fleet(
            tokens_per_day,
            self.k,
            self.load_factor,
            self.throughput,
            self.per_gpu,
            hw.gpus_per_node,
            self.fleet.unit_gpus,
        ).cost_per_day

    @property
    def cost_per_day(self) -> float:
        return self.fleet.cost_per_day

    def cost_per_m(self, tokens: float) -> float:
        return self.fleet.cost_per_day / tokens * 1e6 if tokens > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware,
            "name": self.name,
            "acquisition": self.per_gpu.acquisition,
            "selfhost_cost_per_day": self.fleet.cost_per_day,
            "selfhost_cost_per_month": self.fleet.cost_per_day * DAYS_PER_MONTH,
            "breakdown_per_day": {
                "capital": self.fleet.capital_per_day,
                "power": self.fleet.power_per_day,
                "overhead": self.fleet.overhead_per_day,
            },
            "usd_per_gpu_hour": self.per_gpu.usd_per_gpu_hour_effective,
            "gpus": self.fleet.gpus,
            "nodes": self.fleet.nodes,
            "replicas": self.fleet.replicas,
            "utilization": self.fleet.utilization,
            "capacity_tokens_per_day": self.fleet.capacity_tokens_per_day,
            "capex": self.fleet.capex,
            "opex_per_day": self.fleet.opex_per_day,
            "breakeven_tokens_per_day": self.breakeven.first,
            "breakeven_sustained_tokens_per_day": self.breakeven.sustained,
            "breakeven_fixed_fleet_tokens_per_day": self.breakeven.fixed_fleet,
            "breakeven": self.breakeven.to_dict(),
            "savings_per_month": self.savings_per_month,
            "payback_months": self.payback_months,
            "payback_reason": self.payback_reason,
            "per_gpu": self.per_gpu.to_dict(),
            "fleet": self.fleet.to_dict(),
            "throughput": self.throughput.to_dict(),
        }


@dataclass(frozen=True)
class Evaluation:
    """The API side and the primary option: what the sensitivity table recomputes per row."""

    scenario: Scenario
    workload: Workload
    price: ApiPrice
    api_parts: dict[str, float]
    api_cost_per_day: float
    primary: OptionResult


def evaluate(scenario: Scenario) -> Evaluation:
    """API cost and the primary hardware option, without comparisons or tables."""
    w = workload(
        scenario.tokens_per_day,
        scenario.input_share,
        scenario.cached_share,
        scenario.reasoning_share,
        scenario.compression,
        scenario.compression_applies_to == "both",
    )
    price = api_price(scenario.api, scenario.overrides.price_overrides(scenario.api))
    parts = api_parts_for(scenario, price, w)
    primary = evaluate_option(scenario, w, parts["total"], scenario.hardware, primary=True)
    return Evaluation(scenario, w, price, parts, parts["total"], primary)


def api_parts_for(scenario: Scenario, price: ApiPrice, w: Workload) -> dict[str, float]:
    """The API's daily cost of workload `w`, by part, with the scenario's batch and residency terms."""
    return api_cost_parts(price, w.input, w.output_api, w.cached, scenario.batch, False, scenario.residency)


def evaluate_option(scenario: Scenario, w: Workload, api_per_day: float, option: str, *, primary: bool) -> OptionResult:
    """Hardware `option` sized for workload `w`, against the API's `api_per_day`. The scenario's own
    capex, rental and throughput figures apply to the primary option only."""
    hw = hardware(option)
    per_gpu = build_profile(hw, 1, _profile_overrides(scenario, hw.id, primary))
    tp = throughput_profile(scenario.model, hw.id, scenario.variant, _throughput_overrides(scenario, primary))
    k = replicas_per_token_day(w, tp, scenario.load_factor)
    unit = hw.gpus_per_node if per_gpu.acquisition == "own" else hw.rental_unit_gpus
    fleet = size_fleet(w.tokens_per_day, k, scenario.load_factor, tp, per_gpu, hw.gpus_per_node, unit)
    api_per_token = api_per_day / w.tokens_per_day
    be = break_even(api_per_token, per_gpu.usd_per_gpu_hour_effective * 24 * unit, unit, tp.replica_gpus, k, fleet)
    savings = (api_per_day - fleet.opex_per_day) * DAYS_PER_MONTH
    months, reason = _payback(fleet, savings)
    return OptionResult(hw.id, hw.name, per_gpu, tp, fleet, be, savings, months, reason, k, scenario.load_factor)


def _payback(fleet: Fleet, savings_per_month: float) -> tuple[float | None, str]:
    if savings_per_month <= 0:
        api_per_day = savings_per_month / DAYS_PER_MONTH + fleet.opex_per_day
        parts = "power and overhead" if fleet.capex else "rental and overhead"
        return None, (
            f"never: the API costs ${api_per_day:,.2f}/day, no more than the self-hosted opex of "
            f"${fleet.opex_per_day:,.2f}/day ({parts})"
        )
    if fleet.capex <= 0:
        return 0.0, f"no capital outlay (rented): saves ${savings_per_month:,.0f} per month from the first month"
    months = fleet.capex / savings_per_month
    return months, f"capex ${fleet.capex:,.0f} / savings ${savings_per_month:,.0f} per month"


def _profile_overrides(scenario: Scenario, hw_id: str, primary: bool) -> dict[str, float]:
    values = scenario.overrides.hardware_overrides(hw_id)
    for key in ("lifetime_years", "usd_per_kwh", "pue", "overhead_share"):
        value = getattr(scenario, key)
        if value is not None:
            values[key] = float(value)
    if primary and scenario.capex_per_node is not None:
        values["capex_per_node"] = scenario.capex_per_node
        values.pop("capex_per_gpu", None)
    if primary and scenario.rental_per_gpu_hour is not None:
        values["rental_per_gpu_hour"] = scenario.rental_per_gpu_hour
    if scenario.acquisition is not None:
        values["rent"] = 1.0 if scenario.acquisition == "rent" else 0.0
    return values


def _throughput_overrides(scenario: Scenario, primary: bool) -> dict[str, float]:
    if not primary:
        return {}
    keys = ("throughput_per_gpu", "output_throughput_per_gpu", "replica_gpus")
    return {key: float(getattr(scenario, key)) for key in keys if getattr(scenario, key) is not None}
