"""The `reasoning:` config section: the default reasoning policy per layer.

    reasoning:
      default: null                 # every layer without an entry: the engine's own behaviour
      layers: {coding: "budget:2048", edge: off}
      concise_version: v1           # which teacher instruction plain `concise` means

A tenant's `reasoning:` and a request's `reasoning_policy` field or `x-owstack-reasoning` header take
precedence over these (see `owstack.efficiency.policies.resolve`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from owstack.config.base import Section


class ReasoningSection(Section):
    #: the policy for layers that have no entry in `layers` (None: leave the engine's default)
    default: str | None = None
    #: per-layer policy, e.g. {coding: "budget:2048"}
    layers: dict[str, str] = {}
    concise_version: Literal["v1", "v2"] = "v1"

    @field_validator("default")
    @classmethod
    def _default_policy(cls, v: str | None) -> str | None:
        if v is not None:
            _check(v)
        return v

    @field_validator("layers")
    @classmethod
    def _layer_policies(cls, v: dict[str, str]) -> dict[str, str]:
        for layer, text in v.items():  # which keys are layers: config/references.py
            _check(text, param=layer)
        return v

    def for_layer(self, layer: str | None) -> str | None:
        """The configured policy text for a layer (its own entry, else `default`)."""
        if layer is not None and layer in self.layers:
            return self.layers[layer]
        return self.default


def _check(text: str, param: str = "") -> None:
    from owstack.efficiency.policies import parse_policy
    from owstack.errors import InvalidRequest

    try:
        parse_policy(text, param=param)
    except InvalidRequest as exc:
        raise ValueError(exc.message) from None
