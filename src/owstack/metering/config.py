"""The `metering:` config section (issue 3 owns its fields)."""

from __future__ import annotations

from owstack.config.base import Section


class MeteringSection(Section):
    enabled: bool = True
