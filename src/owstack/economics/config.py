"""The `economics:` config section: the user's overrides of catalog prices and hardware numbers.

    economics:
      site: {usd_per_kwh: 0.09, pue: 1.3, lifetime_years: 4, overhead_share: 0.2}   # every hardware
      hardware:
        H100: {capex_per_node: 280000}            # a catalog id or alias; fields as in PROFILE_KEYS
        H200: {capex_per_node: 350000}            # owning H200 needs a quote: the catalog has none
      prices:
        gpt-5.4: {input_per_m: 2.0}               # a negotiated price
        in-house-llm: {input_per_m: 1.0, output_per_m: 4.0}   # a model the catalog lacks

The same mapping is accepted by `owstack plan --config FILE` (a gateway config, or a file holding just
this section) and under `overrides:` in a planner scenario file. Every field is optional.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from owstack.config.base import Section

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class SiteCosts(Section):
    """Site-wide numbers applied to every hardware option (a per-hardware value wins)."""

    usd_per_kwh: NonNegative | None = None
    pue: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)] | None = None
    lifetime_years: Annotated[float, Field(gt=0, le=20, allow_inf_nan=False)] | None = None
    #: staff and security overhead as a fraction of hardware + power cost (the seed's band: 0.15-0.25)
    overhead_share: Fraction | None = None
    #: rent every option at its catalog rental price instead of buying
    rent: bool | None = None


class HardwareOverride(SiteCosts):
    capex_per_node: NonNegative | None = None
    capex_per_gpu: NonNegative | None = None
    rental_per_gpu_hour: NonNegative | None = None
    #: full-load power per GPU incl. its share of the node (kW); or give node_power_kw
    power_kw_per_gpu: NonNegative | None = None
    node_power_kw: NonNegative | None = None


class PriceOverride(Section):
    provider: str | None = None
    input_per_m: NonNegative | None = None
    output_per_m: NonNegative | None = None
    cached_input_per_m: NonNegative | None = None
    batch_discount: Fraction | None = None
    long_context_threshold: Annotated[int, Field(ge=0)] | None = None
    long_context_input_multiplier: NonNegative | None = None
    long_context_output_multiplier: NonNegative | None = None
    residency_multiplier: NonNegative | None = None
    source: str | None = None
    date: str | None = None


class EconomicsSection(Section):
    site: SiteCosts = SiteCosts()
    hardware: dict[str, HardwareOverride] = {}
    prices: dict[str, PriceOverride] = {}

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, v: dict[str, HardwareOverride]) -> dict[str, HardwareOverride]:
        from owstack.catalog.hardware import hardware
        from owstack.errors import ConfigError

        for name in v:
            try:
                hardware(name)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    def hardware_overrides(self, option: str) -> dict[str, float]:
        """Overrides for `option` (any name of a catalog hardware), site values first, for `build_profile`."""
        from owstack.catalog.hardware import hardware

        target = hardware(option).id
        merged: dict[str, Any] = self.site.model_dump(exclude_none=True)
        for name, override in self.hardware.items():
            if hardware(name).id == target:
                merged.update(override.model_dump(exclude_none=True))
        return {key: float(value) for key, value in merged.items()}

    def price_overrides(self, model: str) -> dict[str, Any]:
        """Overrides for API `model` (matched by catalog id or alias, or by the exact name)."""
        from owstack.catalog.prices import resolve_model

        target = resolve_model(model) or model
        merged: dict[str, Any] = {}
        for name, override in self.prices.items():
            if (resolve_model(name) or name) == target:
                merged.update(override.model_dump(exclude_none=True))
        return merged
