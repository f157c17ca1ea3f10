"""What `MeterStage.after` hands to the writer, and the ledger row the writer makes of it.

`snapshot(ctx)` copies the context's scalar fields and keeps references to the output text and the
request messages (not joined, not counted): the expensive part, counting and pricing, is `to_row`'s, on
the writer thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import Usage

#: longest string kept per column (a request id or model name longer than this is cut, never refused)
_LIMITS = {
    "request_id": 128,
    "tenant": 64,
    "key_id": 64,
    "protocol": 16,
    "layer": 16,
    "backend": 64,
    "engine": 32,
    "model": 256,
    "error_code": 64,
    "finish_reason": 32,
    "reasoning_policy": 32,
}


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


def new_id() -> str:
    return os.urandom(16).hex()


def base_row(p: Pending) -> dict[str, Any]:
    """The row's columns that need no counting or pricing."""
    when = datetime.fromtimestamp(p.received_at, UTC)
    row: dict[str, Any] = {
        "id": new_id(),
        "request_id": p.request_id,
        "received_at": when,
        "day": when.date(),
        "tenant": p.tenant,
        "key_id": p.key_id,
        "protocol": p.protocol,
        "layer": p.layer,
        "backend": p.backend,
        "engine": p.engine,
        "model": p.model,
        "stream": p.stream,
        "status": p.status,
        "error_code": p.error_code,
        "finish_reason": p.finish_reason,
        "client_disconnected": p.client_disconnected,
        "reasoning_policy": p.reasoning_policy,
        "latency_s": p.latency_s,
        "ttft_s": p.ttft_s,
        "attempts": len(p.attempts),
        "fallbacks": max(0, len(p.attempts) - 1),
        "attempt_log": [
            {"backend": a.backend, "outcome": a.outcome, "latency_s": round(a.latency_s, 6)} for a in p.attempts
        ]
        or None,
    }
    for key, limit in _LIMITS.items():
        value = row[key]
        if isinstance(value, str) and len(value) > limit:
            row[key] = value[:limit]
    return row
