"""The per-request cost model the metering ledger calls: hand-computed cases, arithmetic in comments."""

from __future__ import annotations

import pytest

from owstack.catalog.prices import api_price
from owstack.economics.costs import (
    UTILIZATION_FLOOR,
    api_cost,
    api_cost_parts,
    hardware_profile,
    profile_cost_per_second,
    selfhost_request_cost,
)
from owstack.errors import ConfigError

GPT54 = api_price("gpt-5.4")  # $2.50 in / $15 out / $0.25 cached, batch 50% off, >272K prompts 2x / 1.5x


def test_api_cost_one_request_plain() -> None:
    # 1,000 prompt + 500 completion tokens: 1000 x 2.50 / 1e6 + 500 x 15 / 1e6 = 0.0025 + 0.0075 = $0.01
    assert api_cost(GPT54, 1000, 500) == pytest.approx(0.01)


def test_api_cost_cached_tokens_bill_at_cached_rate() -> None:
    # 1,000 prompt tokens of which 800 cached, 500 completion:
    # 200 x 2.50 / 1e6 = 0.0005; 800 x 0.25 / 1e6 = 0.0002; 500 x 15 / 1e6 = 0.0075 -> $0.0082
    assert api_cost(GPT54, 1000, 500, cached_tokens=800) == pytest.approx(0.0082)


def test_api_cost_batch_is_half_price() -> None:
    # the plain request ($0.01) through the Batch API: x (1 - 0.5) = $0.005
    assert api_cost(GPT54, 1000, 500, batch=True) == pytest.approx(0.005)
    # batch and cache together: $0.0082 x 0.5 = $0.0041
    assert api_cost(GPT54, 1000, 500, cached_tokens=800, batch=True) == pytest.approx(0.0041)


def test_api_cost_long_context_multipliers_apply_above_threshold_only() -> None:
    # 272,000 prompt tokens is not *over* the threshold: 272000 x 2.5 / 1e6 + 1000 x 15 / 1e6 = 0.68 + 0.015
    assert api_cost(GPT54, 272_000, 1000) == pytest.approx(0.695)
    # 300,000 prompt tokens: 300000 x 2.5 x 2 / 1e6 = 1.5; 1000 x 15 x 1.5 / 1e6 = 0.0225 -> $1.5225
    assert api_cost(GPT54, 300_000, 1000) == pytest.approx(1.5225)


def test_api_cost_residency_endpoint_costs_ten_percent_more() -> None:
    # $0.01 x 1.1 = $0.011
    assert api_cost(GPT54, 1000, 500, residency=True) == pytest.approx(0.011)


def test_reasoning_tokens_are_inside_completion() -> None:
    # 300 visible + 700 reasoning = 1,000 completion tokens at $15/M = $0.015 (no separate reasoning rate)
    assert api_cost(GPT54, 0, 1000) == pytest.approx(0.015)


def test_daily_volume_parts_match_the_issue_examples() -> None:
    # 100M tokens/day, input share 0.75: 75M x 2.5 / 1e6 + 25M x 15 / 1e6 = 187.5 + 375 = $562.50
    parts = api_cost_parts(GPT54, 75e6, 25e6)
    assert parts["input"] == pytest.approx(187.5)
    assert parts["output"] == pytest.approx(375.0)
    assert parts["total"] == pytest.approx(562.5)
    # 1:1: 50M x 2.5 / 1e6 + 50M x 15 / 1e6 = 125 + 750 = $875
    assert api_cost_parts(GPT54, 50e6, 50e6)["total"] == pytest.approx(875.0)


@pytest.mark.parametrize(("prompt", "completion", "cached"), [(-1, 0, 0), (0, -1, 0), (10, 0, 11), (10, 0, -1)])
def test_api_cost_rejects_impossible_counts(prompt: int, completion: int, cached: int) -> None:
    with pytest.raises(ValueError):
        api_cost(GPT54, prompt, completion, cached_tokens=cached)


def test_seed_8xh100_amortization_only_is_175_per_day() -> None:
    # $24,000 per GPU over 3 years: 24000 / (3 x 8760 h) = $0.9132 per GPU-hour;
    # x 8 GPUs x 24 h = $175.34/day. No power (0 $/kWh), no overhead.
    profile = hardware_profile(
        "8xH100", {"capex_per_gpu": 24000, "lifetime_years": 3, "usd_per_kwh": 0, "overhead_share": 0}
    )
    assert profile.count == 8
    assert profile.acquisition == "own"
    assert profile.usd_per_gpu_hour_effective == pytest.approx(0.9132, abs=1e-4)
    assert profile.usd_per_day == pytest.approx(175.34, abs=0.01)


def test_dgx_h100_power_is_25_to_29_dollars_per_day() -> None:
    # DGX H100 about 10.2 kW for 8 GPUs = 1.275 kW per GPU; 10.2 kW x 24 h = 244.8 kWh/day.
    # at PUE 1.0 and $0.10/kWh: 244.8 x 0.10 = $24.48/day; at $0.12: 244.8 x 0.12 = $29.38/day.
    for price, expected in ((0.10, 24.48), (0.12, 29.376)):
        profile = hardware_profile("8xH100", {"pue": 1.0, "usd_per_kwh": price, "overhead_share": 0})
        assert profile.power_kw_per_gpu == pytest.approx(1.275)
        assert profile.power_per_gpu_hour * 8 * 24 == pytest.approx(expected)


def test_effective_rate_is_capital_plus_power_plus_overhead() -> None:
    # owned H100 at catalog defaults: capex $317,000 per 8-GPU node = $39,625 per GPU over 3 years
    #   = 39625 / 26280 = $1.50780 per GPU-hour;
    # power 1.275 kW x PUE 1.56 x $0.12 = $0.238680; overhead (1.50780 + 0.23868) x 0.25 = $0.43662
    # total $2.18310 per GPU-hour
    p = hardware_profile("8xH100")
    assert p.capital_per_gpu_hour == pytest.approx(39625 / 26280)
    assert p.power_per_gpu_hour == pytest.approx(0.23868)
    assert p.overhead_per_gpu_hour == pytest.approx((39625 / 26280 + 0.23868) * 0.25)
    assert p.usd_per_gpu_hour_effective == pytest.approx(2.18310, abs=1e-5)
    # per second for all 8 GPUs: 2.18310 x 8 / 3600
    assert profile_cost_per_second(p) == pytest.approx(2.18310 * 8 / 3600, rel=1e-5)


def test_rented_profile_has_no_power_line() -> None:
    # H200 has no catalog purchase price: rented at $4.54/GPU-h (power inside the price),
    # plus 25% overhead: 4.54 x 1.25 = $5.675 per GPU-hour.
    p = hardware_profile("2xH200")
    assert (p.acquisition, p.count) == ("rent", 2)
    assert p.power_per_gpu_hour == 0.0
    assert p.usd_per_gpu_hour_effective == pytest.approx(5.675)
    # an explicit rental price selects renting even where a capex exists
    q = hardware_profile("H100", {"rental_per_gpu_hour": 2.0, "overhead_share": 0})
    assert (q.acquisition, q.count, q.usd_per_gpu_hour_effective) == ("rent", 1, 2.0)


@pytest.mark.parametrize(
    ("spec", "gpu", "count"),
    [
        ("8xH100", "h100", 8),
        ("2 x h200", "h200", 2),
        ("H100", "h100", 1),
        ("H100 SXM", "h100", 1),
        ("GB200 NVL72", "gb200-nvl72", 72),
        ("Vera Rubin NVL72", "vera-rubin-nvl72", 72),
        ("4*B200", "b200", 4),
    ],
)
def test_hardware_profile_parses_specs(spec: str, gpu: str, count: int) -> None:
    p = hardware_profile(spec)
    assert (p.gpu, p.count) == (gpu, count)


@pytest.mark.parametrize("spec", ["8xA100", "", "0xH100", "H100x"])
def test_hardware_profile_unknown_spec_names_allowed_values(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        hardware_profile(spec)
    message = str(err.value)
    assert "hardware" in message
    if spec != "0xH100":
        assert "H100 SXM" in message and "GB200 NVL72" in message


def test_hardware_profile_bad_override_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"bogus.*allowed: capex_per_node"):
        hardware_profile("8xH100", {"bogus": 1.0})
    with pytest.raises(ConfigError, match="pue"):
        hardware_profile("8xH100", {"pue": 0.5})


def test_request_cost_spreads_idle_time() -> None:
    # 8xH100 with overrides costing exactly $1/GPU-hour: $26,280 over 3 years = 26280 / (3 x 8760 h) = $1/h;
    # 8 GPUs -> $8/h -> 8/3600 $/s.
    p = hardware_profile("8xH100", {"capex_per_gpu": 26280, "lifetime_years": 3, "usd_per_kwh": 0, "overhead_share": 0})
    assert p.usd_per_gpu_hour_effective == pytest.approx(1.0)
    per_s = 8 / 3600
    assert profile_cost_per_second(p) == pytest.approx(per_s)
    # 2 busy seconds at 50% utilization: 2 x 8/3600 / 0.5 = $0.008889
    assert selfhost_request_cost(p, 2.0, 0.5) == pytest.approx(2 * per_s / 0.5)
    # at full utilization the request pays exactly its busy time
    assert selfhost_request_cost(p, 2.0, 1.0) == pytest.approx(2 * per_s)
    # utilization above 1 (overlapping requests counted twice) is clamped to 1
    assert selfhost_request_cost(p, 2.0, 3.0) == pytest.approx(2 * per_s)
    # below the floor the divisor stops at UTILIZATION_FLOOR (0.05): at most 20x the busy time
    assert selfhost_request_cost(p, 2.0, 0.0) == pytest.approx(2 * per_s / UTILIZATION_FLOOR)
    assert selfhost_request_cost(p, 2.0, 0.001) == pytest.approx(2 * per_s / 0.05)


def test_request_costs_sum_to_the_window_cost() -> None:
    # Over one hour, 3 requests busy 600 s each: utilization = 1800 / 3600 = 0.5.
    # Each pays per_s x 600 / 0.5; together per_s x 3600 = the whole hour.
    p = hardware_profile("8xH100")
    per_hour = p.usd_per_hour
    total = sum(selfhost_request_cost(p, 600.0, 0.5) for _ in range(3))
    assert total == pytest.approx(per_hour)


@pytest.mark.parametrize(("busy", "util"), [(-1.0, 0.5), (1.0, -0.1), (float("nan"), 0.5), (1.0, float("inf"))])
def test_request_cost_rejects_bad_numbers(busy: float, util: float) -> None:
    with pytest.raises(ValueError):
        selfhost_request_cost(hardware_profile("H100"), busy, util)
