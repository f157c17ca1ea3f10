"""`--expires` values: a duration from now (`30d`, `12h`, `2w`, `90m`) or an ISO 8601 date or time.

A date (`2027-01-31`) means 00:00 UTC on that day: the key stops working as that day begins. A time
without an offset (`2027-01-31T18:00`) is UTC. `never` (or `none`) means no expiry. The moment must be
in the future and at most 10 years away.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_AHEAD = timedelta(days=3660)
_DURATION = re.compile(r"^(\d{1,6})\s*([mhdw])$")
HELP = "a duration such as 30d, 12h, 2w, 90m, an ISO date (2027-01-31) or time (2027-01-31T18:00Z), or never"


def parse_expires(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """The expiry moment (UTC) for `text`, or None for no expiry. ValueError with the accepted forms."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    value = text.strip()
    if value.lower() in ("", "never", "none"):
        return None
    moment = _duration(value.lower(), now)
    if moment is None:
        moment = _iso(value)
    if moment is None:
        raise ValueError(f"{text!r} is not {HELP}")
    if moment <= now:
        raise ValueError(f"{text!r} is in the past ({moment.isoformat()}); give a moment in the future")
    if moment - now > MAX_AHEAD:
        raise ValueError(f"{text!r} is more than 10 years away; use `never` for a key without expiry")
    return moment


def _duration(value: str, now: datetime) -> datetime | None:
    match = _DURATION.match(value)
    if match is None:
        return None
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"{value!r}: a duration must be longer than zero")
    return now + amount * UNITS[match.group(2)]


def _iso(value: str) -> datetime | None:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return to_utc(moment)


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC, as SQLite returns them)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
