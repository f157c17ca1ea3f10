"""`owstack plan`: what the team pays an API, what self-hosting would cost, and when it pays back.

    plan(scenario) -> PlanResult      API cost, self-hosted fleet and cost per hardware option, break-even,
                                      payback, a sensitivity table and a load curve
    seed_check()   -> list[ClaimCheck]  the seed article's economic claims, recomputed

Payback months = capex / (monthly API cost - monthly self-hosted opex); opex is power + overhead when
owned (rental + overhead when rented, which has no capex). `None` ("never") when savings are <= 0.
A month is 365/12 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from owstack.catalog.hardware import hardware
from owstack.catalog.prices import ApiPrice, api_price
from owstack.economics.costs import HardwareProfile, api_cost_parts, build_profile
from owstack.economics.fleet import BreakEven, Fleet, Workload, break_even, replicas_per_token_day, size_fleet, workload
from owstack.economics.scenario import Scenario
from owstack.economics.seedcheck import ClaimCheck, seed_check
from owstack.economics.throughput import ThroughputProfile, profiled_hardware, throughput_profile
from owstack.errors import ConfigError

DAYS_PER_MONTH = 365.0 / 12.0

__all__ = ["DAYS_PER_MONTH", "ClaimCheck", "OptionResult", "PlanResult", "Scenario", "evaluate", "plan", "seed_check"]


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


@dataclass(frozen=True)
class PlanResult:
    scenario: Scenario
    workload: Workload
    price: ApiPrice
    api_parts: dict[str, float]
    api_cost_per_day: float
    #: what the API would cost if it, too, got the compression cut (the "both" view)
    api_cost_per_day_compressed: float
    primary: OptionResult
    options: list[OptionResult]
    skipped: dict[str, str]
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    load_curve: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        p = self.primary
        return {
            "api_model": self.price.model,
            "api_cost_per_day": self.api_cost_per_day,
            "api_cost_per_month": self.api_cost_per_day * DAYS_PER_MONTH,
            "api_breakdown_per_day": {k: v for k, v in self.api_parts.items() if k != "total"},
            "api_cost_per_day_if_api_compressed": self.api_cost_per_day_compressed,
            "hardware": p.hardware,
            "selfhost_cost_per_day": p.cost_per_day,
            "selfhost_cost_per_month": p.cost_per_day * DAYS_PER_MONTH,
            "selfhost_breakdown_per_day": p.to_dict()["breakdown_per_day"],
            "gpus": p.fleet.gpus,
            "nodes": p.fleet.nodes,
            "utilization": p.fleet.utilization,
            "breakeven_tokens_per_day": p.breakeven.first,
            "breakeven_sustained_tokens_per_day": p.breakeven.sustained,
            "breakeven_fixed_fleet_tokens_per_day": p.breakeven.fixed_fleet,
            "breakeven_reason": p.breakeven.reason,
            "savings_per_month": p.savings_per_month,
            "payback_months": p.payback_months,
            "payback_reason": p.payback_reason,
            "tokens": self.workload.to_dict(),
            "load_model": self.scenario.load_model,
            "load_factor": self.scenario.load_factor,
            "api_price": self.price.to_dict(),
            "primary": p.to_dict(),
            "options": [o.to_dict() for o in self.options],
            "skipped_options": self.skipped,
            "sensitivity": self.sensitivity,
            "load_curve": self.load_curve,
            "notes": self.notes,
            "scenario": self.scenario.model_dump(mode="json", exclude={"overrides"}),
        }


def plan(scenario: Scenario) -> PlanResult:
    """The whole analysis. Raises `ConfigError` naming the field for an impossible scenario."""
    from owstack.economics.sensitivity import load_curve, notes, sensitivity_table

    core = evaluate(scenario)
    options, skipped = [core.primary], {}
    for hw_id in _compare_ids(scenario):
        if hw_id == core.primary.hardware:
            continue
        try:
            options.append(_option(scenario, core.workload, core.api_cost_per_day, hw_id, primary=False))
        except ConfigError as exc:
            skipped[hardware(hw_id).name] = str(exc)
    compressed = workload(
        scenario.tokens_per_day,
        scenario.input_share,
        scenario.cached_share,
        scenario.reasoning_share,
        scenario.compression,
        True,
    )
    return PlanResult(
        scenario=scenario,
        workload=core.workload,
        price=core.price,
        api_parts=core.api_parts,
        api_cost_per_day=core.api_cost_per_day,
        api_cost_per_day_compressed=_api_parts(scenario, core.price, compressed)["total"],
        primary=core.primary,
        options=options,
        skipped=skipped,
        sensitivity=sensitivity_table(scenario, core),
        load_curve=load_curve(core),
        notes=notes(scenario, core, options),
    )


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
    parts = _api_parts(scenario, price, w)
    primary = _option(scenario, w, parts["total"], scenario.hardware, primary=True)
    return Evaluation(scenario, w, price, parts, parts["total"], primary)


def _api_parts(scenario: Scenario, price: ApiPrice, w: Workload) -> dict[str, float]:
    return api_cost_parts(price, w.input, w.output_api, w.cached, scenario.batch, False, scenario.residency)


def _compare_ids(scenario: Scenario) -> list[str]:
    if scenario.compare is not None:
        return [hardware(h).id for h in scenario.compare]
    return profiled_hardware(scenario.model)


def _option(scenario: Scenario, w: Workload, api_per_day: float, option: str, *, primary: bool) -> OptionResult:
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
