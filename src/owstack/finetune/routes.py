"""Routes to adapters: `model: "<layer, backend or model id>:<adapter>"`, or an alias from `adapters.aliases`.

The gateway reads the adapter registry once at start. A request for `edge:ticket-router` takes the edge
layer's route and keeps only the backends the adapter is registered on whose jurisdiction the adapter's
training data allows (an adapter trained on EU data is never served from a US backend), in the route's
order; the tenant's own residency filter then applies as for any request. Known names resolve from a
cache; a name that is not an adapter route costs one dict lookup and a string split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from owstack.errors import ModelNotFound, ResidencyViolation
from owstack.finetune.registry import Adapter, Registry
from owstack.finetune.sovereignty import may_serve


class AdapterRoutes:
    def __init__(self, config: Any, routes: Mapping[str, Any]) -> None:
        self.backends = config.file.backends
        self.aliases: dict[str, str] = dict(config.file.adapters.aliases)
        self.adapters: dict[str, Adapter] = Registry(Path(config.file.adapters.registry)).adapters()
        self.routes = routes
        self._cache: dict[str, Any] = {}

    def resolve(self, model: str) -> Any:
        """The route for an adapter model name; None when `model` names no adapter (the caller's 404)."""
        cached = self._cache.get(model)
        if cached is not None:
            return cached
        target = self.aliases.get(model, model)
        prefix, sep, name = target.rpartition(":")
        if not sep or name not in self.adapters:
            return None
        base = self.routes.get(prefix)
        if base is None:
            raise ModelNotFound(f"`{prefix}` in `{model}` is not a layer, backend or model id", param="model")
        route = self._narrow(base, self.adapters[name], prefix)
        self._cache[model] = route
        return route

    def _narrow(self, base: Any, adapter: Adapter, prefix: str) -> Any:
        names = [n for n in dict.fromkeys((*base.replicas, *base.fallback)) if n in adapter.backends]
        if not names:
            where = ", ".join(adapter.backends) or "no backend"
            raise ModelNotFound(
                f"adapter `{adapter.name}` is not registered on a backend of `{prefix}` (it is on: {where}); "
                "see `owstack adapters add`",
                param="model",
            )
        allowed = [n for n in names if may_serve(self.backends[n].jurisdiction, adapter.jurisdictions)]
        if not allowed:
            raise ResidencyViolation(
                f"adapter `{adapter.name}` was trained on data that may only be served in "
                f"{', '.join(adapter.jurisdictions)}; no backend of `{prefix}` is there"
            )
        replicas = tuple(n for n in base.replicas if n in allowed)
        fallback = tuple(n for n in base.fallback if n in allowed and n not in replicas)
        if not replicas:
            replicas, fallback = fallback[:1], fallback[1:]
        return dataclasses.replace(base, reason="adapter", replicas=replicas, fallback=fallback, adapter=adapter.name)

    def models(self, layers: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(model id, description) for /v1/models: `<layer>:<adapter>` where it is servable, and aliases."""
        out = []
        for name, adapter in self.adapters.items():
            for layer in layers:
                try:
                    route = self.resolve(f"{layer}:{name}")
                except (ModelNotFound, ResidencyViolation):
                    continue
                out.append((f"{layer}:{name}", self._describe(adapter, route)))
        for alias in self.aliases:
            try:
                route = self.resolve(alias)
            except (ModelNotFound, ResidencyViolation):
                continue
            if route is not None:
                out.append(
                    (alias, {**self._describe(self.adapters[route.adapter], route), "alias_of": self.aliases[alias]})
                )
        return out

    @staticmethod
    def _describe(adapter: Adapter, route: Any) -> dict[str, Any]:
        return {
            "kind": "adapter",
            "adapter": adapter.name,
            "layer": route.layer,
            "backends": [*route.replicas, *route.fallback],
            "base": adapter.base,
            "jurisdictions": adapter.jurisdictions,
            "sha256": adapter.sha256,
        }
