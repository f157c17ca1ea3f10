"""Ledger rollups: per-minute, per-hour and per-day sums of `ledger_rows`, kept in the transaction that
files the rows, so that a dashboard never scans a million rows to draw a chart and never drifts from them.

    new = unfiled(conn, values)            before the INSERT: the rows of a batch not in ledger_rows yet
    add(conn, new, ids, columns)           their sums added to `ledger_rollups` (one upsert per bucket)
    percentile(hist, q)                    a latency percentile from a summed histogram

One row of `ledger_rollups` per (grain, bucket, dim, status, error_code): `grain` is the bucket's width
in seconds (60, 3600, 86400; UTC), `bucket` its start (POSIX seconds), `dim` the `ledger_dims` id (tenant,
key, layer, backend, model...), `error_code` '' for none. It holds counts and sums (requests, tokens,
costs, fallbacks, latencies) and two histograms, latency and time to first token, in 42 buckets whose
upper bounds grow by a factor of sqrt(2) from 0.5 ms to 524 s (`BOUNDS_S`; `hist_<i>` and `ttft_<i>`).
A percentile read from them is exact to the bucket, and interpolated inside it (log-linearly): within
a fraction of a bucket's width (at most 41% apart, typically a few percent). Sums in columns rather
than a blob so that the upsert is one SQL statement that both SQLite and PostgreSQL apply atomically
(`ON CONFLICT ... DO UPDATE SET x = x + excluded.x`): concurrent filers cannot lose an update.

Minute rows are kept for `MINUTE_KEEP_S` (two days): enough for "the last hour" and "today" charts; hour
and day rows are kept as long as the ledger. A batch that comes twice (the ledger process died after
journaling it, and the gateway sent it again) is filed once, and counted once: `unfiled` looks up the
batch's ids first (one range query per writer process, answered from the primary key). Existing ledgers
are summed once by `owstack console rebuild-rollups` (`rollup_build.rebuild`; migration 0008 runs it).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

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
KEY = ("grain", "bucket", "dim", "status", "error_code")
#: the summed columns, in the order of an accumulator list
SUMS = (
    "requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "estimated",
    "disconnected", "fallbacks", "uncosted", "cost_usd", "capital_usd", "counterfactual_usd",
    "latency_n", "latency_sum_s", "ttft_n", "ttft_sum_s", *HIST, *TTFT,
)  # fmt: skip
_FLOATS = frozenset({"cost_usd", "capital_usd", "counterfactual_usd", "latency_sum_s", "ttft_sum_s"})
_AT = {name: i for i, name in enumerate(SUMS)}
_HIST0, _TTFT0 = _AT["hist_0"], _AT["ttft_0"]


def _sum_column(name: str) -> sa.Column[Any]:
    kind: Any = sa.Double if name in _FLOATS else sa.BigInteger
    return sa.Column(name, kind, nullable=False, server_default="0")


ledger_rollups = sa.Table(
    "ledger_rollups",
    metadata,
    sa.Column("grain", sa.Integer, primary_key=True),
    sa.Column("bucket", sa.BigInteger, primary_key=True),
    sa.Column("dim", sa.Integer, primary_key=True),
    sa.Column("status", sa.SmallInteger, primary_key=True),
    sa.Column("error_code", sa.String(64), primary_key=True),
    *(_sum_column(name) for name in SUMS),
)


# filing ----------------------------------------------------------------------------------------------------


def unfiled(conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
    """The rows of `values` (`record.row_values` tuples, the id first) whose id is not in ledger_rows yet.

    Ids are a writer process's prefix (the high 32 bits) and a counter, so one batch spans one short id
    range per process: one range query each, which finds nothing unless the batch was filed before."""
    if not values:
        return values
    ranges: dict[int, list[int]] = {}
    for v in values:
        try:
            ident = int(v[0])
        except (TypeError, ValueError):  # not an id the table can hold: the INSERT will say so
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
    if not found:
        return values
    return [v for v in values if _id(v[0]) not in found]


def _id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=4)
def _positions(columns: tuple[str, ...]) -> tuple[int, ...]:
    names = ("received_at", "dim", "status", "error_code", "client_disconnected", "prompt_tokens",
             "completion_tokens", "reasoning_tokens", "cached_tokens", "tokens_estimated", "latency_s", "ttft_s",
             "attempts", "cost_usd", "capital_usd", "counterfactual_usd")  # fmt: skip
    return tuple(columns.index(n) for n in names)


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration (0 .. NBUCKETS - 1)."""
    return bisect.bisect_left(BOUNDS_S, seconds)


def aggregate(
    values: Iterable[tuple[Any, ...]], ids: Mapping[Any, int], columns: tuple[str, ...], *, now: float | None = None
) -> dict[tuple[int, int, int, int, str], list[Any]]:
    """Sums per (grain, bucket, dim, status, error_code) of `values` (received_at as POSIX seconds; `dim` an
    id, or a key tuple that `ids` maps to one). A row whose values are not numbers is left out (the database
    refuses it anyway, or the caller's rebuild will count what the database kept)."""
    (t_at, d_at, s_at, e_at, disc_at, p_at, c_at, r_at, ca_at, est_at, lat_at, tt_at, att_at, cost_at, cap_at,
     cf_at) = _positions(columns)  # fmt: skip
    width = len(SUMS)
    minutes: dict[tuple[int, int, int, str], list[Any]] = {}
    skip_minutes_before = (time.time() if now is None else now) - MINUTE_KEEP_S
    old: dict[tuple[int, int, int, str], list[Any]] = {}  # rows too old for minute rows: hour buckets
    for v in values:
        try:
            ts = float(v[t_at])
            dim = v[d_at]
            if type(dim) is not int:
                dim = ids[dim]
            code = v[e_at] or ""
            if ts >= skip_minutes_before:
                key = (int(ts // MINUTE) * MINUTE, dim, int(v[s_at]), code)
                acc = minutes.get(key)
                if acc is None:
                    acc = minutes[key] = [0] * width
            else:
                key = (int(ts // HOUR) * HOUR, dim, int(v[s_at]), code)
                acc = old.get(key)
                if acc is None:
                    acc = old[key] = [0] * width
            _add_row(acc, v, p_at, c_at, r_at, ca_at, est_at, disc_at, att_at, cost_at, cap_at, cf_at, lat_at, tt_at)
        except (TypeError, ValueError, KeyError, IndexError):
            continue
    out: dict[tuple[int, int, int, int, str], list[Any]] = {(MINUTE, *k): acc for k, acc in minutes.items()}
    for source, grains in ((minutes, (HOUR, DAY)), (old, (HOUR, DAY))):
        for (start, dim, status, code), acc in source.items():
            for grain in grains:
                key5 = (grain, start - start % grain, dim, status, code)
                into = out.get(key5)
                if into is None:
                    out[key5] = list(acc)
                else:
                    for i, x in enumerate(acc):
                        if x:
                            into[i] += x
    return out


def _add_row(acc: list[Any], v: tuple[Any, ...], *at: int) -> None:
    p_at, c_at, r_at, ca_at, est_at, disc_at, att_at, cost_at, cap_at, cf_at, lat_at, tt_at = at
    acc[0] += 1
    acc[1] += int(v[p_at])
    acc[2] += int(v[c_at])
    acc[3] += int(v[r_at])
    acc[4] += int(v[ca_at])
    if v[est_at]:
        acc[5] += 1
    if v[disc_at]:
        acc[6] += 1
    attempts = v[att_at]
    if attempts and attempts > 1:
        acc[7] += int(attempts) - 1
    cost = v[cost_at]
    if cost is None:
        acc[8] += 1
    else:
        acc[9] += float(cost)
    if v[cap_at] is not None:
        acc[10] += float(v[cap_at])
    if v[cf_at] is not None:
        acc[11] += float(v[cf_at])
    latency = v[lat_at]
    if latency is not None:
        latency = float(latency)
        acc[12] += 1
        acc[13] += latency
        acc[_HIST0 + bisect.bisect_left(BOUNDS_S, latency)] += 1
    ttft = v[tt_at]
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


#: the hour (POSIX hours) of the last minute-row pruning, per database URL
_pruned: dict[str, int] = {}


def add(
    conn: sa.Connection,
    values: Sequence[tuple[Any, ...]],
    ids: Mapping[Any, int],
    columns: tuple[str, ...],
    *,
    now: float | None = None,
) -> int:
    """Add the sums of `values` to `ledger_rollups` on `conn`, in the caller's transaction; once an hour
    (per process and database) delete minute rows past `MINUTE_KEEP_S`. Returns the rollup rows touched."""
    if not values:
        return 0
    now = time.time() if now is None else now
    sums = aggregate(values, ids, columns, now=now)
    upsert(conn, sums)
    hour, where = int(now // HOUR), str(conn.engine.url)
    if _pruned.get(where) != hour:
        prune(conn, now)
        _pruned[where] = hour
    return len(sums)


def upsert(conn: sa.Connection, sums: Mapping[tuple[int, int, int, int, str], Sequence[Any]]) -> None:
    """Add `aggregate`'s sums to the table: one executemany of one upsert statement."""
    if sums:
        params = [(*key, *acc) for key, acc in sums.items()]
        conn.exec_driver_sql(_upsert_sql(conn.dialect.name), params)


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
