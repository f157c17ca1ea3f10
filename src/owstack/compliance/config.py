"""The `audit:` config section (issue 6 owns its fields)."""

from __future__ import annotations

from owstack.config.base import Section


class AuditSection(Section):
    enabled: bool = False
