"""Read the ledger back: usage grouped by a dimension, and savings to date, this month and to payback.

    ledger_status(url)                            "missing" | "empty" | "ok" (never creates a database)
    usage(url, since, until, by) -> UsageReport   requests, errors, tokens, p50/p95 latency, TTFT, costs
    savings(url, capex_usd, now) -> dict          counterfactual minus actual; month projection; payback

Each first moves whatever the ledger process has journaled into the ledger (`journal.catch_up`), so that a
report counts every request accepted so far. Sums and counts are computed by the database; percentiles
(nearest rank) by one ORDER BY ... LIMIT 1 OFFSET k query per group, which both SQLite and PostgreSQL
answer from the same SQL.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from owstack.metering.journal import catch_up
from owstack.metering.ledger import ledger
from owstack.storage import engine
from owstack.storage.db import resolve_url

GROUPS: tuple[str, ...] = ("layer", "backend", "tenant", "day", "model")
NONE_KEY = "(none)"
#: savings run rate is measured over this trailing window (or since the first record, if later)
RUN_RATE_WINDOW = timedelta(days=7)
Status = Literal["missing", "empty", "ok"]


@dataclass
class Group:
    key: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    estimated: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    ttft_p50_s: float | None = None
    cost_usd: float = 0.0
    counterfactual_usd: float = 0.0
    savings_usd: float = 0.0
    #: requests on a self-hosted backend with no hardware profile (no cost known)
    uncosted: int = 0


@dataclass
class UsageReport:
    by: str
    since: datetime | None
    until: datetime | None
    groups: list[Group]
    total: Group

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "groups": [asdict(g) for g in self.groups],
            "total": asdict(self.total),
        }


def utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ledger_status(url: str) -> Status:
    """Whether the ledger exists and has rows, without creating a SQLite file that is not there.
    Raises `sqlalchemy.exc.OperationalError` (and kin) when the database cannot be reached."""
    resolved = resolve_url(url)
    file = resolved.database if resolved.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():
        return "missing"
    eng = engine(url)
    if not sa.inspect(eng).has_table("ledger"):
        return "missing"
    catch_up(url)
    with eng.connect() as conn:
        return "ok" if conn.execute(sa.select(ledger.c.id).limit(1)).first() else "empty"


def _where(since: datetime | None, until: datetime | None) -> list[sa.ColumnElement[bool]]:
    cond: list[sa.ColumnElement[bool]] = []
    if since is not None:
        cond.append(ledger.c.received_at >= since.astimezone(UTC))
    if until is not None:
        cond.append(ledger.c.received_at < until.astimezone(UTC))
    return cond


def _sums() -> list[Any]:
    c = ledger.c
    return [
        sa.func.count().label("requests"),
        sa.func.sum(sa.case((c.status >= 400, 1), else_=0)).label("errors"),
        sa.func.sum(c.prompt_tokens).label("prompt_tokens"),
        sa.func.sum(c.completion_tokens).label("completion_tokens"),
        sa.func.sum(c.reasoning_tokens).label("reasoning_tokens"),
        sa.func.sum(c.cached_tokens).label("cached_tokens"),
        sa.func.sum(sa.case((c.tokens_estimated, 1), else_=0)).label("estimated"),
        sa.func.sum(c.cost_usd).label("cost_usd"),
        sa.func.sum(c.counterfactual_usd).label("counterfactual_usd"),
        sa.func.sum(sa.case((c.cost_usd.is_(None), 1), else_=0)).label("uncosted"),
    ]


_COUNTS = ("requests", "errors", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens",
           "estimated", "uncosted")  # fmt: skip


def _group(key: str, row: Any) -> Group:
    m = row._mapping
    g = Group(key=key, **{k: int(m[k] or 0) for k in _COUNTS})
    g.cost_usd = float(m["cost_usd"] or 0.0)
    g.counterfactual_usd = float(m["counterfactual_usd"] or 0.0)
    g.savings_usd = g.counterfactual_usd - g.cost_usd
    return g


def _percentile(conn: sa.Connection, column: Any, cond: list[Any], p: float) -> float | None:
    cond = [*cond, column.is_not(None)]
    n = conn.execute(sa.select(sa.func.count()).select_from(ledger).where(*cond)).scalar() or 0
    if n == 0:
        return None
    rank = max(math.ceil(p * n) - 1, 0)
    value = conn.execute(sa.select(column).where(*cond).order_by(column).limit(1).offset(rank)).scalar()
    return None if value is None else float(value)


def _fill_percentiles(conn: sa.Connection, g: Group, cond: list[Any]) -> None:
    g.latency_p50_s = _percentile(conn, ledger.c.latency_s, cond, 0.50)
    g.latency_p95_s = _percentile(conn, ledger.c.latency_s, cond, 0.95)
    g.ttft_p50_s = _percentile(conn, ledger.c.ttft_s, cond, 0.50)


def usage(url: str, since: datetime | None = None, until: datetime | None = None, by: str = "layer") -> UsageReport:
    """Usage between `since` (inclusive) and `until` (exclusive), one group per value of `by`."""
    if by not in GROUPS:
        raise ValueError(f"by: {by!r} is not one of {', '.join(GROUPS)}")
    column = ledger.c[by]
    cond = _where(since, until)
    groups: list[Group] = []
    catch_up(url)
    with engine(url).connect() as conn:
        rows = conn.execute(sa.select(column.label("key"), *_sums()).where(*cond).group_by(column)).all()
        for row in sorted(rows, key=lambda r: (r.key is None, str(r.key))):
            key = NONE_KEY if row.key is None else str(row.key)
            g = _group(key, row)
            _fill_percentiles(conn, g, [*cond, column.is_(None) if row.key is None else column == row.key])
            groups.append(g)
        total = _group("total", conn.execute(sa.select(*_sums()).where(*cond)).one())
        _fill_percentiles(conn, total, cond)
    return UsageReport(by=by, since=since, until=until, groups=groups, total=total)


@dataclass
class Totals:
    requests: int = 0
    cost_usd: float = 0.0
    counterfactual_usd: float = 0.0
    capital_usd: float = 0.0
    uncosted: int = 0
    first: datetime | None = None
    last: datetime | None = None

    @property
    def savings_usd(self) -> float:
        return self.counterfactual_usd - self.cost_usd

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["savings_usd"] = self.savings_usd
        out["first"] = self.first.isoformat() if self.first else None
        out["last"] = self.last.isoformat() if self.last else None
        return out


def _totals(conn: sa.Connection, cond: list[Any]) -> Totals:
    c = ledger.c
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.sum(c.cost_usd),
            sa.func.sum(c.counterfactual_usd),
            sa.func.sum(c.capital_usd),
            sa.func.sum(sa.case((c.cost_usd.is_(None), 1), else_=0)),
            sa.func.min(c.received_at),
            sa.func.max(c.received_at),
        ).where(*cond)
    ).one()
    first, last = row[5], row[6]
    return Totals(
        requests=int(row[0] or 0),
        cost_usd=float(row[1] or 0.0),
        counterfactual_usd=float(row[2] or 0.0),
        capital_usd=float(row[3] or 0.0),
        uncosted=int(row[4] or 0),
        first=utc(first) if isinstance(first, datetime) else None,
        last=utc(last) if isinstance(last, datetime) else None,
    )


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def savings(
    url: str, capex_usd: float | None, *, capex_source: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Counterfactual minus actual: to date, this month (and projected to its end from the run rate of
    the last 7 days), and payback of `capex_usd`. Payback counts cash: savings plus the amortization
    already inside the self-hosted costs (`capital_usd`), since the capex is what that amortizes."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    month_start, month_end = _month_bounds(now)
    catch_up(url)
    with engine(url).connect() as conn:
        to_date = _totals(conn, [])
        month = _totals(conn, _where(month_start, None))
        window_start = max(now - RUN_RATE_WINDOW, to_date.first or now)
        trailing = _totals(conn, _where(window_start, None))
    span = max((now - window_start).total_seconds(), 0.0)
    rate = trailing.savings_usd / span if span > 0 else 0.0
    cash_rate = (trailing.savings_usd + trailing.capital_usd) / span if span > 0 else 0.0
    out: dict[str, Any] = {
        "now": now.isoformat(),
        "to_date": to_date.to_dict(),
        "month": {
            **month.to_dict(),
            "start": month_start.isoformat(),
            "end": month_end.isoformat(),
            "projected_savings_usd": month.savings_usd + rate * (month_end - now).total_seconds(),
        },
        "run_rate": {"window_s": span, "savings_usd_per_day": rate * 86400.0, "cash_usd_per_day": cash_rate * 86400.0},
        "payback": None,
    }
    if capex_usd:
        recovered = to_date.savings_usd + to_date.capital_usd
        remaining = max(capex_usd - recovered, 0.0)
        eta = None
        if remaining == 0:
            eta = now
        elif cash_rate > 0:
            eta = now + timedelta(seconds=remaining / cash_rate)
        out["payback"] = {
            "capex_usd": capex_usd,
            "capex_source": capex_source,
            "recovered_usd": recovered,
            "progress": recovered / capex_usd,
            "remaining_usd": remaining,
            "projected_date": eta.isoformat() if eta else None,
        }
    return out
