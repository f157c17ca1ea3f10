"""Each self-hosted backend's load, measured from the ledger (by the writer, every minute or so).

Over the last `window_s` (never earlier than the backend's first ledger record), with each request
occupying [received_at, received_at + latency_s]:

    busy time    = the length of the union of those intervals (time with at least one request in flight)
    utilization  = busy time / window                    (the deployment's busy share of wall time)
    concurrency  = sum of latencies / busy time          (mean requests in flight while busy, >= 1)

A request's busy seconds are then its latency / concurrency, so the busy seconds of a window add up to
its busy time, and cost = $/s x busy seconds / utilization spreads the whole window's cost over its
requests (see `owstack.economics.costs.selfhost_request_cost`). At most `max_rows` of the most recent
requests are read per backend; when a window holds more, it is shortened to the span they cover.
Only the rows already in the ledger's table count: batches the ledger process still holds in its journal
(at most `metering.journal_max_rows` records, the last seconds of a saturating burst) are left to it, so
that this measurement, which runs in the gateway's process, never does the ledger process's work.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from owstack.metering.costs import Utilization
from owstack.metering.ledger import ledger

MAX_ROWS = 50_000


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def load_of(intervals: list[tuple[float, float]], window_start: float, now: float) -> Utilization | None:
    """Utilization and concurrency of `(start, duration)` intervals over [window_start, now]."""
    if not intervals or now <= window_start:
        return None
    intervals.sort()
    busy = total = 0.0
    cur_start = cur_end = -1.0
    for begin, duration in intervals:
        start, end = max(begin, window_start), min(begin + max(duration, 0.0), now)
        if end <= start:
            continue
        total += end - start
        if start > cur_end:
            busy += max(cur_end - cur_start, 0.0)
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += max(cur_end - cur_start, 0.0)
    if busy <= 0:
        return None
    return Utilization(utilization=min(busy / (now - window_start), 1.0), concurrency=max(total / busy, 1.0))


def measure(
    eng: sa.Engine,
    backends: Iterable[str],
    window_s: float,
    *,
    now: float | None = None,
    max_rows: int = MAX_ROWS,
) -> dict[str, Utilization]:
    """The load of each named backend over the last `window_s` seconds (backends with no requests in
    the window are left out)."""
    now = datetime.now(UTC).timestamp() if now is None else now
    since = datetime.fromtimestamp(now - window_s, UTC)
    out: dict[str, Utilization] = {}
    with eng.connect() as conn:
        for name in backends:
            first = conn.execute(sa.select(sa.func.min(ledger.c.received_at)).where(ledger.c.backend == name)).scalar()
            if first is None:
                continue
            rows = conn.execute(
                sa.select(ledger.c.received_at, ledger.c.latency_s)
                .where(ledger.c.backend == name, ledger.c.received_at >= since, ledger.c.latency_s.is_not(None))
                .order_by(ledger.c.received_at.desc())
                .limit(max_rows)
            ).all()
            intervals = [(_epoch(r[0]), float(r[1])) for r in rows]
            start = max(now - window_s, _epoch(first))
            if len(rows) == max_rows:
                start = max(start, intervals[-1][0])
            load = load_of(intervals, start, now)
            if load is not None:
                out[name] = load
    return out
