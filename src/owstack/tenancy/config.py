"""The `tenants:` entries (issue 6 owns their fields)."""

from __future__ import annotations

from owstack.config.base import Section


class TenantSection(Section):
    jurisdictions: tuple[str, ...] = ("local",)
