"""The `adapters:` config section: where registered adapters live, and aliases that select one.

    adapters:
      registry: owstack-adapters          # `owstack adapters add` copies adapters here; the gateway reads it at start
      aliases:
        ticket-router: edge:ticket-router # `model: ticket-router` means the edge layer with that adapter

A request selects an adapter with `model: "<layer, backend or model id>:<adapter>"` or an alias.
"""

from __future__ import annotations

import re

from pydantic import field_validator

from owstack.config.base import Section

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class AdaptersSection(Section):
    registry: str = "owstack-adapters"
    aliases: dict[str, str] = {}

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: dict[str, str]) -> dict[str, str]:
        for alias, target in v.items():
            if not _ALIAS.match(alias):
                raise ValueError(f"alias {alias!r}: 1-64 of letters, digits, '_', '.', '-'")
            if ":" not in target:
                raise ValueError(f"alias {alias!r}: the target must be <layer or backend>:<adapter> (got {target!r})")
        return v
