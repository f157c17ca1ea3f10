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
from typing import TYPE_CHECKING, Literal, NamedTuple

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


class Costs(NamedTuple):
    """What one request cost (a tuple: the writer makes one per request)."""

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
        self._rates: dict[tuple[str | None, str | None], Rate] = {}

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
        return Costs(*self.rate(backend, layer).costs(prompt, completion, cached, busy_s, load))

    def rate(self, backend: str | None, layer: str | None) -> Rate:
        """The pricing rule of `backend` serving `layer`, resolved once and cached (the writer's path)."""
        key = (backend, layer)
        rate = self._rates.get(key)
        if rate is None:
            b = self.backends.get(backend) if backend is not None else None
            cf = self.counterfactual.get(layer) if layer is not None else None
            rate = self._rates.setdefault(key, Rate(backend, layer, b, cf, self.batch))
        return rate


class Rate:
    """How requests of one (backend, layer) pair are priced: `costs()` is arithmetic only."""

    __slots__ = ("backend", "batch", "cost", "counterfactual", "counterfactual_model", "kind", "layer", "name")

    def __init__(
        self,
        name: str | None,
        layer: str | None,
        backend: BackendCost | None,
        counterfactual: ApiPrice | None,
        batch: bool,
    ) -> None:
        self.name, self.layer = name, layer
        self.backend = backend
        self.counterfactual = counterfactual
        self.batch = batch
        if backend is not None and backend.kind == "api" and backend.price is not None:
            self.counterfactual = backend.price  # a proprietary backend is its own counterfactual
        self.kind: CostKind = "none" if backend is None else backend.kind
        self.counterfactual_model = self.counterfactual.model if self.counterfactual is not None else None
        #: the owstack_cost_usd_total kind its cost counts under
        self.cost = "api" if self.kind == "api" else "selfhost"

    def costs(
        self, prompt: int, completion: int, cached: int, busy_s: float | None, load: Utilization | None
    ) -> tuple[float | None, CostKind, float | None, float | None, float | None, str | None]:
        """`Pricing.price` for this pair, as a plain tuple in `Costs` order: `cached` is part of `prompt`;
        `busy_s` the seconds on the backend."""
        if cached > prompt:
            cached = prompt
        b, cf_price, kind, cf_model = self.backend, self.counterfactual, self.kind, self.counterfactual_model
        if b is None:  # refused before routing: nothing served, nothing billed
            return (0.0, "none", None, None, 0.0 if cf_price else None, cf_model)
        cf = _api_usd(cf_price, prompt, completion, cached, self.batch) if cf_price is not None else None
        if kind == "api" and b.price is not None:
            return (cf, "api", None, None, cf, cf_model)
        seconds = busy_s if busy_s is not None and busy_s > 0.0 else 0.0
        if kind == "selfhost" and b.profile is not None:
            u = min(max(load.utilization, UTILIZATION_FLOOR), 1.0) if load is not None else 1.0
            c = load.concurrency if load is not None else 1.0
            usd = selfhost_request_cost(b.profile, seconds / max(c, 1.0), u)
            return (usd, "selfhost", usd * b.capital_share, u, cf, cf_model)
        if kind == "embedded":
            return (b.usd_per_s * seconds, "embedded", None, None, cf, cf_model)
        return (None, "unknown", None, None, cf, cf_model)


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
