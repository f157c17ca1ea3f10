"""Ledger rollups: per-minute, per-hour and per-day sums of `ledger_rows`, kept in the transaction that
files the rows, so that a dashboard never scans a million rows to draw a chart and never drifts from them.

    new = unfiled(conn, values)                     before the INSERT: the batch's rows not filed yet
    add(conn, new, ROW_COLUMNS, DIM_COLUMNS)        their sums added to `ledger_rollups` (one upsert statement)
    percentile(hist, q)                             a latency percentile from a summed histogram

One row of `ledger_rollups` per (grain, bucket, tenant, layer, backend, model, status, error_code): `grain`
is the bucket's width in seconds (60, 3600, 86400; UTC), `bucket` its start (POSIX seconds), '' stands for
a missing layer, backend, model or error code. The key holds what the console groups by, not the ledger's
whole dimension row (key id, protocol, stream, finish reason ... multiply the combinations tenfold and more,
and a rollup that has nearly as many rows as the ledger saves nothing). Each row holds counts and sums
(requests, tokens, costs, fallbacks, latencies) and two histograms, latency and time to first token, in 42
buckets whose upper bounds grow by sqrt(2) from 0.5 ms to 524 s (`BOUNDS_S`; `hist_<i>`, `ttft_<i>`): a
percentile read from them is exact to the bucket and interpolated inside it. Sums are columns, not a blob,
so that the upsert is one statement both SQLite and PostgreSQL apply atomically (`ON CONFLICT ... DO UPDATE
SET x = x + excluded.x`): concurrent filers cannot lose an update.

Minute rows are kept for `MINUTE_KEEP_S` (two days); hour and day rows as long as the ledger. A batch that
comes twice (the ledger process died after journaling it, and the gateway sent it again) is filed once
and counted once: `unfiled` looks its ids up first (one range query per writer process, on the primary
key). Existing ledgers are summed by `rollup_build.rebuild` (migration 0008, `owstack console
rebuild-rollups`).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from owstack.metering.columns import BY_NAME
from owstack.storage.schema import metadata

GRAINS: tuple[int, ...] = (60, 3600, 86400)
MINUTE, HOUR, DAY = GRAINS
#: minute rows older than this (by the wall clock) are not written, and are deleted once an hour
MINUTE_KEEP_S = 2 * 86400
#: upper bounds (seconds) of the histogram buckets; one more bucket takes everything above the last
BOUNDS_S: tuple[float, ...] = tuple(0.0005 * 2 ** (k / 2) for k in range(41))
NBUCKETS = len(BOUNDS_S) + 1
HIST = tuple(f"hist_{i}" for i in range(NBUCKETS))
TTFT = tuple(f"ttft_{i}" for i in range(NBUCKETS))
#: the grouping columns and their lengths (ledger_dims')
GROUPING: tuple[tuple[str, int], ...] = tuple((n, BY_NAME[n].length) for n in ("tenant", "layer", "backend", "model"))
KEY = ("grain", "bucket", *(name for name, _ in GROUPING), "status", "error_code")
#: the summed columns, in the order of an accumulator list
SUMS = (
    "requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "estimated",
    "disconnected", "fallbacks", "uncosted", "cost_usd", "capital_usd", "counterfactual_usd",
    "latency_n", "latency_sum_s", "ttft_n", "ttft_sum_s", *HIST, *TTFT,
)  # fmt: skip
_FLOATS = frozenset({"cost_usd", "capital_usd", "counterfactual_usd", "latency_sum_s", "ttft_sum_s"})
_HIST0, _TTFT0 = SUMS.index("hist_0"), SUMS.index("ttft_0")
#: what `aggregate` reads from each row, in this order: the time, the grouping values as one tuple
#: (`group_of`), then these ledger columns (`add` and the rebuild make rows of this shape)
FIELDS = (
    "received_at", "group", "status", "error_code", "client_disconnected", "prompt_tokens", "completion_tokens",
    "reasoning_tokens", "cached_tokens", "tokens_estimated", "latency_s", "ttft_s", "attempts", "cost_usd",
    "capital_usd", "counterfactual_usd",
)  # fmt: skip
_ROW = FIELDS[2:]  # read from a ledger row as they are


def _sum_column(name: str) -> sa.Column[Any]:
    kind: Any = sa.Double if name in _FLOATS else sa.BigInteger
    return sa.Column(name, kind, nullable=False, server_default="0")


ledger_rollups = sa.Table(
    "ledger_rollups",
    metadata,
    sa.Column("grain", sa.Integer, primary_key=True),
    sa.Column("bucket", sa.BigInteger, primary_key=True),
    *(sa.Column(name, sa.String(length), primary_key=True) for name, length in GROUPING),
    sa.Column("status", sa.SmallInteger, primary_key=True),
    sa.Column("error_code", sa.String(64), primary_key=True),
    *(_sum_column(name) for name in SUMS),
)

Key = tuple[int, int, str, str, str, str, int, str]


# filing ----------------------------------------------------------------------------------------------------


def _id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def unfiled(conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
    """The rows of `values` (`record.row_values` tuples, the id first) whose id is not in ledger_rows yet.

    Ids are a writer process's prefix (the high 32 bits) and a counter, so one batch spans one short id
    range per process: one range query each, which finds nothing unless the batch was filed before."""
    ranges: dict[int, list[int]] = {}
    for v in values:
        ident = _id(v[0])
        if ident is None:  # not an id the table can hold: the INSERT will say so
            continue
        span = ranges.get(ident >> 32)
        if span is None:
            ranges[ident >> 32] = [ident, ident]
        elif ident < span[0]:
            span[0] = ident
        elif ident > span[1]:
            span[1] = ident
    found: set[int] = set()
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"SELECT id FROM ledger_rows WHERE id >= {mark} AND id <= {mark}"
    for low, high in ranges.values():
        found.update(row[0] for row in conn.exec_driver_sql(sql, (low, high)))
    return [v for v in values if _id(v[0]) not in found] if found else values


@lru_cache(maxsize=4)
def _positions(columns: tuple[str, ...], dim_columns: tuple[str, ...]) -> tuple[int, int, Any, Any]:
    """Where `received_at` and `dim` are in a ledger row; getters of the grouping values in a dims key and of
    the summed columns in a ledger row."""
    in_key = itemgetter(*(dim_columns.index(name) for name, _ in GROUPING))
    return columns.index("received_at"), columns.index("dim"), in_key, itemgetter(*(columns.index(n) for n in _ROW))


def group_of(values: Sequence[Any]) -> tuple[str, ...]:
    """The grouping values as the rollup key holds them: text, '' for none, cut to the column's length."""
    return tuple("" if v is None else str(v)[:limit] for v, (_, limit) in zip(values, GROUPING, strict=True))


#: (database URL, ledger_dims id) -> its grouping values, for rows that carry a dims id rather than its key
_dims: dict[tuple[str, int], tuple[str, ...]] = {}


def _grouping_of_ids(conn: sa.Connection, ids: set[int]) -> dict[int, tuple[str, ...]]:
    where = str(conn.engine.url)
    missing = [i for i in ids if (where, i) not in _dims]
    if missing:
        if len(_dims) > 50_000:
            _dims.clear()
        d = sa.table("ledger_dims", *(sa.column(n) for n in ("id", *(name for name, _ in GROUPING))))
        for row in conn.execute(sa.select(d).where(d.c.id.in_(missing))):
            _dims[(where, int(row[0]))] = group_of(row[1:])
    return {i: _dims.get((where, i), group_of((None,) * len(GROUPING))) for i in ids}


def shaped(
    conn: sa.Connection, values: Sequence[tuple[Any, ...]], columns: tuple[str, ...], dim_columns: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """Ledger rows (`record.row_values` order, `dim` a key tuple or a ledger_dims id) as FIELDS tuples."""
    ts_at, dim_at, in_key, summed = _positions(columns, dim_columns)
    ids = {v[dim_at] for v in values if type(v[dim_at]) is int}
    groups: dict[Any, tuple[str, ...]] = _grouping_of_ids(conn, ids) if ids else {}
    out = []
    for v in values:
        dim = v[dim_at]
        group = groups.get(dim)
        if group is None:
            if type(dim) is not tuple:
                continue
            group = groups[dim] = group_of(in_key(dim))
        out.append((v[ts_at], group, *summed(v)))
    return out


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration (0 .. NBUCKETS - 1)."""
    return bisect.bisect_left(BOUNDS_S, seconds)


def aggregate(rows: Iterable[Sequence[Any]], *, now: float | None = None) -> dict[Key, list[Any]]:
    """Sums per rollup key of `rows` (FIELDS order, received_at as POSIX seconds). A row whose values are not
    numbers is left out (the database refuses it anyway; a rebuild counts what the database kept)."""
    width = len(SUMS)
    skip_minutes_before = (time.time() if now is None else now) - MINUTE_KEEP_S
    fine: dict[tuple[Any, ...], list[Any]] = {}  # minute buckets, or hour buckets for rows too old for minutes
    for r in rows:
        try:
            ts = float(r[0])
            grain = MINUTE if ts >= skip_minutes_before else HOUR
            key = (grain, int(ts // grain) * grain, *r[1], int(r[2]), r[3] or "")
            acc = fine.get(key)
            if acc is None:
                acc = fine[key] = [0] * width
            _add_row(acc, r)
        except (TypeError, ValueError, IndexError):
            continue
    out: dict[Any, list[Any]] = {}
    for key, acc in fine.items():
        grain, start, *rest = key
        if grain == MINUTE:
            out[key] = acc
        for coarser in (HOUR, DAY):
            wider = (coarser, start - start % coarser, *rest)
            into = out.get(wider)
            if into is None:
                out[wider] = list(acc)
            else:
                for i, x in enumerate(acc):
                    if x:
                        into[i] += x
    return out


def _add_row(acc: list[Any], r: Sequence[Any]) -> None:
    disconnected, prompt, completion, reasoning, cached, estimated, latency, ttft, attempts = r[4:13]
    cost, capital, counterfactual = r[13:16]
    acc[0] += 1
    acc[1] += int(prompt)
    acc[2] += int(completion)
    acc[3] += int(reasoning)
    acc[4] += int(cached)
    if estimated:
        acc[5] += 1
    if disconnected:
        acc[6] += 1
    if attempts and attempts > 1:
        acc[7] += int(attempts) - 1
    if cost is None:
        acc[8] += 1
    else:
        acc[9] += float(cost)
    if capital is not None:
        acc[10] += float(capital)
    if counterfactual is not None:
        acc[11] += float(counterfactual)
    if latency is not None:
        latency = float(latency)
        acc[12] += 1
        acc[13] += latency
        acc[_HIST0 + bisect.bisect_left(BOUNDS_S, latency)] += 1
    if ttft is not None:
        ttft = float(ttft)
        acc[14] += 1
        acc[15] += ttft
        acc[_TTFT0 + bisect.bisect_left(BOUNDS_S, ttft)] += 1


@lru_cache(maxsize=2)
def _upsert_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    names = (*KEY, *SUMS)
    updates = ", ".join(f"{n} = ledger_rollups.{n} + excluded.{n}" for n in SUMS)
    return (
        f"INSERT INTO ledger_rollups ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))}) "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {updates}"
    )


def upsert(conn: sa.Connection, sums: Mapping[Key, Sequence[Any]]) -> None:
    """Add `aggregate`'s sums to the table: one executemany of one upsert statement."""
    if sums:
        conn.exec_driver_sql(_upsert_sql(conn.dialect.name), [(*key, *acc) for key, acc in sums.items()])


#: the hour (POSIX hours) of the last minute-row pruning, per database URL
_pruned: dict[str, int] = {}


def add(
    conn: sa.Connection,
    values: Sequence[tuple[Any, ...]],
    columns: tuple[str, ...],
    dim_columns: tuple[str, ...],
    *,
    now: float | None = None,
) -> int:
    """Add the sums of ledger rows `values` to `ledger_rollups` on `conn`, in the caller's transaction; once an
    hour (per process and database) delete minute rows past `MINUTE_KEEP_S`. Returns the rollup rows touched."""
    if not values:
        return 0
    now = time.time() if now is None else now
    sums = aggregate(shaped(conn, values, columns, dim_columns), now=now)
    upsert(conn, sums)
    hour, where = int(now // HOUR), str(conn.engine.url)
    if _pruned.get(where) != hour:
        prune(conn, now)
        _pruned[where] = hour
    return len(sums)


def prune(conn: sa.Connection, now: float) -> None:
    """Delete minute rows older than `MINUTE_KEEP_S`."""
    r = ledger_rollups.c
    cutoff = int(now - MINUTE_KEEP_S) // MINUTE * MINUTE
    conn.execute(ledger_rollups.delete().where(r.grain == MINUTE, r.bucket < cutoff))


# reading ---------------------------------------------------------------------------------------------------


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The `q` quantile (0..1, nearest rank) of a histogram over `BOUNDS_S`, interpolated log-linearly
    inside its bucket; None for an empty histogram."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = max(math.ceil(q * total), 1)
    seen = 0
    for i, n in enumerate(hist):
        if n and seen + n >= rank:
            low = BOUNDS_S[i - 1] if i > 0 else BOUNDS_S[0] / math.sqrt(2)
            high = BOUNDS_S[i] if i < len(BOUNDS_S) else BOUNDS_S[-1] * math.sqrt(2)
            share = (rank - seen - 0.5) / n  # the rank's place among the bucket's n values, at their middles
            return float(low * (high / low) ** share)
        seen += n
    return BOUNDS_S[-1]
