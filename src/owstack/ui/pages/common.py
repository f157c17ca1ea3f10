"""What several pages share: the range and tenant a request asks for, within what the visitor may see."""

from __future__ import annotations

from dataclasses import dataclass

from owstack.metering.rollups import DAY
from owstack.ui import ranges
from owstack.ui.page import Page


@dataclass(frozen=True)
class Scope:
    rng: ranges.Range
    #: the tenant the page is restricted to (a viewer's own, or an admin's choice); None: all
    tenant: str | None


def scope(page: Page, default: str = ranges.DEFAULT) -> Scope:
    rng = ranges.parse(page.request.query, default=default)
    return Scope(rng, page.viewer.tenant_filter(page.request.query.get("tenant")))


def per_day(rng: ranges.Range) -> ranges.Range:
    """The range drawn per day when it spans two days or more (else at its own grain)."""
    if rng.until - rng.since < 2 * DAY or rng.grain == DAY:
        return rng
    since = rng.since // DAY * DAY
    until = -(-rng.until // DAY) * DAY
    return ranges.Range(since, until, DAY, rng.name)


def presets() -> list[str]:
    return list(ranges.PRESETS)
