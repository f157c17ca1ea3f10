"""Proprietary API prices (`catalog/data/prices.yaml`), typed, with the user's overrides applied.

    api_models()                      -> ["claude-haiku-4.5", ..., "gpt-5.4", ...]
    api_price("gpt-5.4")              -> ApiPrice(input_per_m=2.5, output_per_m=15.0, ...)
    api_price("gpt-5.4", {"input_per_m": 2.0})   # a negotiated price
    api_price("my-model", {"input_per_m": 1, "output_per_m": 4})   # a model the catalog lacks

Every price is USD per million tokens. Unknown models and bad override keys raise `ConfigError` naming
the allowed values. Pure functions; the data file is read on first use, not at import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from owstack.catalog import load_data
from owstack.errors import ConfigError


@dataclass(frozen=True)
class ApiPrice:
    """One API model's price list, USD per million tokens.

    `cached_input_per_m` equals `input_per_m` when the provider gives no cached discount.
    `batch_discount` is the fraction taken off with the batch API (0.5 = half price; 0 = no batch tier).
    Prompts longer than `long_context_threshold` tokens (None = no such rule) bill input and cached input
    at `long_context_input_multiplier` x and output at `long_context_output_multiplier` x.
    `residency_multiplier` prices a data-residency endpoint (1.1 = +10%).
    """

    model: str
    provider: str
    input_per_m: float
    output_per_m: float
    cached_input_per_m: float
    batch_discount: float = 0.0
    long_context_threshold: int | None = None
    long_context_input_multiplier: float = 1.0
    long_context_output_multiplier: float = 1.0
    residency_multiplier: float = 1.0
    source: str = ""
    date: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: the keys a user may override (`economics.prices.<model>.<key>`)
OVERRIDE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(ApiPrice) if f.name != "model")
_FRACTIONS = {"batch_discount"}
_TEXT = {"provider", "source", "date"}


def api_models() -> list[str]:
    """The catalog's API model ids, sorted."""
    return sorted(_entries())


def resolve_model(model: str) -> str | None:
    """The catalog id for `model` (an id or an alias, any case, an `openai/`-style prefix allowed)."""
    key = _normalise(model)
    for model_id, entry in _entries().items():
        names = [model_id, *(entry.get("aliases") or [])]
        if key in {_normalise(n) for n in names}:
            return model_id
    return None


def api_price(model: str, overrides: Mapping[str, Any] | None = None) -> ApiPrice:
    """The price of `model`, with `overrides` (a mapping of `ApiPrice` field -> value) applied.

    A model the catalog does not know is accepted only when the overrides give at least
    `input_per_m` and `output_per_m` (a private or negotiated model); otherwise `ConfigError` lists
    the catalog's models.
    """
    overrides = dict(overrides or {})
    _check_override_keys(model, overrides)
    model_id = resolve_model(model)
    if model_id is None:
        if "input_per_m" in overrides and "output_per_m" in overrides:
            base = ApiPrice(
                model=model,
                provider=str(overrides.get("provider", "custom")),
                input_per_m=0.0,
                output_per_m=0.0,
                cached_input_per_m=0.0,
                source="user config",
                date="",
            )
            if "cached_input_per_m" not in overrides:
                overrides["cached_input_per_m"] = overrides["input_per_m"]
        else:
            raise ConfigError(
                f"api: unknown API model {model!r}; allowed: {', '.join(api_models())} "
                "(or give input_per_m and output_per_m for it under economics.prices)"
            )
    else:
        base = _from_entry(model_id, _entries()[model_id])
    return _apply(base, overrides)


def _check_override_keys(model: str, overrides: Mapping[str, Any]) -> None:
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(
            f"economics.prices.{model}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(OVERRIDE_KEYS)}"
        )


def _apply(base: ApiPrice, overrides: Mapping[str, Any]) -> ApiPrice:
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in _TEXT:
            changes[key] = str(value)
            continue
        if key == "long_context_threshold":
            changes[key] = _number(base.model, key, value, integer=True)
            continue
        number = _number(base.model, key, value)
        if key in _FRACTIONS and number > 1:
            raise ConfigError(f"economics.prices.{base.model}.{key}: must be a fraction between 0 and 1, got {value}")
        changes[key] = number
    price = replace(base, **changes)
    if changes and "source" not in changes:
        price = replace(price, source=f"{price.source}; overridden by user config: {', '.join(sorted(changes))}")
    return price


def _number(model: str, key: str, value: Any, *, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"economics.prices.{model}.{key}: must be a number >= 0, got {value!r}")
    return int(value) if integer else float(value)


def _from_entry(model_id: str, entry: Mapping[str, Any]) -> ApiPrice:
    long_context = entry.get("long_context") or {}
    input_per_m = float(entry["input_per_m"])
    cached = entry.get("cached_input_per_m")
    return ApiPrice(
        model=model_id,
        provider=str(entry["provider"]),
        input_per_m=input_per_m,
        output_per_m=float(entry["output_per_m"]),
        cached_input_per_m=input_per_m if cached is None else float(cached),
        batch_discount=float(entry.get("batch_discount") or 0.0),
        long_context_threshold=long_context.get("threshold_tokens"),
        long_context_input_multiplier=float(long_context.get("input_multiplier", 1.0)),
        long_context_output_multiplier=float(long_context.get("output_multiplier", 1.0)),
        residency_multiplier=float(entry.get("residency_multiplier", 1.0)),
        source=str(entry["source"]),
        date=str(entry["date"]),
    )


def _entries() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = load_data("prices")["models"]
    return data


def _normalise(name: str) -> str:
    name = name.strip().lower().replace("_", "-").replace(" ", "-")
    for prefix in ("openai/", "anthropic/", "google/", "gemini/", "models/"):
        name = name.removeprefix(prefix)
    return name
