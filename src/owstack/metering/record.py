"""What `MeterStage.after` hands to the writer, and the ledger row the writer makes of it.

`snapshot(ctx)` copies the context's scalar fields and keeps references to the output text and the
request messages (not joined, not counted): the expensive part, counting and pricing, is the writer's
(`LedgerWriter._rows`, then `row_values`), on its own thread; the SQL in the ledger's process (`sink`).

The layouts are `columns.py`'s: `row_values` makes `ROW_COLUMNS` tuples, `wal_payload` writes `WAL_FIELDS`.
Both spell their tuple out, one value after another, because they run once per request (an `attrgetter`
over the definition costs the event loop half a microsecond more per request); `from_wal` reads by name,
and tests/metering/test_columns.py checks every position of both against the definition.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import orjson

from owstack.metering.columns import WAL_FIELDS
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
    #: the ledger row's id, given once (a record replayed from the write-ahead log keeps it: no duplicate)
    row_id: int = 0
    #: its sequence number in the write-ahead log (0: not logged)
    seq: int = 0
    #: the usage holds estimated counts (a record replayed from the log: its text was not kept)
    estimated: bool = False


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
        new_id(),
    )


#: the layout of a record in the write-ahead log (`wal_payload`): this number, then `WAL_FIELDS` (the
#: attempts themselves at `attempts`); bump it when that list changes
WAL_FORMAT = 1
_WAL_AT = {name: i for i, name in enumerate(WAL_FIELDS, start=1)}


def wal_payload(p: Pending) -> bytes:
    """The record as the write-ahead log keeps it: `WAL_FORMAT`, then its `WAL_FIELDS` as a JSON list, never
    the prompt or the output (a record without usage from the upstream keeps an estimate of its tokens
    instead, 4 characters each)."""
    u = p.usage
    prompt, completion, estimated = u.prompt_tokens, u.completion_tokens, p.estimated
    if not u.reported and not (prompt or completion) and (p.output_text or p.messages):
        from owstack.metering.tokens import Estimate

        counter = Estimate()
        prompt, completion, estimated = counter.prompt(p.messages or []), counter.text("".join(p.output_text)), True
    return orjson.dumps(
        [
            WAL_FORMAT, p.row_id, p.request_id, p.received_at, p.tenant, p.key_id, p.protocol, p.layer,
            p.backend, p.engine, p.model, p.stream, p.status, p.error_code, p.finish_reason,
            p.client_disconnected, p.reasoning_policy, prompt, completion, u.reasoning_tokens, u.cached_tokens,
            u.reported, estimated, p.latency_s, p.ttft_s, [[a.backend, a.outcome, a.latency_s] for a in p.attempts],
        ]
    )  # fmt: skip


def from_wal(payload: bytes) -> Pending:
    """A record back from the write-ahead log (ValueError for anything else)."""
    v = orjson.loads(payload)
    if not isinstance(v, list) or len(v) != len(WAL_FIELDS) + 1 or v[0] != WAL_FORMAT:
        raise ValueError("not a ledger record of this format")
    f = {name: v[i] for name, i in _WAL_AT.items()}
    usage = Usage(
        f["prompt_tokens"], f["completion_tokens"], f["reasoning_tokens"], f["cached_tokens"], f["tokens_reported"]
    )
    return Pending(
        f["request_id"], f["received_at"], f["tenant"], f["key_id"], f["protocol"], f["layer"], f["backend"],
        f["engine"], f["model"], f["stream"], f["status"], f["error_code"], f["finish_reason"],
        f["client_disconnected"], f["reasoning_policy"], usage, f["latency_s"], f["ttft_s"],
        [Attempt(b, o, lat) for b, o, lat in f["attempts"]], [], None,
        row_id=f["id"], estimated=f["tokens_estimated"],
    )  # fmt: skip


def busy_seconds(p: Pending) -> float | None:
    """The request's time on its final backend: the latency minus the failed attempts before it."""
    latency, attempts = p.latency_s, p.attempts
    if latency is None or len(attempts) < 2:
        return latency
    failed = sum(a.latency_s for a in attempts[:-1])
    return max(latency - failed, 0.0)


_ID_PREFIX = int.from_bytes(os.urandom(4), "big") >> 1 << 32  # per process: ids unique across processes
_ID_COUNTER = itertools.count()


def new_id() -> int:
    """A unique 63-bit row id without a system call per row (a random per-process prefix and a counter)."""
    return _ID_PREFIX + next(_ID_COUNTER)


_log_prefix: dict[tuple[str, str], str] = {}


def _attempt_log(attempts: list[Attempt]) -> str:
    """`attempt_log` as JSON text, `[{"backend", "outcome", "latency_s"}, ...]` with the latency in seconds to
    the microsecond; the (backend, outcome) part of each entry is encoded once per process."""
    parts = []
    for a in attempts:
        key = (a.backend, a.outcome)
        prefix = _log_prefix.get(key)
        if prefix is None:
            if len(_log_prefix) > 1024:
                _log_prefix.clear()
            head = json.dumps({"backend": a.backend, "outcome": a.outcome}, separators=(",", ":"))
            prefix = _log_prefix[key] = head[:-1] + ',"latency_s":'
        parts.append(f"{prefix}{a.latency_s:.6f}}}")
    return f"[{parts[0]}]" if len(parts) == 1 else "[" + ",".join(parts) + "]"


def row_values(
    p: Pending,
    tokens: tuple[int, int, int, int],
    estimated: bool,
    costs: tuple[Any, ...],
    dims: dict[tuple[Any, ...], int] | None = None,
) -> tuple[Any, ...]:
    """The ledger row of one record as a tuple in `columns.ROW_COLUMNS` order: the writer's fast path, plain
    values only (received_at as the POSIX timestamp; `ledger.insert_values` converts it for the dialect).
    `costs` in `costs.Costs` order. At `dim`, the id from `dims` (the ledger's cache), or the
    `columns.DIM_COLUMNS` key tuple when it is not cached yet (the ledger interns it as it writes)."""
    cost_usd, cost_kind, capital_usd, utilization, counterfactual_usd, counterfactual_model = costs
    key = (
        p.tenant, p.key_id, p.protocol, p.layer, p.backend, p.engine, p.model, p.stream, p.finish_reason,
        p.reasoning_policy, cost_kind, counterfactual_model,
    )  # fmt: skip
    dim = dims.get(key, key) if dims is not None else key
    request_id, error = p.request_id, p.error_code
    if len(request_id) > 128:
        request_id = request_id[:128]
    if error is not None and len(error) > 64:
        error = error[:64]
    attempts = p.attempts
    log = _attempt_log(attempts) if attempts else None
    prompt, completion, reasoning, cached = tokens
    return (
        p.row_id or new_id(), request_id, p.received_at, dim, p.status, error, p.client_disconnected,
        prompt, completion, reasoning, cached, p.usage.reported, estimated,
        p.latency_s, p.ttft_s, len(attempts), log, cost_usd, capital_usd, utilization, counterfactual_usd,
    )  # fmt: skip
