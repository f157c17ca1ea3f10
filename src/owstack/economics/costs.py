"""The cost model: what one request costs on a proprietary API, and on the user's own hardware.

Proprietary counterfactual (`api_cost`), USD:

    (prompt - cached) x input_per_m + cached x cached_input_per_m + completion x output_per_m   / 1e6
    x long-context multipliers when prompt > the catalog's threshold (input side and output side)
    x (1 - batch_discount) with batch=True;  x residency_multiplier with residency=True

Reasoning tokens bill as output with every catalogued provider: they are inside `completion_tokens`.

Self-hosted cost (`HardwareProfile`), USD per GPU-hour:

    capital   own:  capex per GPU / (lifetime_years x 8,760 h)       rent: the rental price
    power     own:  kW per GPU (node power / GPUs) x PUE x $/kWh       rent: 0 (inside the rental price)
    overhead  (capital + power) x overhead_share                        (staff and security, 15-25%)

A request's share (`selfhost_request_cost`) spreads idle time over the requests that ran:

    cost = deployment $/s x busy_seconds / max(utilization, UTILIZATION_FLOOR)

so that over any window the requests together carry the whole deployment cost, as long as measured
utilization stays above the floor. Pure functions; no I/O beyond the cached catalog read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from owstack.catalog.hardware import Hardware, cost_defaults, hardware
from owstack.catalog.prices import ApiPrice
from owstack.errors import ConfigError

HOURS_PER_YEAR = 8760.0
#: below 5% measured utilization, idle cost is no longer spread over requests: one request in a quiet
#: hour would otherwise be charged the whole hour of an 8-GPU server. The unattributed idle cost is
#: the ledger's to report (deployment cost over the window minus the sum of request costs).
UTILIZATION_FLOOR = 0.05

#: the keys `hardware_profile(..., overrides)` accepts
PROFILE_KEYS: tuple[str, ...] = (
    "capex_per_node",
    "capex_per_gpu",
    "lifetime_years",
    "rental_per_gpu_hour",
    "rent",
    "power_kw_per_gpu",
    "node_power_kw",
    "pue",
    "usd_per_kwh",
    "overhead_share",
)

_SPEC = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\S.*?)\s*$", re.IGNORECASE)


def api_cost(
    price: ApiPrice,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    batch: bool = False,
    *,
    residency: bool = False,
) -> float:
    """USD a proprietary API would charge for one request.

    `cached_tokens` are the part of `prompt_tokens` billed at the cached rate; reasoning tokens are
    part of `completion_tokens`. Raises `ValueError` for negative counts or cached > prompt.
    """
    for name, value in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not 0 <= cached_tokens <= prompt_tokens:
        raise ValueError(f"cached_tokens must be between 0 and prompt_tokens ({prompt_tokens}), got {cached_tokens}")
    long = price.long_context_threshold is not None and prompt_tokens > price.long_context_threshold
    parts = api_cost_parts(price, prompt_tokens, completion_tokens, cached_tokens, batch, long, residency)
    return parts["total"]


def api_cost_parts(
    price: ApiPrice,
    prompt: float,
    completion: float,
    cached: float = 0.0,
    batch: bool = False,
    long_context: bool = False,
    residency: bool = False,
) -> dict[str, float]:
    """The bill split into input, cached_input, output and total (USD); token counts may be volumes."""
    mult_in = price.long_context_input_multiplier if long_context else 1.0
    mult_out = price.long_context_output_multiplier if long_context else 1.0
    scale = (1.0 - price.batch_discount if batch else 1.0) * (price.residency_multiplier if residency else 1.0)
    parts = {
        "input": (prompt - cached) * price.input_per_m * mult_in / 1e6 * scale,
        "cached_input": cached * price.cached_input_per_m * mult_in / 1e6 * scale,
        "output": completion * price.output_per_m * mult_out / 1e6 * scale,
    }
    parts["total"] = parts["input"] + parts["cached_input"] + parts["output"]
    return parts


@dataclass(frozen=True)
class HardwareProfile:
    """A deployment's hourly cost: `count` GPUs of `gpu` (a catalog id), owned or rented.

    `usd_per_gpu_hour_effective` = `capital_per_gpu_hour` (amortization or rental)
    + `power_per_gpu_hour` (incl. PUE; 0 when rented) + `overhead_per_gpu_hour`.
    """

    gpu: str
    name: str
    count: int
    acquisition: Literal["own", "rent"]
    usd_per_gpu_hour_effective: float
    capital_per_gpu_hour: float
    power_per_gpu_hour: float
    overhead_per_gpu_hour: float
    overhead_share: float
    power_kw_per_gpu: float
    pue: float
    usd_per_kwh: float
    capex_per_gpu: float | None
    lifetime_years: float | None
    rental_per_gpu_hour: float | None

    @property
    def usd_per_hour(self) -> float:
        """The whole deployment, USD per hour."""
        return self.usd_per_gpu_hour_effective * self.count

    @property
    def usd_per_day(self) -> float:
        return self.usd_per_hour * 24.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["usd_per_hour"] = self.usd_per_hour
        out["usd_per_day"] = self.usd_per_day
        return out


def hardware_profile(spec: str, overrides: Mapping[str, float] | None = None) -> HardwareProfile:
    """Parse "8xH100", "2 x H200", "H100" (1 GPU) or "GB200 NVL72" (a whole rack: 72 GPUs).

    The count is always GPUs. `overrides` (keys in `PROFILE_KEYS`) replace catalog numbers; `rent: 1`
    or a `rental_per_gpu_hour` selects renting, a capex key selects owning; otherwise the deployment
    is owned when the catalog has a purchase price and rented when it only has a rental price.
    """
    match = _SPEC.match(spec or "")
    count: int | None = None
    name = (spec or "").strip()
    if match:
        count, name = int(match.group(1)), match.group(2)
    hw = _lookup(name, spec)
    if count is None:
        count = hw.gpus_per_node if hw.is_rack else 1
    if count < 1:
        raise ConfigError(f"hardware: {spec!r} needs at least 1 GPU (e.g. 8xH100)")
    return build_profile(hw, count, overrides or {})


def build_profile(hw: Hardware, count: int, overrides: Mapping[str, float]) -> HardwareProfile:
    """The `HardwareProfile` of `count` GPUs of `hw` with catalog defaults replaced by `overrides`."""
    values = _checked(hw, overrides)
    defaults = cost_defaults()

    def pick(key: str) -> float:
        return values[key] if key in values else defaults[key].default

    overhead_share, pue, usd_per_kwh = pick("overhead_share"), pick("pue"), pick("usd_per_kwh")
    power_kw = _power_kw_per_gpu(hw, values)
    acquisition = _acquisition(hw, values)
    capex_per_gpu: float | None = None
    lifetime: float | None = None
    rental: float | None = None
    if acquisition == "own":
        capex_per_gpu = _capex_per_gpu(hw, values)
        lifetime = pick("lifetime_years")
        capital = capex_per_gpu / (lifetime * HOURS_PER_YEAR)
        power = power_kw * pue * usd_per_kwh
    else:
        rental = values.get("rental_per_gpu_hour")
        if rental is None:
            assert hw.rental_per_gpu_hour is not None  # _acquisition checked
            rental = hw.rental_per_gpu_hour.default
        capital, power = rental, 0.0
    overhead = (capital + power) * overhead_share
    return HardwareProfile(
        gpu=hw.id,
        name=hw.name,
        count=count,
        acquisition=acquisition,
        usd_per_gpu_hour_effective=capital + power + overhead,
        capital_per_gpu_hour=capital,
        power_per_gpu_hour=power,
        overhead_per_gpu_hour=overhead,
        overhead_share=overhead_share,
        power_kw_per_gpu=power_kw,
        pue=pue,
        usd_per_kwh=usd_per_kwh,
        capex_per_gpu=capex_per_gpu,
        lifetime_years=lifetime,
        rental_per_gpu_hour=rental,
    )


def profile_cost_per_second(profile: HardwareProfile) -> float:
    """USD per wall-clock second for the whole deployment (all `count` GPUs, busy or idle)."""
    return profile.usd_per_hour / 3600.0


def selfhost_request_cost(profile: HardwareProfile, busy_seconds: float, utilization: float) -> float:
    """USD attributed to one request that kept the deployment busy for `busy_seconds`.

    `busy_seconds` is the request's share of the deployment's time (for a batched engine: its latency
    divided by the requests in flight alongside it); `utilization` is the deployment's measured busy
    share over the same window (sum of busy_seconds / window), clamped to [UTILIZATION_FLOOR, 1].
    Cost = deployment $/s x busy_seconds / utilization: idle time is spread over the requests that ran.
    """
    if not math.isfinite(busy_seconds) or busy_seconds < 0:
        raise ValueError(f"busy_seconds must be a finite number >= 0, got {busy_seconds}")
    if not math.isfinite(utilization) or utilization < 0:
        raise ValueError(f"utilization must be a finite number between 0 and 1, got {utilization}")
    share = min(max(utilization, UTILIZATION_FLOOR), 1.0)
    return profile_cost_per_second(profile) * busy_seconds / share


def _lookup(name: str, spec: str) -> Hardware:
    try:
        return hardware(name)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; write it as COUNTxOPTION, e.g. 8xH100 (got {spec!r})") from None


def _checked(hw: Hardware, overrides: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(overrides) - set(PROFILE_KEYS))
    if unknown:
        raise ConfigError(
            f"economics.hardware.{hw.id}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(PROFILE_KEYS)}"
        )
    values: dict[str, float] = {}
    for key, raw in overrides.items():
        if raw is None:
            continue
        if isinstance(raw, str) or not math.isfinite(float(raw)) or float(raw) < 0:
            raise ConfigError(f"economics.hardware.{hw.id}.{key}: must be a number >= 0, got {raw!r}")
        values[key] = float(raw)
    if values.get("pue", 1.0) < 1.0:
        raise ConfigError(f"economics.hardware.{hw.id}.pue: must be >= 1.0 (facility power / IT power)")
    if "lifetime_years" in values and values["lifetime_years"] <= 0:
        raise ConfigError(f"economics.hardware.{hw.id}.lifetime_years: must be > 0")
    if values.get("overhead_share", 0.0) > 1.0:
        raise ConfigError(f"economics.hardware.{hw.id}.overhead_share: must be a fraction between 0 and 1")
    return values


def _power_kw_per_gpu(hw: Hardware, values: Mapping[str, float]) -> float:
    if "power_kw_per_gpu" in values:
        return values["power_kw_per_gpu"]
    if "node_power_kw" in values:
        return values["node_power_kw"] / hw.gpus_per_node
    return hw.power_kw_per_gpu


def _acquisition(hw: Hardware, values: Mapping[str, float]) -> Literal["own", "rent"]:
    wants_own = "capex_per_node" in values or "capex_per_gpu" in values
    if "rent" in values:
        rent = values["rent"] > 0
    elif "rental_per_gpu_hour" in values and not wants_own:
        rent = True
    else:
        rent = not wants_own and hw.capex_per_node is None
    if rent and "rental_per_gpu_hour" not in values and hw.rental_per_gpu_hour is None:
        raise ConfigError(
            f"economics.hardware.{hw.id}.rental_per_gpu_hour: the catalog has no rental price for "
            f"{hw.name}; give one (owstack plan --rental USD, or this config key), or own it"
        )
    return "rent" if rent else "own"


def _capex_per_gpu(hw: Hardware, values: Mapping[str, float]) -> float:
    if "capex_per_gpu" in values:
        return values["capex_per_gpu"]
    if "capex_per_node" in values:
        return values["capex_per_node"] / hw.gpus_per_node
    if hw.capex_per_gpu is None:
        raise ConfigError(
            f"economics.hardware.{hw.id}.capex_per_node: the catalog has no purchase price for {hw.name}; give "
            "your quote (owstack plan --capex USD, or this config key), or rent it (--acquisition rent, rent: 1)"
        )
    return hw.capex_per_gpu
