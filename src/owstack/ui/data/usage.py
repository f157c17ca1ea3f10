"""Usage read from the ledger's rollups: time series, groups with percentiles, totals, error codes.

Each function is one SQL statement over `ledger_rollups` (a range scan of its primary key, at the grain
the range needs), restricted to one tenant by a join with `ledger_dims` when asked; grouping by a
dimension (tenant, layer, backend, model, adapter, key) happens in Python over the few hundred rows the
database returns per (dim, status, error code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from owstack.metering import rollups
from owstack.metering.ledger import ledger_dims
from owstack.ui.data.dims import Dim, DimsCache
from owstack.ui.ranges import Range

R = rollups.ledger_rollups.c
_HIST = len(rollups.HIST)


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
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def savings_usd(self) -> float:
        return self.counterfactual_usd - self.cost_usd


@dataclass
class Group:
    key: str
    sums: list[Any] = field(default_factory=lambda: [0] * len(rollups.SUMS))
    errors: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def add(self, row: Any, status: int, code: str) -> None:
        for i, value in enumerate(row):
            if value:
                self.sums[i] += value
        if status >= 400:
            requests = int(row[0] or 0)
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


_AT = {name: i for i, name in enumerate(rollups.SUMS)}
_LAT0, _TT0 = _AT["hist_0"], _AT["ttft_0"]


def _range(rng: Range, tenant: str | None) -> tuple[Any, list[Any]]:
    source: Any = rollups.ledger_rollups
    where = [R.grain == rng.grain, R.bucket >= rng.since, R.bucket < rng.until]
    if tenant is not None:
        source = source.join(ledger_dims, ledger_dims.c.id == R.dim)
        where.append(ledger_dims.c.tenant == tenant)
    return source, where


def series(conn: sa.Connection, rng: Range, tenant: str | None = None) -> list[Point]:
    """One point per bucket of the range (empty buckets included)."""
    source, where = _range(rng, tenant)
    errors = sa.func.sum(sa.case((R.status >= 400, R.requests), else_=0))
    query = (
        sa.select(
            R.bucket,
            sa.func.sum(R.requests),
            errors,
            sa.func.sum(R.prompt_tokens),
            sa.func.sum(R.completion_tokens),
            sa.func.sum(R.reasoning_tokens),
            sa.func.sum(R.cost_usd),
            sa.func.sum(R.counterfactual_usd),
        )
        .select_from(source)
        .where(*where)
        .group_by(R.bucket)
    )
    found = {
        int(r[0]): Point(int(r[0]), int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0),
                         float(r[6] or 0.0), float(r[7] or 0.0))
        for r in conn.execute(query)
    }  # fmt: skip
    return [found.get(b) or Point(b) for b in rng.buckets]


def rows(conn: sa.Connection, rng: Range, tenant: str | None = None) -> list[tuple[int, int, str, list[Any]]]:
    """(dim, status, error_code, sums in `rollups.SUMS` order) over the range."""
    source, where = _range(rng, tenant)
    sums = [sa.func.sum(R[name]) for name in rollups.SUMS]
    query = sa.select(R.dim, R.status, R.error_code, *sums).select_from(source).where(*where)
    query = query.group_by(R.dim, R.status, R.error_code)
    return [(int(r[0]), int(r[1]), str(r[2]), list(r[3:])) for r in conn.execute(query)]


def groups(
    found: Iterable[tuple[int, int, str, list[Any]]],
    dims: dict[int, Dim],
    by: str,
    keep: Callable[[Dim], bool] | None = None,
) -> tuple[list[Group], Group]:
    """The rows merged by a dimension (`dims.GROUPS`), biggest first, and their total."""
    out: dict[str, Group] = {}
    total = Group("total")
    for dim_id, status, code, row in found:
        dim = dims.get(dim_id)
        if dim is None or (keep is not None and not keep(dim)):
            continue
        key = dim.group(by)
        group = out.get(key)
        if group is None:
            group = out[key] = Group(key)
        group.add(row, status, code)
        total.add(row, status, code)
    ordered = sorted(out.values(), key=lambda g: (-g.requests, g.key))
    return ordered, total


def totals(conn: sa.Connection, cache: DimsCache, rng: Range, tenant: str | None = None) -> Group:
    return groups(rows(conn, rng, tenant), cache.refresh(conn), "tenant")[1]


def journal_pending(conn: sa.Connection) -> int:
    """Requests accepted by the ledger process and not filed yet (not in any rollup): the journal's rows."""
    if not sa.inspect(conn).has_table("ledger_journal"):
        return 0
    got = conn.exec_driver_sql("SELECT COALESCE(SUM(row_count), 0) FROM ledger_journal").scalar()
    return int(got or 0)
