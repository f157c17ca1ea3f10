"""Usage read from the ledger's rollups: time series, totals, and groups with percentiles and error codes.

Each function is one SQL statement over `ledger_rollups`: a range scan of its primary key at the grain the
range needs, grouped by the database (by bucket, or by the asked dimension), restricted to one tenant when
asked. Only the groups page reads the 84 histogram columns; the others sum a dozen. Adapters are the part of
a model name after its backend's own model id (`edge-model:support`), so they are grouped from the
(backend, model) sums in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from owstack.metering import rollups
from owstack.ui.ranges import Range, pieces

R = rollups.ledger_rollups.c
_HIST = len(rollups.HIST)
_AT = {name: i for i, name in enumerate(rollups.SUMS)}
_LAT0, _TT0 = _AT["hist_0"], _AT["ttft_0"]
#: the usage page's groupings
GROUPS: tuple[str, ...] = ("tenant", "layer", "backend", "model", "adapter")
NONE = "(none)"
#: the sums a page without percentiles needs
SCALARS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "uncosted",
           "cost_usd", "capital_usd", "counterfactual_usd", "fallbacks")  # fmt: skip


@dataclass
class Point:
    bucket: int
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    counterfactual_usd: float = 0.0

    @property
    def savings_usd(self) -> float:
        return self.counterfactual_usd - self.cost_usd


@dataclass
class Group:
    key: str
    sums: list[Any] = field(default_factory=lambda: [0] * len(rollups.SUMS))
    errors: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def add(self, values: Mapping[str, Any], status: int, code: str) -> None:
        for name, value in values.items():
            if value:
                self.sums[_AT[name]] += value
        if status >= 400:
            requests = int(values.get("requests") or 0)
            self.errors += requests
            label = code or str(status)
            self.codes[label] = self.codes.get(label, 0) + requests

    def __getattr__(self, name: str) -> Any:
        at = _AT.get(name)
        if at is None:
            raise AttributeError(name)
        return self.sums[at]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def savings_usd(self) -> float:
        return float(self.counterfactual_usd - self.cost_usd)

    def latency(self, q: float) -> float | None:
        return rollups.percentile(self.sums[_LAT0 : _LAT0 + _HIST], q)

    def ttft(self, q: float) -> float | None:
        return rollups.percentile(self.sums[_TT0 : _TT0 + _HIST], q)


def _where(rng: Range, tenant: str | None, extra: Iterable[Any] = (), *, exact_grain: bool = True) -> list[Any]:
    """The range's rows: at its grain (a series), or covered by the coarsest grains that fit (sums)."""
    if exact_grain:
        where = [R.grain == rng.grain, R.bucket >= rng.since, R.bucket < rng.until, *extra]
    else:
        spans = [sa.and_(R.grain == g, R.bucket >= a, R.bucket < b) for g, a, b in pieces(rng)]
        where = [sa.or_(*spans), *extra]
    if tenant is not None:
        where.append(R.tenant == tenant)
    return where


def series(conn: sa.Connection, rng: Range, tenant: str | None = None) -> list[Point]:
    """One point per bucket of the range (empty buckets included)."""
    errors = sa.func.sum(sa.case((R.status >= 400, R.requests), else_=0))
    names = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cost_usd", "counterfactual_usd")
    query = sa.select(R.bucket, errors, *(sa.func.sum(R[n]) for n in names)).where(*_where(rng, tenant))
    found = {}
    for row in conn.execute(query.group_by(R.bucket)):
        found[int(row[0])] = Point(
            int(row[0]), int(row[2] or 0), int(row[1] or 0), int(row[3] or 0), int(row[4] or 0), int(row[5] or 0),
            float(row[6] or 0.0), float(row[7] or 0.0),
        )  # fmt: skip
    return [found.get(b) or Point(b) for b in rng.buckets]


def _column(by: str) -> list[Any]:
    return [R.backend, R.model] if by == "adapter" else [R[by]]


def groups(
    conn: sa.Connection,
    rng: Range,
    by: str,
    *,
    tenant: str | None = None,
    percentiles: bool = True,
    where: Iterable[Any] = (),
    adapter: Callable[[str, str], str | None] | None = None,
) -> tuple[list[Group], Group]:
    """The range's sums grouped by `by` (`GROUPS`), biggest first, and their total."""
    if by not in GROUPS:
        raise ValueError(f"by: {by!r} is not one of {', '.join(GROUPS)}")
    names = rollups.SUMS if percentiles else SCALARS
    keys = _column(by)
    query = sa.select(*keys, R.status, R.error_code, *(sa.func.sum(R[n]) for n in names))
    query = query.where(*_where(rng, tenant, where, exact_grain=False)).group_by(*keys, R.status, R.error_code)
    out: dict[str, Group] = {}
    total = Group("total")
    width = len(keys)
    for row in conn.execute(query):
        key = (_adapter(adapter, row[0], row[1]) if by == "adapter" else row[0]) or NONE
        values = dict(zip(names, row[width + 2 :], strict=True))
        group = out.get(key)
        if group is None:
            group = out[key] = Group(key)
        group.add(values, int(row[width]), str(row[width + 1]))
        total.add(values, int(row[width]), str(row[width + 1]))
    return sorted(out.values(), key=lambda g: (-g.requests, g.key)), total


def _adapter(adapter: Callable[[str, str], str | None] | None, backend: str, model: str) -> str | None:
    return adapter(backend, model) if adapter is not None else None


def totals(conn: sa.Connection, rng: Range, tenant: str | None = None) -> Group:
    return groups(conn, rng, "tenant", tenant=tenant, percentiles=False)[1]


def journal_pending(conn: sa.Connection) -> int:
    """Requests accepted by the ledger process and not filed yet (not in any rollup): the journal's rows."""
    if not sa.inspect(conn).has_table("ledger_journal"):
        return 0
    got = conn.exec_driver_sql("SELECT COALESCE(SUM(row_count), 0) FROM ledger_journal").scalar()
    return int(got or 0)
