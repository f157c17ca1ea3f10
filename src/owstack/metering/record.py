"""What `MeterStage.after` hands to the writer, and the ledger row the writer makes of it.

`snapshot(ctx)` copies the context's scalar fields and keeps references to the output text and the
request messages (not joined, not counted): the expensive part, counting and pricing, is the writer's
(`LedgerWriter._build`, then `row_values`), on its own thread.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import Usage


@dataclass(slots=True)
class Pending:
    request_id: str
    received_at: float
    tenant: str
    key_id: str | None
    protocol: str
    layer: str | None
    backend: str | None
    engine: str | None
    model: str | None
    stream: bool
    status: int
    error_code: str | None
    finish_reason: str | None
    client_disconnected: bool
    reasoning_policy: str | None
    usage: Usage
    latency_s: float | None
    ttft_s: float | None
    attempts: list[Attempt]
    output_text: list[str]
    messages: list[dict[str, Any]] | None


def snapshot(ctx: RequestContext) -> Pending:
    """Take what the ledger needs from `ctx` (final by the time `after` runs): no joins, no counting,
    no I/O. The output text and the messages are kept (by reference) only when the upstream reported
    no usage, for the writer to count."""
    request = ctx.request
    error = ctx.error
    usage = ctx.usage
    started = ctx.started
    finished, first = ctx.finished_at, ctx.first_byte_at
    count = not usage.reported
    return Pending(
        ctx.request_id,
        ctx.received_at,
        ctx.tenant,
        ctx.key_id,
        ctx.protocol,
        ctx.layer,
        ctx.backend,
        ctx.engine,
        ctx.model if ctx.model is not None else (request.model if request is not None else None),
        request.stream if request is not None else False,
        ctx.status,
        error.code if error is not None else None,
        ctx.finish_reason,
        ctx.client_disconnected,
        ctx.reasoning_policy,
        usage,
        None if finished is None else finished - started,
        None if first is None else first - started,
        ctx.attempts,
        ctx.output_text if count else [],
        request.messages if count and request is not None else None,
    )


def busy_seconds(p: Pending) -> float | None:
    """The request's time on its final backend: the latency minus the failed attempts before it."""
    if p.latency_s is None:
        return None
    failed = sum(a.latency_s for a in p.attempts[:-1])
    return max(p.latency_s - failed, 0.0)


_ID_PREFIX = int.from_bytes(os.urandom(4), "big") >> 1 << 32  # per process: ids unique across processes
_ID_COUNTER = itertools.count()


def new_id() -> int:
    """A unique 63-bit row id without a system call per row (a random per-process prefix and a counter)."""
    return _ID_PREFIX + next(_ID_COUNTER)


_second_cache: dict[int, str] = {}


def _sqlite_time(ts: float) -> str:
    """received_at as SQLAlchemy stores it in SQLite, formatting each UTC second once."""
    second = int(ts)
    micro = round((ts - second) * 1_000_000)  # rounded as datetime.fromtimestamp rounds
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    prefix = _second_cache.get(second)
    if prefix is None:
        if len(_second_cache) > 64:
            _second_cache.clear()
        prefix = _second_cache[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return f"{prefix}.{micro:06d}"


def dims_key(p: Pending, costs: Any) -> tuple[Any, ...]:
    """The record's `ledger.DIM_COLUMNS` values: what repeats across requests (interned by the ledger)."""
    return (
        p.tenant, p.key_id, p.protocol, p.layer, p.backend, p.engine, p.model, p.stream, p.finish_reason,
        p.reasoning_policy, costs.cost_kind, costs.counterfactual_model,
    )  # fmt: skip


def row_values(
    p: Pending,
    tokens: tuple[int, int, int, int],
    estimated: bool,
    costs: Any,
    sqlite: bool,
    dims: dict[tuple[Any, ...], int] | None = None,
) -> tuple[Any, ...]:
    """The ledger row of one record as a tuple in `ledger.ROW_COLUMNS` order, ready for the driver: the
    writer's fast path. At `dim`, the id from `dims` (the ledger's cache), or the key tuple when it is
    not cached yet (the ledger interns it when it writes the row)."""
    key = dims_key(p, costs)
    dim = dims.get(key, key) if dims is not None else key
    request_id, error = p.request_id, p.error_code
    if len(request_id) > 128:
        request_id = request_id[:128]
    if error is not None and len(error) > 64:
        error = error[:64]
    attempts = p.attempts
    log = (
        orjson.dumps(
            [{"backend": a.backend, "outcome": a.outcome, "latency_s": round(a.latency_s, 6)} for a in attempts]
        ).decode()
        if attempts
        else None
    )
    usage = p.usage
    prompt, completion, reasoning, cached = tokens
    if sqlite:
        return (
            new_id(), request_id, _sqlite_time(p.received_at), dim, p.status, error, int(p.client_disconnected),
            prompt, completion, reasoning, cached, int(usage.reported), int(estimated),
            p.latency_s, p.ttft_s, len(attempts), log,
            costs.cost_usd, costs.capital_usd, costs.utilization, costs.counterfactual_usd,
        )  # fmt: skip
    return (
        new_id(), request_id, datetime.fromtimestamp(p.received_at, UTC), dim, p.status, error,
        p.client_disconnected, prompt, completion, reasoning, cached, usage.reported, estimated,
        p.latency_s, p.ttft_s, len(attempts), log,
        costs.cost_usd, costs.capital_usd, costs.utilization, costs.counterfactual_usd,
    )  # fmt: skip
