"""The `security:` config section: guard and egress policy (issue 4 owns its fields)."""

from __future__ import annotations

from owstack.config.base import Section


class SecuritySection(Section):
    guard: bool = False
