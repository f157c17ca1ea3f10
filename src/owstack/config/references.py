"""References from one part of the config to another, all checked here.

Each section's own model checks its fields (types, ranges, formats); what names something defined elsewhere
in the file is checked once the whole file has parsed, by `problems`, which `load.from_dict` runs on every
config (so no `Config` exists with a dangling reference, and `owstack config check` and `owstack serve`
report the same lines, exit 2):

    layers.<layer>                  one of the layers (LAYERS)
    layers.<layer>.backends         at least one, each in `backends`
    layers.<layer>.fallback         each in `backends`
    routing.auto.<rule>             a layer
    counterfactual.<layer>          a layer
    tenants.<t>.layers              layers (at least one, or the key left out for all)
    reasoning.layers.<layer>        a layer
    mcp.proxy.servers.<name>        in `mcp.servers`
    mcp.tenants.<t>                 in `tenants` (`default` in open mode, with no tenants)
    mcp.proxy.tenants.<t>           the same

Not references, and checked with the section: a backend's engine and URL, policy texts, jurisdiction labels.
What needs the catalog, the environment or the listening address is `validate`'s (config/validate.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from owstack.layers import LAYERS

if TYPE_CHECKING:
    from owstack.config.schema import ConfigFile

#: the tenant of every request in open mode (no tenants configured)
OPEN_TENANT = "default"
_AUTO_RULES = ("images", "tools", "code", "default")


def problems(file: ConfigFile) -> list[str]:
    """Every reference in `file` that does not resolve: one line each, `field: what is wrong; the fix`."""
    return [
        *_layers(file),
        *_auto_rules(file),
        *_unknown_layers("counterfactual", file.counterfactual),
        *_tenant_layers(file),
        *_unknown_layers("reasoning.layers", file.reasoning.layers, quoted=True),
        *_mcp(file),
    ]


def _layer_list() -> str:
    return ", ".join(LAYERS)


def _layers(file: ConfigFile) -> Iterator[str]:
    known = ", ".join(sorted(file.backends)) or "none defined"
    for layer, spec in file.layers.items():
        if layer not in LAYERS:
            yield f"layers.{layer}: unknown layer; the layers are {_layer_list()}"
            continue
        if not spec.backends:
            yield f"layers.{layer}.backends: needs at least one backend"
        for field, names in (("backends", spec.backends), ("fallback", spec.fallback)):
            for name in names:
                if name not in file.backends:
                    yield f"layers.{layer}.{field}: unknown backend {name!r} (backends: {known})"


def _auto_rules(file: ConfigFile) -> Iterator[str]:
    rules = file.routing.auto
    for field in _AUTO_RULES:
        target = getattr(rules, field)
        if target not in LAYERS:
            yield f"routing.auto.{field}: {target!r} is not a layer ({_layer_list()})"


def _unknown_layers(field: str, layers: Iterable[str], *, quoted: bool = False) -> Iterator[str]:
    for layer in layers:
        if layer not in LAYERS:
            what = f"unknown layer {layer!r}" if quoted else "unknown layer"
            yield f"{field}.{layer}: {what}; the layers are {_layer_list()}"


def _tenant_layers(file: ConfigFile) -> Iterator[str]:
    for tenant, section in file.tenants.items():
        if section.layers is None:
            continue
        if not section.layers:
            yield f"tenants.{tenant}.layers: needs at least one layer, or omit it for all ({_layer_list()})"
        for layer in section.layers:
            if layer not in LAYERS:
                yield f"tenants.{tenant}.layers: unknown layer {layer!r}; the layers are {_layer_list()}"


def _mcp(file: ConfigFile) -> Iterator[str]:
    mcp = file.mcp
    servers = ", ".join(sorted(mcp.servers)) or "none defined"
    for name in mcp.proxy.servers:
        if name not in mcp.servers:
            yield f"mcp.proxy.servers.{name}: not a server in mcp.servers ({servers})"
    if file.tenants:
        tenants, hint = set(file.tenants), f"tenants: {', '.join(sorted(file.tenants))}"
    else:
        tenants, hint = {OPEN_TENANT}, f"with no tenants configured, the one tenant is {OPEN_TENANT!r}"
    for field, names in (("mcp.tenants", mcp.tenants), ("mcp.proxy.tenants", mcp.proxy.tenants)):
        for name in names:
            if name not in tenants:
                yield f"{field}.{name}: not a tenant ({hint}); add it under `tenants:` or fix the name"
