"""`owstack residency check`: for each tenant and layer, the backends it may reach, fallbacks included.

A layer that a tenant may use but whose every backend (replicas and fallbacks) is outside its
jurisdictions is a problem: requests there would be refused with `residency_violation`. With no tenants
configured, the open (keyless, loopback) mode is reported as tenant `(open mode)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from owstack.tenancy.residency import filter_candidates, reason

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.tenancy.config import TenantSection

OPEN_MODE = "(open mode)"


@dataclass(frozen=True, slots=True)
class LayerReach:
    layer: str
    #: the tenant may use this layer at all (its `layers` list)
    permitted: bool
    primary: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    #: (backend name, why it is out of reach)
    excluded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.permitted or bool(self.primary or self.fallback)


@dataclass(frozen=True, slots=True)
class TenantReach:
    tenant: str
    jurisdictions: tuple[str, ...]
    allow_proprietary: bool
    layers: list[LayerReach]


@dataclass(frozen=True, slots=True)
class ResidencyReport:
    tenants: list[TenantReach]
    #: one sentence per tenant and layer left without a backend
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "tenants": {
                t.tenant: {
                    "jurisdictions": list(t.jurisdictions),
                    "allow_proprietary": t.allow_proprietary,
                    "layers": {
                        lr.layer: {
                            "permitted": lr.permitted,
                            "backends": lr.primary,
                            "fallback": lr.fallback,
                            "excluded": {name: why for name, why in lr.excluded},
                        }
                        for lr in t.layers
                    },
                }
                for t in self.tenants
            },
        }


def residency_report(config: Config) -> ResidencyReport:
    file = config.file
    tenants: list[tuple[str, TenantSection | None]] = list(file.tenants.items()) or [(OPEN_MODE, None)]
    reaches: list[TenantReach] = []
    problems: list[str] = []
    for name, tenant in tenants:
        layers = [_layer(config, layer, tenant) for layer in file.layers]
        reaches.append(
            TenantReach(
                tenant=name,
                jurisdictions=tenant.jurisdictions if tenant else (),
                allow_proprietary=tenant.allow_proprietary if tenant else False,
                layers=layers,
            )
        )
        problems.extend(_problem(name, tenant, lr) for lr in layers if not lr.ok)
    return ResidencyReport(tenants=reaches, problems=problems)


def _layer(config: Config, layer: str, tenant: TenantSection | None) -> LayerReach:
    backends = config.file.backends
    spec = config.file.layers[layer]
    permitted = tenant is None or tenant.allows_layer(layer)
    primary, out_primary = filter_candidates(spec.backends, backends, tenant)
    fallback, out_fallback = filter_candidates(spec.fallback, backends, tenant)
    excluded: list[tuple[str, str]] = []
    for name in dict.fromkeys(out_primary + out_fallback):
        backend = backends.get(name)
        excluded.append((name, "unknown backend" if backend is None else reason(backend, tenant) or ""))
    return LayerReach(layer=layer, permitted=permitted, primary=primary, fallback=fallback, excluded=excluded)


def _problem(name: str, tenant: TenantSection | None, reach: LayerReach) -> str:
    why = "; ".join(f"{backend}: {text}" for backend, text in reach.excluded) or "the layer has no backends"
    if tenant is None:
        return f"{OPEN_MODE}: layer {reach.layer!r} has no backend it may reach ({why})"
    allow = ", ".join(tenant.jurisdictions)
    return f"tenant {name!r}: layer {reach.layer!r} has no backend inside {allow} ({why})"
