"""What each ledger record cost, and what its layer's proprietary counterfactual would have charged.

Everything that reads a catalog happens once, in `Pricing.from_config` (at gateway start); `price()`
is arithmetic only. The rules (docs/metering.md has the worked examples):

* self-hosted backend with `hardware:` (e.g. 8xH100): the deployment's $/s (economics.costs) x the
  request's busy seconds / the backend's utilization, where busy seconds = its time on that backend
  (latency minus the failed attempts before it) / the backend's mean concurrency, and utilization and
  concurrency are measured from the ledger by the writer (`Utilization`). The amortization part
  (owned hardware) is kept apart in `capital_usd` so that payback does not count it twice.
* the embedded CPU engine: marginal electricity, `metering.embedded_watts` x seconds x $/kWh.
* a self-hosted backend without `hardware:`: unknown (NULL), counted by `owstack savings` as uncosted.
* a proprietary backend (`proprietary: true`): the API price of its model; its counterfactual is the
  same amount (no saving, no loss).
* counterfactual: `counterfactual: {layer: api-model}` (defaults in `metering.config`), priced with
  cached-input, long-context and (with `metering.counterfactual_batch`) Batch API rules. Failed and
  refused requests bill no tokens, hence a counterfactual of 0.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from owstack.catalog.prices import ApiPrice, api_price
from owstack.economics.costs import (
    UTILIZATION_FLOOR,
    HardwareProfile,
    api_cost,
    hardware_profile,
    profile_cost_per_second,
    selfhost_request_cost,
)
from owstack.errors import ConfigError
from owstack.metering.config import DEFAULT_COUNTERFACTUAL

if TYPE_CHECKING:
    from owstack.config.load import Config

log = logging.getLogger(__name__)
#: the GPU count in a hardware spec such as "8xH100" (what is left is the catalog option's name)
_SPEC = re.compile(r"^\s*\d+\s*[x×*]\s*", re.IGNORECASE)

CostKind = Literal["selfhost", "embedded", "api", "unknown", "none"]


@dataclass(frozen=True, slots=True)
class BackendCost:
    """The precomputed cost parameters of one backend."""

    kind: CostKind
    #: selfhost: the deployment's USD per second; embedded: USD per second of generation
    usd_per_s: float = 0.0
    #: selfhost: the share of `usd_per_s` that is amortization of owned hardware
    capital_share: float = 0.0
    profile: HardwareProfile | None = None
    price: ApiPrice | None = None


@dataclass(frozen=True, slots=True)
class Costs:
    cost_usd: float | None
    cost_kind: CostKind
    capital_usd: float | None
    utilization: float | None
    counterfactual_usd: float | None
    counterfactual_model: str | None


@dataclass(frozen=True, slots=True)
class Utilization:
    """A backend's measured load over the last window: busy share of wall time, and mean requests in
    flight while busy (>= 1)."""

    utilization: float
    concurrency: float


class Pricing:
    def __init__(
        self,
        backends: Mapping[str, BackendCost],
        counterfactual: Mapping[str, ApiPrice],
        *,
        batch: bool = False,
    ) -> None:
        self.backends = dict(backends)
        self.counterfactual = dict(counterfactual)
        self.batch = batch

    @classmethod
    def from_config(cls, config: Config) -> Pricing:
        """Resolve every backend's hardware profile or API price and every layer's counterfactual, with
        the `economics:` section's price and hardware overrides applied.

        A backend whose hardware or price cannot be resolved raises `ConfigError` naming
        `backends.<name>.hardware` (or `.model`); a bad counterfactual names `counterfactual.<layer>`."""
        file, m, econ = config.file, config.file.metering, config.file.economics
        backends: dict[str, BackendCost] = {}
        for name, b in file.backends.items():
            if b.proprietary:
                model = b.catalog or b.model
                try:
                    backends[name] = BackendCost("api", price=api_price(model, econ.price_overrides(model)))
                except ConfigError as exc:
                    raise ConfigError(f"backends.{name}.model: {exc}") from None
            elif b.hardware:
                try:
                    option = _SPEC.sub("", b.hardware).strip() or b.hardware
                    profile = hardware_profile(b.hardware, econ.hardware_overrides(option))
                except ConfigError as exc:
                    raise ConfigError(f"backends.{name}.hardware: {exc}") from None
                effective = profile.usd_per_gpu_hour_effective
                capital = (
                    profile.capital_per_gpu_hour * (1 + profile.overhead_share) if profile.acquisition == "own" else 0
                )
                share = capital / effective if effective > 0 else 0.0
                backends[name] = BackendCost("selfhost", profile_cost_per_second(profile), share, profile=profile)
            elif b.engine == "llamacpp":
                usd_per_s = m.embedded_watts / 1000.0 * m.embedded_usd_per_kwh / 3600.0
                backends[name] = BackendCost("embedded", usd_per_s)
            else:
                backends[name] = BackendCost("unknown")
        layers = {**DEFAULT_COUNTERFACTUAL, **file.counterfactual}
        counterfactual: dict[str, ApiPrice] = {}
        for layer, model in layers.items():
            try:
                counterfactual[layer] = api_price(model, econ.price_overrides(model))
            except ConfigError as exc:
                raise ConfigError(f"counterfactual.{layer}: {exc}") from None
        return cls(backends, counterfactual, batch=m.counterfactual_batch)

    def capex_usd(self) -> float:
        """The purchase price of every owned hardware profile (per backend), for payback."""
        total = 0.0
        for b in self.backends.values():
            p = b.profile
            if p is not None and p.acquisition == "own" and p.capex_per_gpu is not None:
                total += p.capex_per_gpu * p.count
        return total

    def price(
        self,
        backend: str | None,
        layer: str | None,
        tokens: tuple[int, int, int],
        busy_s: float | None,
        load: Utilization | None,
    ) -> Costs:
        """The costs of one request: `tokens` = (prompt, completion, cached); `busy_s` its seconds on
        `backend`; `load` that backend's last measured utilization (None: not measured yet)."""
        prompt, completion, cached = tokens
        cached = min(cached, prompt)
        cf_price = self.counterfactual.get(layer) if layer is not None else None
        b = self.backends.get(backend) if backend is not None else None
        if b is None:
            return Costs(0.0, "none", None, None, 0.0 if cf_price else None, cf_price.model if cf_price else None)
        if b.kind == "api" and b.price is not None:
            usd = _api_usd(b.price, prompt, completion, cached, self.batch)
            return Costs(usd, "api", None, None, usd, b.price.model)
        cf = _api_usd(cf_price, prompt, completion, cached, self.batch) if cf_price is not None else None
        cf_model = cf_price.model if cf_price is not None else None
        seconds = max(busy_s or 0.0, 0.0)
        if b.kind == "selfhost" and b.profile is not None:
            u = min(max(load.utilization, UTILIZATION_FLOOR), 1.0) if load is not None else 1.0
            c = load.concurrency if load is not None else 1.0
            usd = selfhost_request_cost(b.profile, seconds / max(c, 1.0), u)
            return Costs(usd, "selfhost", usd * b.capital_share, u, cf, cf_model)
        if b.kind == "embedded":
            return Costs(b.usd_per_s * seconds, "embedded", None, None, cf, cf_model)
        return Costs(None, "unknown", None, None, cf, cf_model)


def _api_usd(price: ApiPrice, prompt: int, completion: int, cached: int, batch: bool) -> float:
    """`economics.costs.api_cost` for the writer's hot path: the same arithmetic in the same order (the
    same float), without building the bill's parts. Negative counts go to `api_cost`, which refuses them."""
    if prompt < 0 or completion < 0 or not 0 <= cached <= prompt:
        return api_cost(price, prompt, completion, cached, batch)
    long = price.long_context_threshold is not None and prompt > price.long_context_threshold
    mult_in = price.long_context_input_multiplier if long else 1.0
    mult_out = price.long_context_output_multiplier if long else 1.0
    scale = 1.0 - price.batch_discount if batch else 1.0
    return (
        (prompt - cached) * price.input_per_m * mult_in / 1e6 * scale
        + cached * price.cached_input_per_m * mult_in / 1e6 * scale
        + completion * price.output_per_m * mult_out / 1e6 * scale
    )
