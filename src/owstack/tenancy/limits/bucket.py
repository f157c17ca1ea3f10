"""The limiter's arithmetic and its interface, shared by the memory and the Redis backends.

**Rate caps: GCRA** (the generic cell rate algorithm), in its continuous-state leaky-bucket form. Each
tenant has one bucket per cap (requests, tokens) holding `level` units, which drains at `limit` units per
minute; a request adding `n` units conforms when `level + n <= limit`. The state is two numbers per
bucket (the level and the time it was last updated), so it costs O(1) memory and one Redis hash.

Burst behaviour: the capacity is one minute's worth. A tenant idle for a minute may send `limit` units
at once; after that, units are admitted at the steady rate (one request every 60/limit seconds). A
60 s window that starts with a full bucket can therefore pass up to twice the limit (the bucket, then a
minute of refill); over longer spans the rate tends to `limit` per minute. A sliding-window counter
would bound each window closer to the limit, but needs two counters per cap and approximates the
previous window's arrivals; GCRA is exact for its own definition and gives the OpenAI-style headers
directly (remaining = `limit - level`, reset = time until the bucket is empty).

The level is kept rather than GCRA's "theoretical arrival time" so that the numbers stay small: times
are integer microseconds since the epoch (exact in a double) and the level is a count of units, so
Lua (doubles) and Python agree at the boundaries without accumulated rounding.

Tokens are reserved in `before` (an estimate) and settled in `after` by `level += actual - reserved`
(never below 0). A settlement may push the level above the limit: the tenant then waits until it has
drained ("debt"), so that the long-run rate holds even when estimates are low.

**Monthly budget: reserve, then settle.** Per tenant and UTC calendar month, a month-to-date spend in USD
and the sum of the reservations of requests in flight (`held`). `before` reserves the request's maximum
cost (`Hold`: its prompt estimate plus `max_tokens` at the dearest candidate backend's price,
`usage.max_cost`) and admits it only when `spent + held + cost <= budget` (and `spent < budget`), all in one
atomic step; `after` releases the hold and charges the real cost, whatever the outcome (a failed request
costs nothing). A hold carries an expiry (`limits.reservation_ttl_s`): the holds of a process that died
(killed, partitioned away) lapse instead of blocking the tenant for good.

The bound: the spend of a month never exceeds `budget + sum(max(0, cost_i - hold_i))` over the requests
that were in flight together, so it never exceeds the budget when each request costs at most what it
reserved. That holds for API-priced backends whenever the request carries `max_tokens`; a request without
it reserves `limits.completion_estimate_tokens`, and a time-priced backend (self-hosted hardware, the
embedded engine) reserves `limits.reserve_seconds` of its time: beyond those, a request's excess can pass
the budget. With N concurrent requests each reserving h against a remaining budget B, at most floor(B / h)
are admitted: 400 requests against a budget that fits 70 admit 70 (tests/tenancy/test_limits_budget.py).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

#: the rate caps' period: per minute
PERIOD_US = 60_000_000
#: tolerance for float comparisons of bucket levels (units)
EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Rule:
    """One tenant's caps; None: no such cap."""

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """A budget reservation: an id unique in the fleet, its amount, and how long it may stay held."""

    id: str
    usd: float
    ttl_s: float


@dataclass(slots=True)
class Decision:
    """What `reserve` decided, and the buckets' levels after it (units in use, before draining further)."""

    allowed: bool
    #: why a request was refused: "budget", "requests" or "tokens"
    reason: str | None = None
    #: seconds until the request would conform (the month's end for "budget")
    retry_after_s: float = 0.0
    request_level: float = 0.0
    token_level: float = 0.0
    #: month-to-date spend (only read when the rule has a budget)
    spent_usd: float = 0.0
    #: reservations of requests in flight, this one's included when it was admitted
    held_usd: float = 0.0


class Limiter(Protocol):
    """A store of buckets and spend counters. `now` is wall-clock seconds (UTC epoch)."""

    async def reserve(self, tenant: str, rule: Rule, tokens: int, now: float, hold: Hold | None = None) -> Decision:
        """Check the budget (with `hold` reserved on top of the spend and the holds in flight), then take 1
        request and `tokens` tokens, and hold `hold`: all or nothing."""
        ...

    async def settle(
        self, tenant: str, rule: Rule, token_delta: int, cost_usd: float, now: float, hold: Hold | None = None
    ) -> None:
        """Correct the token bucket by `token_delta` (actual - reserved), release `hold` (if it has not lapsed)
        and add `cost_usd` to the month. A backend may defer it (Redis: until the tenant's next reservation
        or `flush`; the hold stays held until then, which errs toward the budget); never raises for the
        store's sake."""
        ...

    async def flush(self) -> None:
        """Send deferred settlements now (`LimiterUnavailable` if the store cannot take them)."""
        ...

    async def spent(self, tenant: str, now: float) -> float:
        """The tenant's spend in the UTC month of `now`."""
        ...

    async def held(self, tenant: str, now: float) -> float:
        """USD the tenant's requests in flight hold (lapsed holds not counted)."""
        ...

    async def seed(self, tenant: str, usd: float, now: float) -> bool:
        """Set the month's spend to `usd` if the counter is empty; True if it was set."""
        ...

    async def aclose(self) -> None: ...


class LimiterUnavailable(Exception):
    """The store cannot be reached (Redis down, timed out); the stage applies `on_redis_error`."""


def micros(now: float) -> int:
    return round(now * 1_000_000)


def drain(level: float, last_us: int, now_us: int, limit: int) -> tuple[float, int]:
    """The bucket's level at `now_us` and the time to store with it (a clock going back drains nothing)."""
    elapsed = now_us - last_us
    if elapsed <= 0:
        return level, last_us
    level -= elapsed * (limit / PERIOD_US)
    return (level if level > 0.0 else 0.0), now_us


def conforms(level: float, n: int, limit: int) -> bool:
    return level + n <= limit + EPS


def wait_s(level: float, n: int, limit: int) -> float:
    """Seconds until `n` more units conform."""
    return max(level + n - limit, 0.0) * PERIOD_US / limit / 1_000_000


def drain_s(level: float, limit: int) -> float:
    """Seconds until the bucket is empty (OpenAI's `x-ratelimit-reset-*`)."""
    return level * PERIOD_US / limit / 1_000_000


def remaining(level: float, limit: int) -> int:
    return max(int(limit - level + EPS), 0)


@dataclass(frozen=True, slots=True)
class Month:
    key: str  # "2026-11"
    start: float  # epoch seconds of its first instant (UTC)
    end: float  # epoch seconds of the next month's first instant


def month_of(now: float, last: Month | None = None) -> Month:
    """The UTC calendar month containing `now`; `last` is returned when it still is (no date arithmetic)."""
    if last is not None and last.start <= now < last.end:
        return last
    t = datetime.fromtimestamp(now, UTC)
    start = datetime(t.year, t.month, 1, tzinfo=UTC).timestamp()
    return Month(f"{t.year:04d}-{t.month:02d}", start, start + calendar.monthrange(t.year, t.month)[1] * 86400)
