"""The staircase break-even, on synthetic numbers solved by hand, and against a brute-force scan."""

from __future__ import annotations

import math

import pytest

from owstack.economics.fleet import BreakEven, Fleet, break_even
from owstack.economics.quantity import format_quantity, parse_quantity

V = 1e9  # one replica serves 1e9 traffic tokens/day (at the load curve's peak)
K = 1 / V  # replicas per token/day
P = 1e-6  # API price per token ($1 per M)


def _fleet(cost: float, replicas: int) -> Fleet:
    return Fleet(
        replicas,
        replicas,
        8,
        8 * replicas,
        8 * replicas,
        replicas,
        8,
        replicas / K,
        0.5,
        cost,
        cost,
        0.0,
        0.0,
        0.0,
        0.0,
    )


def _brute(unit_cost: float, unit_gpus: int, replica_gpus: int, t_max: float) -> tuple[float | None, float | None]:
    """Scan T on a fine grid: first T where the staircase <= the line, and start of the last cheaper run."""
    first = sustained = None
    steps = 200_000
    for i in range(1, steps + 1):
        t = t_max * i / steps
        replicas = max(1, math.ceil(t * K - 1e-9))
        units = math.ceil(replicas * replica_gpus / unit_gpus)
        cheaper = units * unit_cost <= P * t
        if cheaper and first is None:
            first = t
        if cheaper and sustained is None:
            sustained = t
        if not cheaper:
            sustained = None
    return first, sustained


def test_one_unit_wins_then_loses_then_wins_for_good() -> None:
    # A node (8 GPUs, one 8-GPU replica) costs $600/day and serves up to 1e9 tokens/day; the API charges
    # $1e-6 per token. Step 1: cheaper from 600 / 1e-6 = 6e8 to 1e9. Step 2 ($1,200) is cheaper only from
    # 1.2e9: between 1e9 and 1.2e9 the API wins again. Step 3 ($1,800) is cheaper from max(1.8e9, 2e9) = 2e9,
    # contiguous with step 2, and every later step n (0.6n <= n - 1 for n >= 3) too: sustained from 1.2e9.
    be = break_even(P, 600.0, 8, 8, K, _fleet(600.0, 1))
    assert be.first == pytest.approx(6e8)
    assert be.sustained == pytest.approx(1.2e9)
    assert be.fixed_fleet == pytest.approx(6e8) and be.fixed_fleet_within_capacity
    # full-fleet cost per M tokens: $600 / 1e9 tokens x 1e6 = $0.60, below the API's $1.00
    assert be.full_fleet_cost_per_m == pytest.approx(0.6)
    first, sustained = _brute(600.0, 8, 8, 5e9)
    assert first == pytest.approx(be.first, rel=1e-4)
    assert sustained == pytest.approx(be.sustained, rel=1e-4)


def test_never_when_a_full_unit_costs_more_per_token() -> None:
    # $1,000/day for 1e9 tokens = $1.00 per M = the API price: never strictly cheaper
    be = break_even(P, 1000.0, 8, 8, K, _fleet(1000.0, 1))
    assert (be.first, be.sustained) == (None, None)
    assert be.reason.startswith("never")
    assert _brute(1000.0 * 1.0001, 8, 8, 5e9) == (None, None)


def test_two_replicas_per_node() -> None:
    # 4-GPU replicas in 8-GPU nodes: a node serves 2e9 tokens/day for $1,500 ($0.75/M).
    # Step 1: cheaper from 1.5e9 to 2e9. Step 2 ($3,000) from 3e9; API at 2e9 is $2,000 < 3,000: gap.
    # Step 3 ($4,500) from 4.5e9 > 4e9: gap. Step 4 ($6,000) from 6e9 = its left edge: contiguous from here on
    # (n x 1500 <= (n - 1) x 2000 for n >= 4); sustained = 4.5e9.
    be = break_even(P, 1500.0, 8, 4, K, _fleet(1500.0, 2))
    assert be.first == pytest.approx(1.5e9)
    assert be.sustained == pytest.approx(4.5e9)
    first, sustained = _brute(1500.0, 8, 4, 2e10)
    assert first == pytest.approx(be.first, rel=1e-4)
    assert sustained == pytest.approx(be.sustained, rel=1e-4)


def test_fixed_fleet_beyond_its_capacity_is_flagged() -> None:
    # a 3-node fleet ($1,800/day, 3e9 capacity) at $1e-7 per token would break even at 1.8e10: beyond capacity
    be: BreakEven = break_even(1e-7, 600.0, 8, 8, K, _fleet(1800.0, 3))
    assert be.fixed_fleet == pytest.approx(1.8e10)
    assert not be.fixed_fleet_within_capacity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100M", 1e8),
        ("1.5B", 1.5e9),
        ("250k", 2.5e5),
        ("250K", 2.5e5),
        ("1e8", 1e8),
        ("100,000,000", 1e8),
        ("2T", 2e12),
        ("0.5", 0.5),
        (" 3 M ", 3e6),
        ("1_000", 1000.0),
        (42, 42.0),
    ],
)
def test_parse_quantity(text: str | int, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "M", "1.5X", "ten", "1e", "--5", "nan", "inf", "1MB"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 100M"):
        parse_quantity(text)


def test_format_quantity() -> None:
    assert [format_quantity(x) for x in (1.5e9, 1e8, 2.5e5, 12.0)] == ["1.5B", "100M", "250k", "12"]
