"""Has this stack paid for itself? The planner's break-even against the traffic the ledger measured, and
payback of the capital spent against the savings recorded so far.

    status = breakeven(config, measured)     the planner (owstack.economics) on the measured token mix
    payback = payback(config, to_date)       capex (metering.capex_usd or the owned hardware) vs recovered

`measured` is the trailing window's rollup total: tokens per day, the input, cached and reasoning shares.
The hardware and model are those of the self-hosted backend (with a `hardware:` profile) that served the
most tokens; the API is its layer's counterfactual. Payback counts cash as `owstack savings` does: the
savings plus the hardware amortization already inside the self-hosted costs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from owstack.errors import ConfigError

if TYPE_CHECKING:
    from owstack.config.load import Config

_SPEC = re.compile(r"^\s*\d+\s*[x×*]\s*", re.IGNORECASE)


@dataclass
class BreakEven:
    #: "above" (self-hosting costs less at this traffic), "below", or "unknown" (see `reason`)
    status: str
    reason: str
    measured_tokens_per_day: float = 0.0
    breakeven_tokens_per_day: float | None = None
    backend: str | None = None
    hardware: str | None = None
    model: str | None = None
    api: str | None = None
    api_cost_per_day: float | None = None
    selfhost_cost_per_day: float | None = None


def _backend(config: Config, tokens_by_backend: dict[str, int]) -> str | None:
    profiled = [n for n, b in config.file.backends.items() if b.hardware and not b.proprietary]
    if not profiled:
        return None
    return max(profiled, key=lambda n: (tokens_by_backend.get(n, 0), -profiled.index(n)))


def breakeven(config: Config, measured: dict[str, float], tokens_by_backend: dict[str, int]) -> BreakEven:
    """`measured`: tokens_per_day, input_share, cached_share, reasoning_share over the trailing window."""
    from owstack.catalog.models import find_card
    from owstack.economics.evaluation import evaluate
    from owstack.economics.scenario import make_scenario
    from owstack.metering.config import DEFAULT_COUNTERFACTUAL

    per_day = measured.get("tokens_per_day", 0.0)
    name = _backend(config, tokens_by_backend)
    if name is None:
        return BreakEven("unknown", "no self-hosted backend has a `hardware:` profile to size", per_day)
    section = config.file.backends[name]
    card = find_card(section.catalog or section.model)
    model = card.id if card is not None else (section.catalog or section.model)
    layer = next((n for n, spec in config.file.layers.items() if name in (*spec.backends, *spec.fallback)), "coding")
    api = {**DEFAULT_COUNTERFACTUAL, **config.file.counterfactual}.get(layer, "gpt-5.4")
    hardware = _SPEC.sub("", section.hardware or "").strip() or section.hardware
    out = BreakEven("unknown", "", per_day, backend=name, hardware=hardware, model=model, api=api)
    if per_day <= 0:
        out.reason = "no traffic in the window yet"
        return out
    raw: dict[str, Any] = {
        "tokens_per_day": per_day,
        "input_share": measured.get("input_share", 0.75),
        "cached_share": measured.get("cached_share", 0.0),
        "reasoning_share": measured.get("reasoning_share", 0.0),
        "api": api,
        "model": model,
        "hardware": hardware,
        "overrides": config.file.economics,
    }
    try:
        result = evaluate(make_scenario(raw, source=f"backends.{name}"))
    except ConfigError as exc:
        out.reason = f"the planner cannot size it: {exc}"
        return out
    first = result.primary.breakeven.first
    out.breakeven_tokens_per_day = first
    out.api_cost_per_day = result.api_cost_per_day
    out.selfhost_cost_per_day = result.primary.cost_per_day
    if first is None:
        out.status, out.reason = "below", (result.primary.breakeven.reason or "never at this token mix").capitalize()
    elif per_day >= first:
        out.status, out.reason = "above", "Self-hosting this traffic costs less than the API"
    else:
        out.status = "below"
        out.reason = f"The traffic would have to grow {first / per_day:,.1f}x to break even"
    return out


def payback(config: Config, to_date: dict[str, float]) -> dict[str, Any] | None:
    """Capex and how much of it the recorded savings have recovered; None without a capex."""
    from owstack.metering.costs import Pricing

    capex = config.file.metering.capex_usd
    source = "metering.capex_usd"
    if capex is None:
        try:
            capex = Pricing.from_config(config).capex_usd() or None
        except ConfigError:
            capex = None
        source = "the owned hardware profiles"
    if not capex:
        return None
    recovered = to_date.get("savings_usd", 0.0) + to_date.get("capital_usd", 0.0)
    return {
        "capex_usd": capex,
        "source": source,
        "recovered_usd": recovered,
        "progress": recovered / capex,
        "paid": recovered >= capex,
    }
