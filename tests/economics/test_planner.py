"""`plan()` on hand-computed scenarios. The arithmetic is written out next to each assertion."""

from __future__ import annotations

import math
from typing import Any

import pytest

from owstack.economics.evaluation import DAYS_PER_MONTH
from owstack.economics.planner import plan
from owstack.economics.scenario import make_scenario
from owstack.errors import ConfigError

# A fully specified H100 scenario whose every number can be followed by hand:
#   owned 8-GPU node at $240,000 ($30,000/GPU) over 3 years, $0.10/kWh, PUE 1.5, 20% overhead,
#   a 4-GPU replica serving 1,000 total tok/s and 500 output tok/s per GPU, peak hour = 2x the mean.
HAND = {
    "tokens_per_day": "100M",
    "input_share": 0.75,
    "api": "gpt-5.4",
    "hardware": "H100",
    "compare": [],
    "acquisition": "own",
    "capex_per_node": 240_000,
    "lifetime_years": 3,
    "usd_per_kwh": 0.10,
    "pue": 1.5,
    "overhead_share": 0.2,
    "peak_to_mean": 2,
    "throughput_per_gpu": 1000,
    "output_throughput_per_gpu": 500,
    "replica_gpus": 4,
}


def _plan(**updates: Any) -> Any:
    return plan(make_scenario({**HAND, **updates}))


def test_api_cost_per_day_and_month() -> None:
    r = _plan()
    # 75M input x $2.50/M + 25M output x $15/M = 187.50 + 375.00 = $562.50/day
    assert r.api_cost_per_day == pytest.approx(562.50)
    # a month is 365/12 = 30.4167 days: 562.50 x 30.4167 = $17,109.375
    assert r.to_dict()["api_cost_per_month"] == pytest.approx(17_109.375)


def test_api_mixes_cache_and_batch() -> None:
    # 1:1 -> 50M x 2.50/M + 50M x 15/M = 125 + 750 = $875/day
    assert _plan(input_share=0.5).api_cost_per_day == pytest.approx(875.0)
    # 40% of the 75M input cached: 45M x 2.50/M + 30M x 0.25/M + 25M x 15/M = 112.5 + 7.5 + 375 = $495
    assert _plan(cached_share=0.4).api_cost_per_day == pytest.approx(495.0)
    # batch API, half price: 562.50 x 0.5 = $281.25
    assert _plan(batch=True).api_cost_per_day == pytest.approx(281.25)


def test_fleet_sizing_and_cost_breakdown() -> None:
    r = _plan()
    f = r.primary.fleet
    # peak total load: 100M / 86,400 s x 2 = 2,314.8 tok/s; one 4-GPU replica serves 4 x 1,000 = 4,000
    #   -> 0.579 replicas; peak output 25M / 86,400 x 2 = 578.7 tok/s vs 4 x 500 = 2,000 -> 0.289
    #   -> 1 replica = 4 GPUs, bought as one 8-GPU node (2 replicas fit in it)
    assert (f.replicas_needed, f.gpus_needed, f.gpus, f.nodes, f.replicas) == (1, 4, 8, 1, 2)
    # utilization = mean 1,157.4 tok/s / (2 replicas x 4,000) = 0.14468
    assert f.utilization == pytest.approx(1e8 / 86_400 / 8000)
    # per GPU-hour: capital 30,000 / (3 x 8,760) = 1.141553; power 10.2/8 kW x 1.5 x 0.10 = 0.19125;
    # overhead 0.2 x (1.141553 + 0.19125) = 0.266561; 8 GPUs x 24 h:
    capital, power = 30_000 / 26_280 * 192, 0.19125 * 192  # 219.178, 36.72
    overhead = 0.2 * (capital + power)  # 51.180
    assert f.capital_per_day == pytest.approx(capital)
    assert f.power_per_day == pytest.approx(power)
    assert f.overhead_per_day == pytest.approx(overhead)
    assert r.primary.cost_per_day == pytest.approx(capital + power + overhead)  # $307.08/day
    assert r.primary.cost_per_day == pytest.approx(307.078, abs=1e-3)
    # capacity with the peak fitting: 8,000 tok/s / 2 x 86,400 = 345.6M tokens/day
    assert f.capacity_tokens_per_day == pytest.approx(345.6e6)


def test_break_even_and_payback() -> None:
    r = _plan()
    cost = r.primary.cost_per_day  # $307.078/day for the one node
    per_token = 562.5 / 1e8  # the API's price per traffic token at 3:1
    # one node is cheaper than the API from 307.078 / 5.625e-6 = 54.59M tokens/day up to its capacity
    # (345.6M); two nodes ($614.16) at 345.6M are still below the API's $1,944: no later crossing back.
    be = r.primary.breakeven
    assert be.first == pytest.approx(cost / per_token)
    assert be.first == pytest.approx(54.592e6, rel=1e-4)
    assert be.sustained == pytest.approx(be.first)
    assert be.fixed_fleet == pytest.approx(be.first) and be.fixed_fleet_within_capacity
    # payback = capex / (API - opex) per month: opex = power + overhead = 36.72 + 51.18 = 87.90/day
    opex = r.primary.fleet.power_per_day + r.primary.fleet.overhead_per_day
    assert opex == pytest.approx(87.90, abs=0.01)
    assert r.primary.payback_months == pytest.approx(240_000 / ((562.5 - opex) * DAYS_PER_MONTH))
    assert r.primary.payback_months == pytest.approx(16.63, abs=0.01)
    d = r.to_dict()
    assert d["payback_months"] == r.primary.payback_months
    assert d["breakeven_tokens_per_day"] == be.first


def test_payback_never_when_api_is_cheaper_than_opex() -> None:
    # 5M tokens/day: API 5M x ($2.50 x 0.75 + $15 x 0.25)/M = 5 x 5.625 = $28.13/day < opex $87.90/day
    r = _plan(tokens_per_day="5M")
    assert r.api_cost_per_day == pytest.approx(28.125)
    assert r.primary.payback_months is None
    assert r.primary.payback_reason.startswith("never")
    assert r.to_dict()["payback_months"] is None


def test_break_even_never_when_full_fleet_costs_more_than_api() -> None:
    # gpt-5.4-nano at $0.20 / $1.25: 3:1 costs 0.75 x 0.20 + 0.25 x 1.25 = $0.4625 per M tokens.
    # a full node serves 345.6M/day for $307.08: $0.8885 per M > $0.4625 -> never.
    r = _plan(api="gpt-5.4-nano")
    assert r.primary.breakeven.first is None and r.primary.breakeven.sustained is None
    assert r.primary.breakeven.full_fleet_cost_per_m == pytest.approx(307.078 / 345.6, rel=1e-4)
    assert "never" in r.primary.breakeven.reason


def test_step_function_needs_more_nodes_at_higher_volume() -> None:
    # 1.5B tokens/day: peak total 1.5e9 / 86,400 x 2 = 34,722 tok/s / 4,000 per replica = 8.68 -> 9 replicas
    # = 36 GPUs -> 5 nodes of 8 (40 GPUs, 10 replicas).
    r = _plan(tokens_per_day="1.5B")
    f = r.primary.fleet
    assert (f.replicas_needed, f.gpus, f.nodes, f.replicas) == (9, 40, 5, 10)
    assert r.primary.cost_per_day == pytest.approx(5 * 307.078, abs=5e-3)
    # the fixed fleet of 5 nodes breaks even at 5 x 307.078 / 5.625e-6 = 272.96M tokens/day
    assert r.primary.breakeven.fixed_fleet == pytest.approx(5 * 307.078 / 5.625e-6, rel=1e-5)


def test_rented_fleet_pays_per_gpu_and_has_no_capex() -> None:
    # rented at $2/GPU-h, 20% overhead: $2.40/GPU-h; 1 replica = 4 GPUs (rental unit 1): 4 x 24 x 2.40 = $230.40
    r = _plan(acquisition="rent", rental_per_gpu_hour=2.0, capex_per_node=None)
    assert r.primary.fleet.gpus == 4
    assert r.primary.cost_per_day == pytest.approx(230.40)
    assert r.primary.fleet.power_per_day == 0.0
    assert r.primary.payback_months == 0.0 and "rented" in r.primary.payback_reason


def test_offered_load_curve_forms_agree() -> None:
    # a 24-hour profile with max 3 and mean 1.5 is a peak-to-mean of 2; utilization 0.5 sizes the same
    hourly = [3.0] * 6 + [1.0] * 18  # mean (18 + 18) / 24 = 1.5
    base = _plan(tokens_per_day="1.5B")
    by_profile = _plan(tokens_per_day="1.5B", peak_to_mean=None, hourly_profile=hourly)
    by_util = _plan(tokens_per_day="1.5B", peak_to_mean=None, utilization=0.5)
    assert by_profile.scenario.load_factor == pytest.approx(2.0)
    assert by_profile.primary.fleet.gpus == base.primary.fleet.gpus == by_util.primary.fleet.gpus
    # a flat load halves the replicas: 34,722 / 2 / 4,000 = 4.34 -> 5 replicas = 20 GPUs -> 3 nodes
    flat = _plan(tokens_per_day="1.5B", peak_to_mean=1)
    assert (flat.primary.fleet.replicas_needed, flat.primary.fleet.nodes) == (5, 3)


def test_compression_cuts_selfhosted_output_not_the_api() -> None:
    # output-bound case: 1 GPU per replica, 100 output tok/s per GPU, rented at $1/GPU-h, no overhead.
    base = {
        "throughput_per_gpu": 1e9,
        "output_throughput_per_gpu": 100,
        "replica_gpus": 1,
        "acquisition": "rent",
        "rental_per_gpu_hour": 1.0,
        "capex_per_node": None,
        "overhead_share": 0,
    }
    plain = _plan(**base)
    # output 25M/day: peak 25e6 / 86,400 x 2 = 578.7 tok/s / 100 -> 6 GPUs -> 6 x 24 x $1 = $144/day
    assert plain.primary.fleet.gpus == 6 and plain.primary.cost_per_day == pytest.approx(144.0)
    cut = _plan(**base, reasoning_share=0.8, compression=0.59)
    # reasoning = 80% of 25M = 20M; 59% of it removed = 11.8M -> 13.2M output to generate
    assert cut.workload.output_selfhost == pytest.approx(13.2e6)
    # peak 13.2e6 / 86,400 x 2 = 305.6 tok/s -> 4 GPUs -> $96/day
    assert cut.primary.fleet.gpus == 4 and cut.primary.cost_per_day == pytest.approx(96.0)
    # the proprietary API still bills its own (uncompressed) 25M output: $562.50/day
    assert cut.api_cost_per_day == pytest.approx(562.5)
    # the "both" view: 187.50 + 13.2M x $15/M = 187.50 + 198.00 = $385.50/day
    assert cut.api_cost_per_day_compressed == pytest.approx(385.5)
    both = _plan(**base, reasoning_share=0.8, compression=0.59, compression_applies_to="both")
    assert both.api_cost_per_day == pytest.approx(385.5)


def test_comparison_options_and_skips() -> None:
    r = plan(make_scenario({"tokens_per_day": "100M", "acquisition": "own"}))
    names = [o.name for o in r.options]
    assert names[0] == "H100 SXM" and "B200" in names and "GB200 NVL72" in names
    # H200 has no purchase price in the catalog: it cannot be owned, and says why
    assert "H200 SXM" in r.skipped and "capex" in r.skipped["H200 SXM"]
    estimates = {o.name: o.throughput.estimate for o in r.options}
    assert estimates["H100 SXM"] and not estimates["B200"]


def test_sensitivity_and_load_curve() -> None:
    r = _plan(tokens_per_day="1.5B")
    rows = {(row["parameter"], row["value"]): row for row in r.sensitivity}
    base = rows[("base", "as given")]
    assert base["selfhost_cost_per_day"] == pytest.approx(r.primary.cost_per_day)
    # the naive planner at 100% utilization: the fleet's cost x measured utilization (fractional GPUs)
    naive = rows[("naive planner", "fixed 100% utilization, fractional GPUs")]
    assert naive["selfhost_cost_per_day"] == pytest.approx(r.primary.cost_per_day * r.primary.fleet.utilization)
    # 4x the tokens costs 4x at the API; flat load needs fewer GPUs than the 2x peak
    x4 = next(row for (p, _), row in rows.items() if p == "tokens_per_day" and row["api_cost_per_day"] > 20_000)
    assert x4["api_cost_per_day"] == pytest.approx(4 * r.api_cost_per_day)
    assert rows[("load", "flat (peak/mean 1)")]["gpus"] < base["gpus"]
    # load curve: cost per M tokens is inversely proportional to load: 1% costs 100x of 100%
    curve = {row["utilization"]: row["selfhost_cost_per_m_tokens"] for row in r.load_curve}
    assert curve[0.01] == pytest.approx(100 * curve[1.0])
    assert any(row["scenario"] for row in r.load_curve)


def test_result_is_json_ready() -> None:
    import json

    d = _plan().to_dict()
    text = json.dumps(d, allow_nan=False)
    for key in ("api_cost_per_day", "selfhost_cost_per_day", "breakeven_tokens_per_day", "payback_months"):
        assert key in json.loads(text)
    assert all(math.isfinite(row["selfhost_cost_per_day"]) for row in d["sensitivity"])


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("tokens_per_day", -1, "tokens_per_day: must be a positive number"),
        ("tokens_per_day", "lots", "tokens_per_day: 'lots' is not a number"),
        ("input_share", 1.2, "input_share: must be a fraction between 0 and 1"),
        ("cached_share", -0.1, "cached_share: must be a fraction between 0 and 1"),
        ("compression", 1.0, "compression: must be at least 0 and below 1"),
        ("hardware", "TPU v5", "hardware: unknown option 'TPU v5'; allowed: H100 SXM"),
        ("api", "gpt-2", "api: unknown API model 'gpt-2'; allowed: claude-haiku-4.5"),
        ("model", "llama-3", "model: unknown self-hosted model 'llama-3'; allowed: nemotron-3-super"),
        ("utilization", 0, "utilization: must be a fraction above 0"),
        ("pue", 0.9, "pue: must be between 1.0 and 5.0"),
        ("acquisition", "lease", "acquisition: Input should be 'own' or 'rent'"),
        ("colour", "red", "colour: unknown field; allowed: tokens_per_day"),
    ],
)
def test_impossible_scenarios_name_the_field(field: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_scenario({"tokens_per_day": "100M", field: value}, source="s.yaml")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
