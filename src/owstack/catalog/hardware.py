"""Accelerator hardware (`catalog/data/hardware.yaml`), typed.

    hardware_options()        -> ["H100 SXM", "H200 SXM", "B200", "GB200 NVL72", "Vera Rubin NVL72", ...]
    hardware("h100")          -> Hardware(id="h100", gpus_per_node=8, ...)
    hardware("GB200 NVL72")   -> Hardware(id="gb200-nvl72", gpus_per_node=72, ...)
    cost_defaults()           -> {"usd_per_kwh": Range(...), "pue": ..., "lifetime_years": ..., ...}

A `Range` holds the sources' low, default (the conservative, higher-cost end) and high values with
their source and date. Names are matched case-insensitively, ignoring spaces, dashes and an "SXM" suffix.
Unknown names raise `ConfigError` listing the options. The data file is read on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from owstack.catalog import load_data
from owstack.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """A sourced number: `default` is what the planner uses, `low`/`high` bound the sensitivity table."""

    low: float
    default: float
    high: float
    source: str
    date: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "default": self.default,
            "high": self.high,
            "source": self.source,
            "date": self.date,
        }


@dataclass(frozen=True)
class Hardware:
    """One hardware option. A "node" is what is bought together: an 8-GPU server or a 72-GPU rack.

    `power_kw_per_gpu` is the node's full-load power divided by its GPUs where the vendor gives node
    power (CPUs, NICs and fans included), else the GPU's board power. `capex_per_node` and
    `rental_per_gpu_hour` are None where no source gives a price.
    """

    id: str
    name: str
    gpu: str
    aliases: tuple[str, ...]
    gpus_per_node: int
    memory_gb: float
    memory_bandwidth_tbs: float
    gpu_power_kw: float | None
    node_power_kw: Range | None
    capex_per_node: Range | None
    rental_per_gpu_hour: Range | None
    rental_unit_gpus: int
    available: bool
    notes: str
    source: str
    date: str

    @property
    def power_kw_per_gpu(self) -> float:
        if self.node_power_kw is not None:
            return self.node_power_kw.default / self.gpus_per_node
        if self.gpu_power_kw is None:
            raise ConfigError(f"hardware {self.id}: the catalog gives no power figure; set power_kw_per_gpu")
        return self.gpu_power_kw

    @property
    def capex_per_gpu(self) -> float | None:
        if self.capex_per_node is None:
            return None
        return self.capex_per_node.default / self.gpus_per_node

    @property
    def is_rack(self) -> bool:
        return self.gpus_per_node >= 36

    def to_dict(self) -> dict[str, Any]:
        def rng(r: Range | None) -> dict[str, Any] | None:
            return None if r is None else r.to_dict()

        return {
            "id": self.id,
            "name": self.name,
            "gpus_per_node": self.gpus_per_node,
            "memory_gb": self.memory_gb,
            "memory_bandwidth_tbs": self.memory_bandwidth_tbs,
            "power_kw_per_gpu": self.power_kw_per_gpu,
            "node_power_kw": rng(self.node_power_kw),
            "capex_per_node": rng(self.capex_per_node),
            "rental_per_gpu_hour": rng(self.rental_per_gpu_hour),
            "rental_unit_gpus": self.rental_unit_gpus,
            "available": self.available,
            "notes": self.notes,
            "source": self.source,
            "date": self.date,
        }


def hardware_options() -> list[str]:
    """Display names of the catalog's hardware, in catalog order (datacenter GPUs first)."""
    return [h.name for h in _all().values()]


def hardware_ids() -> list[str]:
    return list(_all())


def hardware(option: str) -> Hardware:
    """The hardware named `option` (an id, a display name or an alias; any case)."""
    key = _normalise(option)
    for item in _all().values():
        if key in {_normalise(n) for n in (item.id, item.name, *item.aliases)}:
            return item
    raise ConfigError(f"hardware: unknown option {option!r}; allowed: {', '.join(hardware_options())}")


def cost_defaults() -> dict[str, Range]:
    """Site-level defaults: usd_per_kwh, pue, lifetime_years, overhead_share."""
    raw: Mapping[str, Any] = load_data("hardware")["defaults"]
    return {key: _range(value) for key, value in raw.items()}


@cache
def _all() -> dict[str, Hardware]:
    raw: Mapping[str, Any] = load_data("hardware")["hardware"]
    return {hw_id: _from_entry(hw_id, entry) for hw_id, entry in raw.items()}


def _from_entry(hw_id: str, e: Mapping[str, Any]) -> Hardware:
    return Hardware(
        id=hw_id,
        name=str(e["name"]),
        gpu=str(e["name"]),
        aliases=tuple(str(a) for a in e.get("aliases") or ()),
        gpus_per_node=int(e["gpus_per_node"]),
        memory_gb=float(e["memory_gb"]),
        memory_bandwidth_tbs=float(e["memory_bandwidth_tbs"]),
        gpu_power_kw=None if e.get("gpu_power_kw") is None else float(e["gpu_power_kw"]),
        node_power_kw=_range(e.get("node_power_kw")),
        capex_per_node=_range(e.get("capex_per_node")),
        rental_per_gpu_hour=_range(e.get("rental_per_gpu_hour")),
        rental_unit_gpus=int(e.get("rental_unit_gpus", 1)),
        available=bool(e.get("available", True)),
        notes=str(e.get("notes") or ""),
        source=str(e["source"]),
        date=str(e["date"]),
    )


def _range(raw: Any) -> Any:
    if raw is None:
        return None
    return Range(
        low=float(raw["low"]),
        default=float(raw["default"]),
        high=float(raw["high"]),
        source=str(raw["source"]),
        date=str(raw["date"]),
    )


def _normalise(name: str) -> str:
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return key.removesuffix("sxm5").removesuffix("sxm")
