"""`--expires` parsing: durations, ISO dates and times, and the errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from owstack.tenancy.expiry import parse_expires, to_utc

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("2w", NOW + timedelta(weeks=2)),
        ("90m", NOW + timedelta(minutes=90)),
        (" 7D ", NOW + timedelta(days=7)),
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T18:00", datetime(2027, 1, 31, 18, 0, tzinfo=UTC)),
        ("2027-01-31T18:00Z", datetime(2027, 1, 31, 18, 0, tzinfo=UTC)),
        ("2027-01-31T18:00+02:00", datetime(2027, 1, 31, 16, 0, tzinfo=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    assert parse_expires(text, now=NOW) == expected


@pytest.mark.parametrize("text", [None, "never", "NONE", ""])
def test_no_expiry(text: str | None) -> None:
    assert parse_expires(text, now=NOW) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "is not a duration such as 30d"),
        ("3x", "is not a duration"),
        ("soon", "is not a duration"),
        ("2027-02-30", "is not a duration"),
        ("0d", "longer than zero"),
        ("2020-01-01", "is in the past"),
        ("2026-06-01T12:00Z", "is in the past"),
        ("9999d", "more than 10 years away"),
    ],
)
def test_rejected_forms(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_expires(text, now=NOW)


def test_to_utc_takes_naive_as_utc() -> None:
    assert to_utc(datetime(2026, 1, 1, 5)) == datetime(2026, 1, 1, 5, tzinfo=UTC)
