"""Fleet sizing from offered load, and the step-function break-even.

Sizing. Let T be the traffic in tokens/day and L the load factor (capacity / mean load: the peak-to-mean
factor of the offered-load curve, or 1/utilization for a fixed-utilization plan). The self-hosted model
must serve, at peak, T x L / 86,400 tokens/s of which a share is output. One replica serves
`total_tokens_per_s` input + output and `output_tokens_per_s` output at the published concurrency, so

    replicas per traffic token/day  k = L / 86,400 x max(total share / total tok/s, output share / output tok/s)
    replicas(T) = ceil(T x k)          GPUs = replicas x replica GPUs, rounded up to whole purchase units
                                       (nodes of 8, racks of 72) or rental units

Utilization is then measured, not assumed: mean load / provisioned capacity = T x k / (L x replicas).

Break-even. API cost is linear in T (p per token at the scenario's mix); self-hosted cost is a staircase
(one step per purchase unit). With a = unit cost x k x replica GPUs / unit GPUs (self-hosted cost per
token with the fleet full), self-hosting can only win when a < p. `first` is the smallest T where the
staircase is at or below the line; `sustained` the T beyond which it stays there (past every later
step). `fixed_fleet` is the break-even of the fleet sized for the scenario: its daily cost / p.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from owstack.economics.costs import HardwareProfile
from owstack.economics.throughput import ThroughputProfile

SECONDS_PER_DAY = 86_400.0
_MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class Workload:
    """Daily token volumes derived from a scenario."""

    tokens_per_day: float
    input: float
    cached: float
    output: float
    reasoning: float
    #: reasoning tokens the compressed self-hosted model no longer generates
    removed_by_compression: float
    output_selfhost: float
    output_api: float

    @property
    def selfhost_tokens(self) -> float:
        return self.input + self.output_selfhost

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def workload(
    tokens_per_day: float,
    input_share: float,
    cached_share: float,
    reasoning_share: float,
    compression: float,
    compression_on_api: bool,
) -> Workload:
    """Split T into input, cached input, output and reasoning; apply the compression cut.

    The cut removes `compression` of the reasoning tokens (reasoning_share of output). It always
    applies to the self-hosted model (that is where OPSDC runs); to the API only with
    `compression_on_api` (e.g. a concise-reasoning instruction the proprietary model also follows).
    """
    inp = tokens_per_day * input_share
    out = tokens_per_day - inp
    reasoning = out * reasoning_share
    removed = reasoning * compression
    return Workload(
        tokens_per_day=tokens_per_day,
        input=inp,
        cached=inp * cached_share,
        output=out,
        reasoning=reasoning,
        removed_by_compression=removed,
        output_selfhost=out - removed,
        output_api=out - removed if compression_on_api else out,
    )


def replicas_per_token_day(w: Workload, tp: ThroughputProfile, load_factor: float) -> float:
    """k: replicas needed per traffic token/day at this mix and load factor."""
    t = w.tokens_per_day
    needs = []
    if tp.total_tokens_per_s:
        needs.append(w.selfhost_tokens / t / tp.total_tokens_per_s)
    if tp.output_tokens_per_s:
        needs.append(w.output_selfhost / t / tp.output_tokens_per_s)
    if not needs:
        raise ValueError(f"throughput profile {tp.model} on {tp.hardware} gives no figure")
    return load_factor / SECONDS_PER_DAY * max(needs)


@dataclass(frozen=True)
class Fleet:
    """The fleet for one load: what is provisioned, how busy it is, what it costs per day."""

    replicas_needed: int
    replicas: int
    replica_gpus: int
    gpus_needed: int
    gpus: int
    nodes: int
    unit_gpus: int
    capacity_tokens_per_day: float
    utilization: float
    cost_per_day: float
    capital_per_day: float
    power_per_day: float
    overhead_per_day: float
    capex: float
    opex_per_day: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def size_fleet(
    tokens_per_day: float,
    k: float,
    load_factor: float,
    tp: ThroughputProfile,
    per_gpu: HardwareProfile,
    gpus_per_node: int,
    unit_gpus: int,
) -> Fleet:
    """The smallest fleet of whole units whose capacity covers the peak of `tokens_per_day`."""
    needed = max(1, math.ceil(tokens_per_day * k - 1e-9))
    units = math.ceil(needed * tp.replica_gpus / unit_gpus)
    gpus = units * unit_gpus
    replicas = gpus // tp.replica_gpus
    hours = 24.0 * gpus
    capital = per_gpu.capital_per_gpu_hour * hours
    power = per_gpu.power_per_gpu_hour * hours
    overhead = per_gpu.overhead_per_gpu_hour * hours
    owned = per_gpu.acquisition == "own"
    return Fleet(
        replicas_needed=needed,
        replicas=replicas,
        replica_gpus=tp.replica_gpus,
        gpus_needed=needed * tp.replica_gpus,
        gpus=gpus,
        nodes=math.ceil(gpus / gpus_per_node),
        unit_gpus=unit_gpus,
        capacity_tokens_per_day=replicas / k,
        utilization=tokens_per_day * k / load_factor / replicas,
        cost_per_day=capital + power + overhead,
        capital_per_day=capital,
        power_per_day=power,
        overhead_per_day=overhead,
        capex=gpus * (per_gpu.capex_per_gpu or 0.0) if owned else 0.0,
        opex_per_day=power + overhead if owned else capital + overhead,
    )


@dataclass(frozen=True)
class BreakEven:
    """Daily volumes (traffic tokens/day) where self-hosting starts to cost no more than the API."""

    first: float | None
    sustained: float | None
    fixed_fleet: float | None
    #: the fixed fleet's break-even fits inside its own capacity
    fixed_fleet_within_capacity: bool
    #: self-hosted cost per traffic token with the fleet full, vs the API's
    full_fleet_cost_per_m: float
    api_cost_per_m: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def break_even(
    api_per_token: float, unit_cost_per_day: float, unit_gpus: int, replica_gpus: int, k: float, fleet: Fleet
) -> BreakEven:
    """Solve the staircase against the API line (see the module docstring)."""
    a = unit_cost_per_day * k * replica_gpus / unit_gpus
    fixed = fleet.cost_per_day / api_per_token if api_per_token > 0 else None
    within = fixed is not None and fixed <= fleet.capacity_tokens_per_day * (1 + 1e-9)
    base = BreakEven(None, None, fixed, within, a * 1e6, api_per_token * 1e6, "")
    if api_per_token <= a:
        reason = (
            f"never: even a full fleet costs ${a * 1e6:.3f} per M tokens at this mix and load curve, "
            f"the API ${api_per_token * 1e6:.3f}"
        )
        return replace(base, reason=reason)
    bound = unit_cost_per_day * (replica_gpus / unit_gpus + 1) / (api_per_token - a)
    first: float | None = None
    run_start: float | None = None
    prev_end = 0.0
    prev_replicas = 0
    n = 0
    while n < _MAX_STEPS:
        n += 1
        replicas = (n * unit_gpus) // replica_gpus
        if replicas == prev_replicas:
            continue
        end = replicas / k
        start = max(n * unit_cost_per_day / api_per_token, prev_end)
        if start <= end:
            first = start if first is None else first
            run_start = start if (run_start is None or start > prev_end) else run_start
        else:
            run_start = None
        prev_end, prev_replicas = end, replicas
        if end > bound and run_start is not None:
            return replace(base, first=first, sustained=run_start)
    return replace(base, first=first, reason="sustained break-even beyond the search range")
