"""`owstack plan`: what the team pays an API, what self-hosting would cost, and when it pays back.

    plan(scenario) -> PlanResult      API cost, self-hosted fleet and cost per hardware option, break-even,
                                      payback, a sensitivity table and a load curve

The API cost and each option's fleet, break-even and payback come from `evaluation.py`; the seed article's
economic claims are recomputed by `seedcheck.seed_check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from owstack.catalog.hardware import hardware
from owstack.catalog.prices import ApiPrice
from owstack.economics.evaluation import DAYS_PER_MONTH, OptionResult, api_parts_for, evaluate, evaluate_option
from owstack.economics.fleet import Workload, workload
from owstack.economics.scenario import Scenario
from owstack.economics.sensitivity import load_curve, notes, sensitivity_table
from owstack.economics.throughput import profiled_hardware
from owstack.errors import ConfigError


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
    core = evaluate(scenario)
    options, skipped = [core.primary], {}
    for hw_id in _compare_ids(scenario):
        if hw_id == core.primary.hardware:
            continue
        try:
            options.append(evaluate_option(scenario, core.workload, core.api_cost_per_day, hw_id, primary=False))
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
        api_cost_per_day_compressed=api_parts_for(scenario, core.price, compressed)["total"],
        primary=core.primary,
        options=options,
        skipped=skipped,
        sensitivity=sensitivity_table(scenario, core),
        load_curve=load_curve(core),
        notes=notes(scenario, core, options),
    )


def _compare_ids(scenario: Scenario) -> list[str]:
    if scenario.compare is not None:
        return [hardware(h).id for h in scenario.compare]
    return profiled_hardware(scenario.model)
