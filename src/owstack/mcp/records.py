"""What every MCP request leaves behind: one hash-chained audit record, a ledger row per tool call, metrics.

The audit record (`mcp.request`) is written with the gateway's own audit writer (the same chain, format and
fsync-before-answer rule as `inference.request`): tenant, key pseudonym, method, server, tool, an HMAC of
the arguments (never the arguments), the result's size, latency, outcome and the content verdicts
(categories and counts, never the text). Pin events (a changed, renamed or poisoned tool definition) are
administrative records `admin.mcp.tool_changed|tool_renamed|tool_poisoned` with both digests and a diff.
A tool call is a ledger row with protocol `mcp`, backend `mcp:<server>` and model `<server>.<tool>` (no
tokens, no cost), so `owstack usage --by tenant|model` counts tool calls beside model requests and
`owstack mcp usage` lists them alone, per tenant and tool.

Durable before the answer, as on `/v1`: with the audit log on, a tool call's ledger record rides in its
`mcp.request` audit record (a `ledger` member with the row's id: one log, one fsync; `metering.audit_journal`
rebuilds the row from the record after a crash); otherwise (no audit log, its writer not taking records, or
the ledger writer's queue full) it is appended to the ledger's write-ahead log (`MeterStage.record`), whose
fsync rides with the audit writer's commit (`storage.durable`), and a record the log cannot take fails the
call closed (`ledger_unavailable`, -32067). Either way the answer waits for it, and a kill -9 loses no
answered call's row: the next start replays the audit log or the write-ahead log (`metering.recovery`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from owstack.compliance import chain
from owstack.errors import RateLimited, ServiceUnavailable
from owstack.mcp.content import Verdict
from owstack.mcp.metrics import McpMetrics
from owstack.metering.audit_journal import MCP_REQUEST, NOTE
from owstack.metering.record import Pending, new_id
from owstack.storage.durable import ride
from owstack.types import Usage

if TYPE_CHECKING:
    from owstack.compliance.stage import AuditStage
    from owstack.metering.stage import MeterStage
    from owstack.tenancy.limits.stage import LimitStage

log = logging.getLogger("owstack.mcp")
REQUEST = MCP_REQUEST


@dataclass(slots=True)
class McpRequest:
    """One MCP request as the records see it; filled in by the server's handlers."""

    request_id: str
    tenant: str
    key_id: str | None
    client: str | None
    method: str
    app: str | None = None
    #: the edge that served it: lean (owstack.mcp.lean) or sdk
    path: str = "sdk"
    server: str | None = None
    name: str | None = None
    arguments: Any = None
    result_bytes: int = 0
    outcome: str = "ok"
    error_code: str | None = None
    status: int = 200
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    received_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    latency_s: float | None = None

    def fail(self, code: str | None, status: int, *, refused: bool) -> None:
        self.outcome = "refused" if refused else "error"
        self.error_code, self.status = code, status


class Recorder:
    def __init__(
        self,
        metrics: McpMetrics,
        *,
        audit: AuditStage | None = None,
        meter: MeterStage | None = None,
        limit: LimitStage | None = None,
    ) -> None:
        self.metrics = metrics
        self.audit = audit
        self.meter = meter
        self.limit = limit
        #: set when the gateway cuts its requests (the shutdown grace is over, or a reload's is) and when the
        #: endpoint closes: a request cancelled from then on is recorded as cut (503 `shutdown`), not cancelled
        self.cutting = False

    def check_audit(self) -> None:
        """Refuse service while the audit log cannot be written (as `/v1` does)."""
        problem = self.audit.unavailable() if self.audit is not None else None
        if problem is not None:
            raise ServiceUnavailable(f"audit log cannot be written: {problem}", code="audit_unavailable")

    async def admit(self, tenant: str) -> None:
        """The tenant's requests_per_minute applies to MCP requests too (the same bucket as `/v1`)."""
        limit = self.limit
        rule = limit.rules.get(tenant) if limit is not None else None
        if limit is None or rule is None or not rule.rpm:
            return
        from owstack.tenancy.limits.bucket import LimiterUnavailable, Rule

        try:
            decision = await limit.limiter.reserve(tenant, Rule(rule.rpm), 0, limit.clock())
        except LimiterUnavailable:
            if limit.section.on_redis_error == "allow":
                return
            raise ServiceUnavailable("rate limits cannot be checked right now", code="limits_unavailable") from None
        if not decision.allowed:
            limit.counters.refused["requests"] += 1
            raise RateLimited(
                f"rate limit: tenant {tenant!r} may send {rule.rpm:,} requests per minute; "
                f"retry in {max(decision.retry_after_s, 0.001):.1f} s"
            )

    async def finish(self, req: McpRequest) -> None:
        """Metrics, ledger (tool calls) and the durable audit record; raises ServiceUnavailable when the
        record cannot be written (the response is then an error, never an unrecorded success)."""
        req.latency_s = time.perf_counter() - req.started
        self.metrics.request(req.tenant, req.method, req.outcome, req.path)
        for verdict in req.verdicts.values():
            self.metrics.finding(req.tenant, verdict.categories)
        durable = None
        row: dict[str, Any] | None = None
        audit = self.audit
        if req.method == "tools/call":
            self.metrics.call(req.tenant, req.server, req.outcome, req.latency_s)
            row = self._journaled(req)
            if row is None:
                durable = self._ledger(req)
        failure: ServiceUnavailable | None = None
        if audit is not None and audit.log is not None and audit.log.started:
            writer = audit.log.writer()
            if durable is not None and self.meter is not None and self.meter.writer is not None:
                ride(self.meter.writer.wal, writer)  # the log's record is committed with the audit record
            record = self._record(req)
            if row is not None:
                record[NOTE] = row
            try:
                await writer.append(record)
            except Exception as exc:
                log.error("mcp: audit record of %s not written: %s", req.request_id, exc)
                failure = ServiceUnavailable(f"audit log cannot be written: {exc}", code="audit_unavailable")
            except BaseException:  # cancelled meanwhile (the client left): nobody waits for the log's future now
                if durable is not None:
                    durable.add_done_callback(_retrieved)
                raise
        if durable is not None:  # its fsync ran beside the audit record's: usually done by now
            try:
                await durable
            except Exception as exc:  # WalUnavailable: fail closed, never an unrecorded success
                from owstack.metering.stage import unrecorded

                log.error("mcp: ledger record of %s not written: %s", req.request_id, exc)
                failure = failure or unrecorded(exc)
        if failure is not None:
            raise failure

    def _journaled(self, req: McpRequest) -> dict[str, Any] | None:
        """The `ledger` member of the call's audit record when that record carries its ledger record (as the
        meter stage does for `/v1`: the audit log journals the ledger's, `metering.audit_journal`), the
        record then queued for the database with no log of its own; None when it goes to the write-ahead
        log instead. Queued right before the audit record is appended, with nothing awaited between, so that
        both keep one order (the replay relies on it)."""
        meter, audit = self.meter, self.audit
        if meter is None or audit is None or meter.journal is not audit or not audit.journals:
            return None
        writer = meter.writer
        if writer is None or not writer.accepts:
            return None
        try:
            pending = _pending(req)
            writer.submit(pending)
        except Exception:  # a bug here must not turn a served call into an error (as `MeterStage.after`)
            log.exception("mcp: tool call %s could not be metered", req.request_id)
            return None
        return {"row_id": pending.row_id}

    def _ledger(self, req: McpRequest) -> asyncio.Future[None] | None:
        """Hand the tool call's ledger record to the meter: the future is done once it is in the write-ahead
        log (None without one: no ledger, or `metering.durable: false`)."""
        meter = self.meter
        if meter is None:
            return None
        try:
            return meter.record(_pending(req))
        except Exception:  # a bug here must not turn a served call into an error (as `MeterStage.after`)
            log.exception("mcp: tool call %s could not be metered", req.request_id)
            return None

    def _record(self, req: McpRequest) -> dict[str, Any]:
        assert self.audit is not None and self.audit.log is not None
        keys, facts = self.audit.log.keys, self.audit.log.facts
        end = req.received_at + (req.latency_s or 0.0)
        args = None if req.arguments is None else keys.hmac(chain.canonical(req.arguments))
        return {
            "type": REQUEST,
            "event_id": req.request_id,
            "time": chain.iso(end),
            "start_time": chain.iso(req.received_at),
            "end_time": chain.iso(end),
            "system": facts.system(),
            "actor": {
                "pseudonym": keys.pseudonym_of("actor", req.key_id or req.client or "anonymous"),
                "tenant": req.tenant,
                "app": req.app,
                "protocol": "mcp",
            },
            "mcp": {
                "method": req.method,
                "server": req.server,
                "tool": req.name if req.method == "tools/call" else None,
                "name_hmac": keys.hmac(req.name.encode()) if req.name and req.method != "tools/call" else None,
                "arguments_hmac": args,
                "result_bytes": req.result_bytes,
                "verdicts": {k: v.as_dict() for k, v in req.verdicts.items()},
            },
            "outcome": {
                "status": req.status,
                "result": req.outcome,
                "error_code": req.error_code,
                "latency_ms": round((req.latency_s or 0.0) * 1000, 3),
            },
            "hashes": {"policy_config": facts.config_hash},
            "retention": facts.retention(req.tenant, end),
            "key_ids": {"pseudonym": keys.pseudonym_id, "content": None},
        }

    async def event(self, kind: str, details: dict[str, Any]) -> None:
        """A pin event: metrics, a warning in the log, and an administrative audit record."""
        self.metrics.pin_event(str(details.get("server")), kind)
        log.warning("mcp: %s: %s (digest %s)", kind, details.get("tool"), str(details.get("digest"))[:12])
        audit = self.audit
        if audit is None or audit.log is None or not audit.log.started:
            return
        from owstack.compliance.service import audit_admin_event_async

        try:
            await audit_admin_event_async(audit.log, f"mcp.{kind}", details, actor="owstack-gateway")
        except Exception as exc:
            log.error("mcp: audit record of %s not written: %s", kind, exc)


def _retrieved(future: asyncio.Future[None]) -> None:
    """Take a failure nobody awaits (the log itself logged it), so that asyncio does not report it again."""
    if not future.cancelled():
        future.exception()


def _pending(req: McpRequest) -> Pending:
    """The tool call's ledger record, with its row id given now: the write-ahead log keeps it, so a replayed
    record that had reached the database already is recognised there (no second row)."""
    return Pending(
        req.request_id, req.received_at, req.tenant, req.key_id, "mcp", None,
        f"mcp:{req.server}" if req.server else None, "mcp", req.name, False, req.status, req.error_code,
        None, False, None, Usage(reported=True), req.latency_s, None, [], [], None, new_id(),
    )  # fmt: skip
