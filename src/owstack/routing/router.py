"""Layer choice and backend choice.

`Router.resolve(request)` turns the requested model into a layer and its candidate backends:

- a layer alias (`coding`, `multimodal`, `edge`): that layer;
- `auto`: the rules in `routing.auto`, first match wins: image parts -> `images`, tools or tool
  messages -> `tools`, the last user message looks like code -> `code`, otherwise `default`;
- a backend's model id (or a backend's name): the backends serving it, reported under their layer;
- `<any of those>:<adapter>` or an alias from `adapters.aliases`: the same backends, narrowed to those the
  adapter is registered on and whose jurisdiction its training data allows (`owstack.finetune.routes`).

`Router.pick` then chooses among a layer's replicas the one with the fewest outstanding requests among
those whose breaker admits a request and whose health check passes (an unhealthy replica is used only
when no healthy one is left); a layer with another `routing:` policy (round-robin, prefix: routing/balance.py)
chooses among those same replicas its own way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from owstack.config.load import Config
from owstack.errors import ModelNotFound
from owstack.finetune.routes import AdapterRoutes
from owstack.layers import AUTO, LAYERS
from owstack.routing.balance import Policy
from owstack.routing.health import HealthChecker
from owstack.routing.slot import Slot
from owstack.types import ChatRequest

_SCAN_CHARS = 4000  # only the tail of the last user message is scanned for code


@dataclass(frozen=True, slots=True)
class Route:
    layer: str
    reason: str
    replicas: tuple[str, ...]
    fallback: tuple[str, ...] = field(default=())
    #: the fine-tuned adapter the request selected (`edge:<adapter>`), None for the plain model
    adapter: str | None = None


class Router:
    def __init__(
        self,
        config: Config,
        slots: dict[str, Slot],
        health: HealthChecker,
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        self.slots = slots
        self.health = health
        #: the layers balanced otherwise than by least outstanding, and how
        self.policies = dict(policies or {})
        self.rules = config.file.routing.auto
        self._code = [re.compile(p, re.IGNORECASE) for p in self.rules.code_patterns]
        self.layers: dict[str, Route] = {
            name: Route(name, "explicit", spec.backends, spec.fallback) for name, spec in config.file.layers.items()
        }
        # A backend's model id or name routes to the backends serving that model, under their first layer.
        self.direct: dict[str, Route] = {}
        by_model: dict[str, list[str]] = {}
        for name, section in config.file.backends.items():
            by_model.setdefault(section.model, []).append(name)
        for model, names in by_model.items():
            self.direct[model] = Route(self._layer_of(names[0]), "model", tuple(names))
        for name in config.file.backends:
            self.direct.setdefault(name, Route(self._layer_of(name), "backend", (name,)))
        self.adapters = AdapterRoutes(config, {**self.direct, **self.layers})

    def _layer_of(self, backend: str) -> str:
        for layer, route in self.layers.items():
            if backend in route.replicas:
                return layer
        for layer, route in self.layers.items():
            if backend in route.fallback:
                return layer
        return "direct"

    def models(self) -> list[str]:
        return [*LAYERS, AUTO, *(m for m in self.direct if m not in LAYERS)]

    def resolve(self, request: ChatRequest) -> Route:
        model = request.model
        route = self.layers.get(model)
        if route is not None:
            return route
        if model == AUTO:
            layer, reason = self.auto_layer(request)
            base = self.layers[layer]
            return Route(layer, reason, base.replicas, base.fallback)
        route = self.direct.get(model) or self.adapters.resolve(model)
        if route is not None:
            return route
        raise ModelNotFound(
            f"The model `{model}` does not exist. Use a layer ({', '.join(LAYERS)}), `auto`, "
            "or a model listed by GET /v1/models.",
            param="model",
        )

    def auto_layer(self, request: ChatRequest) -> tuple[str, str]:
        rules = self.rules
        if request.has_images:
            return rules.images, "auto:images"
        if request.has_tools:
            return rules.tools, "auto:tools"
        text = _last_user_text(request.messages)
        if text and any(p.search(text) for p in self._code):
            return rules.code, "auto:code"
        return rules.default, "auto:default"

    def pick(
        self, names: Iterable[str], exclude: set[str], request: ChatRequest | None = None, layer: str | None = None
    ) -> Slot | None:
        """The replica with the fewest outstanding requests whose breaker admits one; healthy ones first.
        A layer with its own policy chooses among the same replicas (the healthy ones, if any)."""
        if self.policies:
            policy = self.policies.get(layer) if layer is not None else None
            if policy is not None:
                return self._pick_by(policy, names, exclude, request)
        best: Slot | None = None
        best_key: tuple[int, int] | None = None
        for name in names:
            if name in exclude:
                continue
            slot = self.slots[name]
            if not slot.breaker.available():
                continue
            key = (0 if self.health.healthy(name) else 1, slot.outstanding + slot.remote)
            if best_key is None or key < best_key:
                best, best_key = slot, key
        return best

    def _pick_by(
        self, policy: Policy, names: Iterable[str], exclude: set[str], request: ChatRequest | None
    ) -> Slot | None:
        open_ = [self.slots[n] for n in names if n not in exclude and self.slots[n].breaker.available()]
        healthy = [slot for slot in open_ if self.health.healthy(slot.name)]
        pool = healthy or open_
        return policy.choose(pool, request) if pool else None

    def unavailable_reasons(self, names: Iterable[str]) -> list[str]:
        out = []
        for name in names:
            slot = self.slots[name]
            if not slot.breaker.available():
                out.append(f"{name} (circuit open)")
            elif not self.health.healthy(name):
                out.append(f"{name} (failing health checks)")
        return out


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content[-_SCAN_CHARS:]
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            return "\n".join(t for t in texts if isinstance(t, str))[-_SCAN_CHARS:]
        return ""
    return ""
