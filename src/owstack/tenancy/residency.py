"""Data residency, fail closed: which backends a tenant's request may go to.

Rules (`allowed`):

- Every backend has one jurisdiction label (`eu`, `us`, `local`, `eu-fr`, ...); every tenant lists the
  labels its data may go to. A tenant label allows the same label and every finer one: `eu` allows `eu`,
  `eu-fr` and `eu-fr-par`; `eu-fr` allows neither `eu-de` nor plain `eu`. `local` (this host) is a label
  like any other: a tenant that lists only `eu` does not reach `local` backends.
- A backend marked `proprietary: true` (a third-party API) is reachable only by a tenant that allows its
  jurisdiction AND sets `allow_proprietary: true`. Listing `us` for a self-hosted US cluster must not
  quietly also send data to a US API vendor.
- With no tenant (the open, keyless loopback mode) every self-hosted backend is reachable and no
  proprietary one is: a proprietary API needs a tenant that allows it.

The router filters a layer's candidates (replicas and fallbacks alike) with `filter_candidates` before
the first attempt, and refuses with `raise_if_empty` (403 `residency_violation`) when none is left: a
refused request never leaves the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from owstack.errors import ResidencyViolation

if TYPE_CHECKING:
    from owstack.config.schema import BackendSection
    from owstack.tenancy.config import TenantSection


def label_covers(allowed: str, label: str) -> bool:
    """True when the tenant label `allowed` covers the backend label `label` (same, or finer)."""
    return label == allowed or label.startswith(allowed + "-")


def allowed(backend: BackendSection, tenant: TenantSection | None) -> bool:
    """May a request of `tenant` (None: open mode) go to `backend`?"""
    if tenant is None:
        return not backend.proprietary
    if backend.proprietary and not tenant.allow_proprietary:
        return False
    return any(label_covers(label, backend.jurisdiction) for label in tenant.jurisdictions)


def reason(backend: BackendSection, tenant: TenantSection | None) -> str | None:
    """Why `backend` is out of reach for `tenant`, or None when it is allowed (for reports)."""
    if allowed(backend, tenant):
        return None
    if tenant is None:
        return f"proprietary ({backend.jurisdiction}); open mode reaches no proprietary API"
    inside = any(label_covers(label, backend.jurisdiction) for label in tenant.jurisdictions)
    if backend.proprietary and inside:
        return f"proprietary ({backend.jurisdiction}) and the tenant does not set allow_proprietary"
    kind = "proprietary, " if backend.proprietary else ""
    return f"{kind}jurisdiction {backend.jurisdiction} is outside {', '.join(tenant.jurisdictions)}"


def filter_candidates(
    names: Sequence[str], backends: Mapping[str, BackendSection], tenant: TenantSection | None
) -> tuple[list[str], list[str]]:
    """Split `names` (in order) into (kept, excluded). An unknown name is excluded: fail closed."""
    kept: list[str] = []
    excluded: list[str] = []
    for name in names:
        backend = backends.get(name)
        (kept if backend is not None and allowed(backend, tenant) else excluded).append(name)
    return kept, excluded


def raise_if_empty(
    kept: Sequence[str],
    excluded: Sequence[str],
    tenant: TenantSection | None,
    layer: str,
    *,
    tenant_name: str | None = None,
    backends: Mapping[str, BackendSection] | None = None,
) -> None:
    """Raise `ResidencyViolation` (403, code `residency_violation`) when no candidate is left.

    The message names the tenant, the layer and the jurisdictions involved; never a backend's URL.
    Pass `backends` to name the excluded backends' jurisdictions (else their count is given).
    """
    if kept:
        return
    who = f"tenant {tenant_name!r}" if tenant_name else ("this tenant" if tenant is not None else "open mode")
    outside = _jurisdictions(excluded, backends)
    where = f"({', '.join(outside)})" if outside else f"({len(excluded)} backend(s))"
    if tenant is None:
        raise ResidencyViolation(
            f"residency: layer {layer!r} has only proprietary API backends {where}, and {who} reaches none; "
            "a tenant with allow_proprietary: true and their jurisdiction is needed"
        )
    allow = ", ".join(tenant.jurisdictions)
    note = "" if tenant.allow_proprietary else "; proprietary APIs are not allowed for it"
    raise ResidencyViolation(
        f"residency: {who} may send data only to {allow}{note}; every backend of layer {layer!r} "
        f"is outside that {where}. Nothing was sent."
    )


def _jurisdictions(names: Sequence[str], backends: Mapping[str, BackendSection] | None) -> list[str]:
    if backends is None:
        return []
    labels: list[str] = []
    for name in names:
        backend = backends.get(name)
        if backend is None:
            continue
        label = f"{backend.jurisdiction} proprietary" if backend.proprietary else backend.jurisdiction
        if label not in labels:
            labels.append(label)
    return labels
