"""The time range a page shows, from its query (`?range=7d`, or `?from=2026-11-01&to=2026-11-30`), and the
rollup grain that draws it with at most a few hundred points.

Any range up to `MAX_DAYS` is allowed (a year, ten years): the grain grows with it, up to a day, so a long
range costs no more rows than a short one. Longer ones are refused: a day grain cannot shrink them, and
`from=0001-01-01&to=9999-12-31` (3.65 million days) kept the console's one thread busy for minutes, every
other console request waiting behind it. Ranges are in UTC and aligned to their grain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from owstack.metering.rollups import DAY, HOUR, MINUTE, MINUTE_KEEP_S

PRESETS: dict[str, int] = {
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 86400,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
    "90d": 90 * 86400,
    "365d": 365 * 86400,
}
DEFAULT = "7d"
#: the longest custom range, in days (twenty years: a chart of 7,305 points at day grain)
MAX_DAYS = 20 * 365 + 5


class BadRange(ValueError):
    pass


@dataclass(frozen=True)
class Range:
    since: int
    until: int
    grain: int
    #: the preset's name, or "custom"
    name: str

    @property
    def buckets(self) -> list[int]:
        return list(range(self.since, self.until, self.grain))

    @property
    def days(self) -> float:
        return (self.until - self.since) / 86400

    def label(self) -> str:
        fmt = "%Y-%m-%d" if self.grain == DAY else "%Y-%m-%d %H:%M"
        last = self.until - (self.grain if self.grain == DAY else 0)
        return f"{_utc(self.since).strftime(fmt)} to {_utc(last).strftime(fmt)} UTC"

    @property
    def from_date(self) -> str:
        return _utc(self.since).strftime("%Y-%m-%d")

    @property
    def to_date(self) -> str:
        return _utc(self.until - 1).strftime("%Y-%m-%d")


def pieces(rng: Range) -> list[tuple[int, int, int]]:
    """(grain, since, until) spans that cover the range exactly, each at the coarsest grain that fits: a week
    at hour grain is read as six days and about a day of hours (a fifth of the rows to sum)."""
    grains = [g for g in (DAY, HOUR, MINUTE) if g >= rng.grain]
    out: list[tuple[int, int, int]] = []

    def cover(since: int, until: int, at: int) -> None:
        if since >= until:
            return
        grain = grains[at]
        if at == len(grains) - 1:
            out.append((grain, since, until))
            return
        low, high = -(-since // grain) * grain, until // grain * grain
        if low >= high:
            cover(since, until, at + 1)
            return
        cover(since, low, at + 1)
        out.append((grain, low, high))
        cover(high, until, at + 1)

    cover(rng.since, rng.until, 0)
    return out


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def grain_for(span: int, since: float, now: float) -> int:
    if span <= 6 * 3600 and since >= now - MINUTE_KEEP_S:
        return MINUTE
    if span <= 14 * 86400:
        return HOUR
    return DAY


def _day(text: str, field: str) -> int:
    try:
        return int(datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC).timestamp())
    except ValueError:
        raise BadRange(f"{field}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse(query: dict[str, str], *, default: str = DEFAULT, now: float | None = None) -> Range:
    """The range a query asks for; `BadRange` naming the field otherwise."""
    now = time.time() if now is None else now
    start, end = query.get("from"), query.get("to")
    if start or end:
        since = _day(start, "from") if start else _day(str(_utc(int(now)).date() - timedelta(days=6)), "from")
        until = (_day(end, "to") if end else _day(str(_utc(int(now)).date()), "to")) + 86400
        if until <= since:
            raise BadRange("to: must not be before from")
        if until - since > MAX_DAYS * 86400:
            raise BadRange(f"from, to: at most {MAX_DAYS} days apart (twenty years)")
        grain = DAY if until - since > 14 * 86400 else HOUR
        return Range(since, until, grain, "custom")
    name = query.get("range") or default
    span = PRESETS.get(name)
    if span is None:
        raise BadRange(f"range: {name!r} is not one of {', '.join(PRESETS)} (or give from= and to=)")
    grain = grain_for(span, now - span, now)
    until = (int(now) // grain + 1) * grain
    since = until - ((span + grain - 1) // grain) * grain
    return Range(since, until, grain, name)
