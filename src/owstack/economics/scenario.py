"""The planner's input: one `Scenario`, strict, every field checked with a message naming it.

A scenario file (YAML) holds the same keys; `owstack plan` flags override the file's values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from owstack.config.yamlfile import read_mapping
from owstack.economics.config import EconomicsSection
from owstack.economics.quantity import EXAMPLES, parse_quantity
from owstack.errors import ConfigError

#: the default offered-load curve when the scenario gives none: the peak hour carries twice the daily
#: mean (business-hours traffic). An assumption, shown in every result and in the sensitivity table.
DEFAULT_PEAK_TO_MEAN = 2.0

_FRACTIONS = ("input_share", "cached_share", "reasoning_share", "compression", "overhead_share")
_POSITIVE = ("capex_per_node", "rental_per_gpu_hour", "lifetime_years", "usd_per_kwh")
_THROUGHPUT = ("throughput_per_gpu", "output_throughput_per_gpu")


class Scenario(BaseModel):
    """What the team's traffic looks like, what it pays today, and the hardware to compare."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    #: total tokens (input + output, reasoning included) per day on the proprietary API today
    tokens_per_day: float
    #: fraction of tokens that are input (prompt) tokens
    input_share: float = 0.75
    #: fraction of input tokens served from the provider's prompt cache
    cached_share: float = 0.0
    #: fraction of *output* tokens that are reasoning tokens
    reasoning_share: float = 0.0
    #: the OPSDC cut: fraction of reasoning tokens removed (0.59 = 59% fewer)
    compression: float = 0.0
    #: "selfhost": the cut applies to the self-hosted (compressed) model only; "both": also to the API
    compression_applies_to: Literal["selfhost", "both"] = "selfhost"
    api: str = "gpt-5.4"
    batch: bool = False
    residency: bool = False
    #: the self-hosted model whose throughput sizes the fleet
    model: str = "nemotron-3-super"
    variant: str | None = None
    hardware: str = "H100"
    #: further hardware options to compare (None: every option with a throughput profile)
    compare: tuple[str, ...] | None = None
    acquisition: Literal["own", "rent"] | None = None
    capex_per_node: float | None = None
    rental_per_gpu_hour: float | None = None
    lifetime_years: float | None = None
    usd_per_kwh: float | None = None
    pue: float | None = None
    overhead_share: float | None = None
    #: fixed average utilization (the naive planner); excludes peak_to_mean and hourly_profile
    utilization: float | None = None
    peak_to_mean: float | None = None
    #: 24 relative loads, one per hour; the planner uses max / mean as the peak-to-mean factor
    hourly_profile: tuple[float, ...] | None = None
    throughput_per_gpu: float | None = None
    output_throughput_per_gpu: float | None = None
    replica_gpus: int | None = None
    overrides: EconomicsSection = EconomicsSection()

    @field_validator("tokens_per_day", mode="before")
    @classmethod
    def _quantity(cls, v: Any) -> Any:
        try:
            value = parse_quantity(v)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if value <= 0:
            raise ValueError(f"must be a positive number of tokens ({EXAMPLES}), got {v!r}")
        return value

    @field_validator(*_FRACTIONS)
    @classmethod
    def _fraction(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"must be a fraction between 0 and 1, got {v}")
        return v

    @field_validator("compression")
    @classmethod
    def _compression(cls, v: float) -> float:
        if v >= 1:
            raise ValueError(f"must be at least 0 and below 1 (0.59 = 59% fewer reasoning tokens), got {v}")
        return v

    @field_validator("utilization")
    @classmethod
    def _utilization(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v <= 1:
            raise ValueError(f"must be a fraction above 0 and at most 1, got {v}")
        return v

    @field_validator(*_POSITIVE, *_THROUGHPUT)
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError(f"must be a number above 0, got {v}")
        return v

    @field_validator("pue")
    @classmethod
    def _pue(cls, v: float | None) -> float | None:
        if v is not None and not 1 <= v <= 5:
            raise ValueError(f"must be between 1.0 and 5.0 (facility power / IT power), got {v}")
        return v

    @field_validator("peak_to_mean")
    @classmethod
    def _peak(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v >= 1):
            raise ValueError(f"must be at least 1 (peak-hour load / mean load), got {v}")
        return v

    @field_validator("replica_gpus")
    @classmethod
    def _replica(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        return v

    @field_validator("hourly_profile")
    @classmethod
    def _hourly(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is None:
            return v
        if len(v) != 24 or any(not math.isfinite(x) or x < 0 for x in v) or sum(v) <= 0:
            raise ValueError(f"must be 24 loads >= 0 (one per hour), not all zero; got {len(v)} values")
        return v

    @field_validator("hardware")
    @classmethod
    def _hardware(cls, v: str) -> str:
        return _known_hardware(v)

    @field_validator("compare")
    @classmethod
    def _compare(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else tuple(_known_hardware(x) for x in v)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        curves = [n for n in ("utilization", "peak_to_mean", "hourly_profile") if getattr(self, n) is not None]
        if len(curves) > 1:
            raise ValueError(
                f"{' and '.join(curves)}: give one of utilization (fixed), peak_to_mean or hourly_profile, not several"
            )
        from owstack.catalog.prices import api_price
        from owstack.economics.throughput import resolve_model

        for field, check in (
            ("api", lambda: api_price(self.api, self.overrides.price_overrides(self.api))),
            ("model", lambda: resolve_model(self.model)),
        ):
            try:
                check()
            except ConfigError as exc:
                raise ValueError(f"{field}: {_strip_field(str(exc))}") from None
        return self

    @property
    def load_factor(self) -> float:
        """Provisioned capacity / mean load: 1/utilization, the peak-to-mean factor, or the default."""
        if self.utilization is not None:
            return 1.0 / self.utilization
        if self.hourly_profile is not None:
            profile = self.hourly_profile
            return max(profile) / (sum(profile) / len(profile))
        return self.peak_to_mean if self.peak_to_mean is not None else DEFAULT_PEAK_TO_MEAN

    @property
    def load_model(self) -> str:
        if self.utilization is not None:
            return f"fixed utilization {self.utilization:.0%}"
        if self.hourly_profile is not None:
            return f"24-hour profile (peak/mean {self.load_factor:.2f})"
        if self.peak_to_mean is not None:
            return f"peak-to-mean {self.peak_to_mean:g}"
        return f"peak-to-mean {DEFAULT_PEAK_TO_MEAN:g} (default assumption)"


def _known_hardware(name: str) -> str:
    from owstack.catalog.hardware import hardware

    try:
        return hardware(name).id
    except ConfigError as exc:
        raise ValueError(_strip_field(str(exc))) from None


def _strip_field(message: str) -> str:
    head, sep, rest = message.partition(": ")
    return rest if sep and " " not in head else message


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; `ConfigError` naming the file otherwise."""
    return read_mapping(path, what, hint="of fields (e.g. tokens_per_day: 100M)")


def load_scenario(path: str | Path, updates: dict[str, Any] | None = None) -> Scenario:
    """Read a YAML scenario file, apply `updates` (e.g. CLI flags), validate."""
    raw = read_yaml_mapping(path, "scenario file")
    raw.update(updates or {})
    return make_scenario(raw, source=str(path))


def make_scenario(
    raw: dict[str, Any], source: str | None = "scenario", names: dict[str, str] | None = None
) -> Scenario:
    """Validate a mapping into a `Scenario`; `ConfigError` with every bad field on one line.

    `names` maps a field to how the user spelled it (a CLI flag); other fields are shown as
    `source: field`.
    """
    raw = dict(raw)
    for key in ("compare", "hourly_profile"):
        if isinstance(raw.get(key), list):
            raw[key] = tuple(raw[key])
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, names or {})) from None


def format_errors(exc: ValidationError, source: str | None, names: dict[str, str] | None = None) -> str:
    """`field: message` per error, joined with "; "."""
    names = names or {}
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        first = str(err["loc"][0]) if err["loc"] else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(Scenario.model_fields) if len(err["loc"]) == 1 else "see docs/economics.md"
            msg = f"unknown field; allowed: {allowed}"
        elif err["type"] in {"literal_error", "float_type", "int_type", "bool_type", "string_type"}:
            msg = f"{msg} (got {err.get('input')!r})"
        if not loc:  # a model-level check: the message starts with the field names
            head, sep, rest = msg.partition(": ")
            fields = head.split(" and ")
            if sep and all(f in Scenario.model_fields for f in fields):
                msg = " and ".join(names.get(f, f) for f in fields) + ": " + rest
            where = source if source and not all(f in names for f in fields) else ""
        elif first in names:
            where = names[first] + loc[len(first) :]
        else:
            where = f"{source}: {loc}" if source else loc
        lines.append(f"{where}: {msg}" if where else msg)
    return "; ".join(lines)
