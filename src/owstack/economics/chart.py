"""`owstack plan --chart FILE.png`: cost per day against tokens per day, API and each hardware option.

`chart_data` builds the series (pure, testable): the API line, each option's staircase (the fleet
re-sized at every volume), and each option's break-even point found *numerically* on that staircase,
independently of the planner's closed-form solution, so a test can hold one against the other.
`draw_chart` renders it with matplotlib (Agg backend, imported lazily).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from owstack.economics.evaluation import OptionResult
    from owstack.economics.planner import PlanResult

POINTS = 480


@dataclass(frozen=True)
class Series:
    label: str
    tokens_per_day: list[float]
    cost_per_day: list[float]
    #: (tokens/day, cost/day) of the first crossing with the API line, found on this series; None: never
    breakeven: tuple[float, float] | None = None
    estimate: bool = False


@dataclass(frozen=True)
class ChartData:
    api: Series
    options: list[Series] = field(default_factory=list)
    scenario_tokens_per_day: float = 0.0
    title: str = ""


def chart_data(result: PlanResult) -> ChartData:
    """The API line and one staircase per hardware option over a log grid around the scenario."""
    t = result.scenario.tokens_per_day
    marks = [o.breakeven.first for o in result.options if o.breakeven.first]
    lo = min([t / 100, *(m / 10 for m in marks)])
    hi = max([t * 100, *(m * 10 for m in marks)])
    grid = [lo * (hi / lo) ** (i / (POINTS - 1)) for i in range(POINTS)]
    per_token = result.api_cost_per_day / t
    api = Series(f"API: {result.price.model}", grid, [per_token * x for x in grid])
    options = [_option_series(o, grid, per_token) for o in result.options]
    title = f"{result.price.model} vs self-hosted {result.scenario.model}; load: {result.scenario.load_model}"
    return ChartData(api=api, options=options, scenario_tokens_per_day=t, title=title)


def _option_series(option: OptionResult, grid: list[float], per_token: float) -> Series:
    costs = [option.cost_at(x) for x in grid]
    crossing = None
    for i, (x, c) in enumerate(zip(grid, costs, strict=True)):
        if c <= per_token * x:
            left = grid[i - 1] if i else grid[0] / 10
            point = _bisect(option, per_token, left, x) if i else x
            crossing = (point, per_token * point)
            break
    label = f"{option.name} ({option.per_gpu.acquisition})"
    return Series(label, grid, costs, crossing, option.throughput.estimate)


def _bisect(option: OptionResult, per_token: float, left: float, right: float) -> float:
    """Smallest T in (left, right] with staircase(T) <= API(T); the staircase is right-continuous."""
    for _ in range(200):
        mid = (left + right) / 2
        if option.cost_at(mid) <= per_token * mid:
            right = mid
        else:
            left = mid
        if right - left <= right * 1e-12:
            break
    return right


def draw_chart(data: ChartData, path: str | Path) -> Path:
    """Write the PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
    try:
        ax.plot(data.api.tokens_per_day, data.api.cost_per_day, color="black", linewidth=2.2, label=data.api.label)
        for i, series in enumerate(data.options):
            label = series.label + (" [throughput estimate]" if series.estimate else "")
            (line,) = ax.plot(series.tokens_per_day, series.cost_per_day, drawstyle="steps-post", label=label)
            if series.breakeven is not None:
                x, y = series.breakeven
                ax.plot([x], [y], marker="o", markersize=8, color=line.get_color(), zorder=5)
                color, offset = line.get_color(), (6, -12 - 11 * i)
                ax.annotate(_short(x), (x, y), textcoords="offset points", xytext=offset, fontsize=8, color=color)
        ax.axvline(data.scenario_tokens_per_day, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tokens per day")
        ax.set_ylabel("cost per day (USD)")
        ax.set_title(data.title, fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, loc="upper left")
        out = Path(path)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def _short(x: float) -> str:
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{suffix}/day"
    return f"{x:.3g}/day" if math.isfinite(x) else "n/a"
