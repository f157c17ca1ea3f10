"""`seed_check()`: each of the seed's economic claims recomputed; the arithmetic in comments."""

from __future__ import annotations

import pytest

from owstack.economics.evaluation import DAYS_PER_MONTH
from owstack.economics.seedcheck import ClaimCheck, seed_check


@pytest.fixture(scope="module")
def checks() -> dict[str, ClaimCheck]:
    return {c.id: c for c in seed_check()}


def test_every_claim_is_checked(checks: dict[str, ClaimCheck]) -> None:
    assert set(checks) == {
        "api-1750-per-day",
        "selfhost-175-per-day",
        "power-dgx-h100",
        "opsdc-2.5x",
        "capacity-100m-4xh200",
        "payback-far-sooner",
        "vera-rubin-10x",
        "fixed-cost-per-token",
    }
    for c in checks.values():
        assert c.verdict in {"holds", "does not hold", "holds only under"}
        assert c.claim and c.recomputed and c.reason
        if c.verdict == "holds only under":
            assert c.assumption


def test_1750_per_day_is_impossible(checks: dict[str, ClaimCheck]) -> None:
    c = checks["api-1750-per-day"]
    assert c.verdict == "does not hold"
    # all input: 100M x $2.50/M = $250; all output: 100M x $15/M = $1,500 < $1,750
    assert c.details["all_input"] == pytest.approx(250.0)
    assert c.details["all_output"] == pytest.approx(1500.0)
    # 1:1 = 50 x 2.5 + 50 x 15 = $875; 3:1 = 75 x 2.5 + 25 x 15 = $562.50
    assert c.details["one_to_one"] == pytest.approx(875.0)
    assert c.details["three_to_one"] == pytest.approx(562.5)
    # $1,750 = 100M in + 100M out = 100 x (2.5 + 15)
    assert c.details["input_plus_output_200m"] == pytest.approx(1750.0)
    assert "impossible" in c.reason and "200M" in c.reason


def test_175_per_day_is_amortization_only(checks: dict[str, ClaimCheck]) -> None:
    c = checks["selfhost-175-per-day"]
    assert c.verdict == "holds only under"
    # 175 / 8 GPUs / 24 h = $0.911/GPU-hour; $24k x 8 / (3 x 365) = $175.34/day
    assert c.details["implied_usd_per_gpu_hour"] == pytest.approx(175 / 8 / 24)
    assert c.value == pytest.approx(24_000 * 8 / (3 * 365), rel=1e-9)
    # a $270k DGX at $175/day lasts 270000 / (175 x 365) = 4.23 years
    assert c.details["dgx_years"] == pytest.approx(4.227, abs=1e-3)
    assert c.assumption and "no power" in c.assumption
    assert c.details["with_power_and_overhead"] > c.value


def test_dgx_power(checks: dict[str, ClaimCheck]) -> None:
    c = checks["power-dgx-h100"]
    # 10.2 kW x 24 = 244.8 kWh; x 0.10 = $24.48, x 0.12 = $29.376
    assert c.value == pytest.approx(244.8)
    assert (c.details["usd_low"], c.details["usd_high"]) == pytest.approx((24.48, 29.376))
    assert c.verdict == "holds only under" and c.assumption and "PUE 1.0" in c.assumption


def test_opsdc_factor(checks: dict[str, ClaimCheck]) -> None:
    c = checks["opsdc-2.5x"]
    # 1 / (1 - 0.59) = 2.439; measured 56.9% -> 1 / 0.431 = 2.320
    assert c.value == pytest.approx(1 / 0.41)
    assert c.details["measured_factor"] == pytest.approx(1 / 0.431)
    # whole bill at 3:1, all output reasoning: 562.50 / (187.50 + 375 x 0.41) = 562.50 / 341.25 = 1.648
    assert c.details["whole_bill"]["3:1"] == pytest.approx(562.5 / 341.25)
    # 1:1: 875 / (125 + 750 x 0.41) = 875 / 432.5 = 2.023
    assert c.details["whole_bill"]["1:1"] == pytest.approx(875 / 432.5)
    assert c.verdict == "holds only under" and c.assumption and "output" in c.assumption


def test_capacity_claim_holds(checks: dict[str, ClaimCheck]) -> None:
    c = checks["capacity-100m-4xh200"]
    # 1e8 / 86,400 = 1,157.4 tok/s = 17.3% of the 6,687 tok/s one 4x H200 replica measured
    assert c.value == pytest.approx(1e8 / 86_400)
    assert c.details["share_of_replica"] == pytest.approx(1e8 / 86_400 / 6687)
    assert c.verdict == "holds"


def test_payback_claim(checks: dict[str, ClaimCheck]) -> None:
    c = checks["payback-far-sooner"]
    # the seed's own numbers: $192k / ($1,750 x 30.42 days) = 3.61 months
    assert c.details["seed_months"] == pytest.approx(192_000 / (1750 * DAYS_PER_MONTH))
    months = c.details["months"]
    # recomputed paybacks are much longer than the seed's numbers imply, but inside a 3-year life
    assert all(3 * c.details["seed_months"] < m < 36 for m in months.values())
    assert c.verdict == "holds only under"


def test_vera_rubin_and_fixed_cost(checks: dict[str, ClaimCheck]) -> None:
    vr = checks["vera-rubin-10x"]
    assert vr.verdict == "holds only under" and vr.assumption and "FP4" in vr.assumption
    assert 1 < vr.details["conservative"] <= vr.details["friendliest"] < 10
    fixed = checks["fixed-cost-per-token"]
    assert fixed.verdict == "does not hold"
    costs = fixed.details["cost_per_m_output"]
    # the same fleet at 5% load costs 1.0 / 0.05 = 20x per token what it costs at 100%
    assert costs["0.05"] == pytest.approx(20 * costs["1.0"])
