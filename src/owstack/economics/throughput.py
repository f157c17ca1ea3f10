"""Serving throughput per self-hosted model x hardware (`catalog/data/throughput.yaml`).

A profile describes one replica (`replica_gpus` GPUs serving one copy of the model) at the published
concurrency. Profiles marked `derive` in the data file are estimates: the anchor's figures scaled by
the per-GPU HBM bandwidth ratio; `estimate` is True for them and the planner says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from owstack.catalog import load_data
from owstack.catalog.hardware import hardware
from owstack.errors import ConfigError


@dataclass(frozen=True)
class ThroughputProfile:
    """Tokens per second of one replica; a None figure is not a sizing constraint."""

    model: str
    hardware: str
    variant: str
    replica_gpus: int
    total_tokens_per_s: float | None
    output_tokens_per_s: float | None
    concurrency: int | None
    workload: str
    estimate: bool
    source: str
    date: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def self_hosted_models() -> list[str]:
    return list(_data()["models"])


def resolve_model(model: str) -> str:
    """The throughput catalog's id for `model`; `ConfigError` listing the models when unknown."""
    key = model.strip().lower()
    for model_id, entry in _data()["models"].items():
        if key in {n.lower() for n in (model_id, *(entry.get("aliases") or ()))}:
            return str(model_id)
    raise ConfigError(f"model: unknown self-hosted model {model!r}; allowed: {', '.join(self_hosted_models())}")


def profiled_hardware(model: str) -> list[str]:
    """Hardware ids with a throughput profile (measured or estimated) for `model`, in catalog order."""
    model_id = resolve_model(model)
    ids = {p["hardware"] for p in _data()["profiles"] if p["model"] == model_id}
    from owstack.catalog.hardware import hardware_ids

    return [hw_id for hw_id in hardware_ids() if hw_id in ids]


def throughput_profile(
    model: str,
    option: str,
    variant: str | None = None,
    overrides: Mapping[str, float] | None = None,
) -> ThroughputProfile:
    """The profile of `model` on hardware `option`, with per-GPU `overrides` applied.

    `overrides` keys: `throughput_per_gpu` (input + output tok/s per GPU), `output_throughput_per_gpu`,
    `replica_gpus`. With overrides, a model x hardware pair the catalog lacks is accepted.
    """
    model_id = resolve_model(model)
    hw = hardware(option)
    overrides = dict(overrides or {})
    entry = _find(model_id, hw.id, variant)
    if entry is None:
        if not overrides.get("throughput_per_gpu") and not overrides.get("output_throughput_per_gpu"):
            have = [hardware(h).name for h in profiled_hardware(model_id)]
            raise ConfigError(
                f"hardware: no throughput profile for {model_id} on {hw.name}; profiled: {', '.join(have)} "
                "(or give throughput_per_gpu)"
            )
        base = ThroughputProfile(model_id, hw.id, variant or "custom", 1, None, None, None, "user", False, "user", "")
    else:
        base = _build(model_id, hw.id, entry)
    return _apply(base, overrides)


def _apply(base: ThroughputProfile, overrides: Mapping[str, float]) -> ThroughputProfile:
    allowed = {"throughput_per_gpu", "output_throughput_per_gpu", "replica_gpus"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(f"throughput: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    changes: dict[str, Any] = {}
    gpus = int(overrides.get("replica_gpus") or base.replica_gpus)
    if gpus < 1:
        raise ConfigError("replica_gpus: must be at least 1")
    if gpus != base.replica_gpus:
        # keep the per-GPU figures, re-sized to the new replica
        scale = gpus / base.replica_gpus
        changes["replica_gpus"] = gpus
        for key in ("total_tokens_per_s", "output_tokens_per_s"):
            value = getattr(base, key)
            changes[key] = None if value is None else value * scale
    if overrides.get("throughput_per_gpu"):
        changes["total_tokens_per_s"] = float(overrides["throughput_per_gpu"]) * gpus
    if overrides.get("output_throughput_per_gpu"):
        changes["output_tokens_per_s"] = float(overrides["output_throughput_per_gpu"]) * gpus
    if not changes:
        return base
    if "total_tokens_per_s" in changes or "output_tokens_per_s" in changes:
        changes.update(estimate=False, source=f"user scenario (catalog: {base.source})", date="")
    return replace(base, **changes)


def _find(model_id: str, hw_id: str, variant: str | None) -> Mapping[str, Any] | None:
    for entry in _data()["profiles"]:
        if entry["model"] != model_id or entry["hardware"] != hw_id:
            continue
        if variant is None or entry.get("variant", "default") == variant:
            return dict(entry)
    return None


def _build(model_id: str, hw_id: str, entry: Mapping[str, Any]) -> ThroughputProfile:
    derive = entry.get("derive")
    if derive is None:
        return ThroughputProfile(
            model=model_id,
            hardware=hw_id,
            variant=str(entry.get("variant", "default")),
            replica_gpus=int(entry["replica_gpus"]),
            total_tokens_per_s=_opt(entry.get("total_tokens_per_s")),
            output_tokens_per_s=_opt(entry.get("output_tokens_per_s")),
            concurrency=entry.get("concurrency"),
            workload=str(entry.get("workload", "")),
            estimate=False,
            source=str(entry["source"]),
            date=str(entry["date"]),
        )
    if derive.get("by") != "memory_bandwidth":
        raise ConfigError(f"throughput.yaml: {model_id} on {hw_id}: unknown derivation {derive.get('by')!r}")
    anchor_entry = _find(model_id, str(derive["from"]), None)
    if anchor_entry is None or anchor_entry.get("derive"):
        raise ConfigError(f"throughput.yaml: {model_id} on {hw_id}: anchor {derive['from']!r} is not a measurement")
    anchor = _build(model_id, str(derive["from"]), anchor_entry)
    ratio = hardware(hw_id).memory_bandwidth_tbs / hardware(anchor.hardware).memory_bandwidth_tbs
    return replace(
        anchor,
        hardware=hw_id,
        total_tokens_per_s=None if anchor.total_tokens_per_s is None else anchor.total_tokens_per_s * ratio,
        output_tokens_per_s=None if anchor.output_tokens_per_s is None else anchor.output_tokens_per_s * ratio,
        estimate=True,
        workload=f"{anchor.workload} (scaled x{ratio:.3f} by HBM bandwidth)",
        source=str(entry["source"]),
        date=str(entry["date"]),
    )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _data() -> dict[str, Any]:
    data: dict[str, Any] = load_data("throughput")
    return data
