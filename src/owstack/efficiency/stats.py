"""Small statistics for the harness: Wilson intervals, medians, a paired bootstrap for compression."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default); (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def median(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def compression(policy: Sequence[float], baseline: Sequence[float]) -> float:
    """The fraction of tokens saved: 1 - mean(policy) / mean(baseline)."""
    base = mean(baseline)
    return 1 - mean(policy) / base if base else 0.0


def paired_bootstrap(
    policy: Sequence[float], baseline: Sequence[float], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A 95% percentile interval for `compression` over the same items (paired resampling)."""
    if len(policy) != len(baseline):
        raise ValueError("paired samples must have the same length")
    n = len(policy)
    if n == 0:
        return (0.0, 0.0)
    rng = random.Random(seed)
    stats = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        stats.append(compression([policy[i] for i in idx], [baseline[i] for i in idx]))
    stats.sort()
    return (stats[int(0.025 * resamples)], stats[min(resamples - 1, int(0.975 * resamples))])
