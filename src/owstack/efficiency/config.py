"""The `reasoning:` config section: reasoning policies per layer (issue 5 owns its fields)."""

from __future__ import annotations

from owstack.config.base import Section


class ReasoningSection(Section):
    default: str | None = None
