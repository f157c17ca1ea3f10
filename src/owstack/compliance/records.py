"""Building audit records: one per request (`inference.request`) and one per administrative event.

No raw prompt or completion ever enters a record: they are represented by HMAC-SHA256 digests under the
pseudonym key and by token counts. Only when the tenant has `capture_content: true` is the content kept,
and then encrypted under the tenant's content key (see keystore.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from owstack import __version__
from owstack.compliance import chain
from owstack.compliance.facts import ModelFacts, sha256_of
from owstack.compliance.keys import AuditKeys
from owstack.compliance.keystore import ContentKeystore
from owstack.pipeline.context import RequestContext

REQUEST = "inference.request"
#: generation parameters recorded as they are (anything else is left out: it may hold content)
GENERATION_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "reasoning_effort",
    "logprobs",
    "parallel_tool_calls",
)
_GENERATION = frozenset(GENERATION_PARAMS)


@dataclass(frozen=True, slots=True)
class SystemFacts:
    system_id: str
    node: str
    region: str | None
    config_hash: str
    retention_days: int
    legal_hold: bool = False
    legal_hold_tenants: frozenset[str] = frozenset()
    models: dict[str, ModelFacts] = field(default_factory=dict)
    version: str = __version__
    #: the members a request's record shares with others of the same backend, model, tenant and day
    #: (`_shared`): filled as requests come, never compared or hashed
    shared: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def system(self) -> dict[str, Any]:
        """The record's `system` object (shared between records: never mutate it)."""
        return _system(self.system_id, self.version, self.node, self.region)

    def retention(self, tenant: str | None, when: float) -> dict[str, Any]:
        """The record's `retention` object (shared between records of a day: never mutate it)."""
        hold = self.legal_hold or (tenant is not None and tenant in self.legal_hold_tenants)
        return _retention(hold, int(when // 86_400), self.retention_days)


# The parts of a request's record that are the same for many requests are built once and shared by the
# records (which nothing mutates: the writer copies the top level only to add the chain's fields): building
# them anew cost the audit stage a fifth of its time on the event loop (docs/benchmarks.md, issue 14).


@lru_cache(maxsize=8)
def _system(system_id: str, version: str, node: str, region: str | None) -> dict[str, Any]:
    return {"id": system_id, "version": version, "node": node, "region": region}


@lru_cache(maxsize=8)
def _retention(hold: bool, day: int, retention_days: int) -> dict[str, Any]:
    """One per day and class, not per record (the datetime arithmetic and strftime cost the audit stage
    some microseconds a request)."""
    expires = (datetime.fromtimestamp(day * 86_400, UTC) + timedelta(days=retention_days)).strftime("%Y-%m-%d")
    return {
        "class": "legal_hold" if hold else "standard",
        "days": retention_days,
        "expires": expires,
        "legal_hold": hold,
    }


def _hashes(template: str | None, policy: str | None, config_hash: str) -> dict[str, Any]:
    """The record's `hashes`: the prompt template's hash and the policy configuration's (built once per
    `_shared` key)."""
    return {"prompt_template": sha256_of({"template": template, "policy": policy}), "policy_config": config_hash}


_TRANSPARENCY = {
    True: {"ai_disclosure": True, "output_marked": True},
    False: {"ai_disclosure": True, "output_marked": False},
}


def _ms(seconds: float) -> float:
    """`round(seconds * 1000, 3)` (milliseconds to the microsecond), the same float, at half its cost: a
    record has three of them, and `round` with digits goes through a decimal string and back. When the
    microseconds are not within 0.001 of a half (nearly always) the nearest integer of the microseconds is
    the rounding `round` does, and dividing it by 1000 gives the double nearest that decimal, as `round`
    does; otherwise, and for negative, huge or non-finite values, `round` itself
    (tests/compliance/test_stage.py compares the two)."""
    ms = seconds * 1000
    us = ms * 1000.0
    if 0.0 < us < 1e12:  # below 2**40: the product is within 2**-13 of the exact one
        n = round(us)
        if -0.499 < us - n < 0.499:
            return n / 1000
    return round(ms, 3)


def _model(
    model: str | None, layer: str | None, backend: str | None, engine: str | None, m: ModelFacts | None
) -> dict[str, Any]:
    """The record's `model` object (built once per `_shared` key: never mutate it)."""
    return {
        "id": model or (m.model if m else None),
        "layer": layer,
        "backend": backend,
        "engine": engine or (m.engine if m else None),
        "catalog_id": m.catalog_id if m else None,
        "version": m.version if m else None,
        "weights_digest": m.weights_digest if m else None,
        "jurisdiction": m.jurisdiction if m else None,
    }


def _generation(ctx: RequestContext) -> dict[str, Any]:
    req = ctx.request
    if req is None:
        return {}
    params = req.params
    out: dict[str, Any] = {k: v for k, v in params.items() if k in _GENERATION}
    out["stream"] = req.stream
    stop = params.get("stop")
    if stop:
        out["stop_count"] = len(stop) if isinstance(stop, list) else 1
    choice = params.get("tool_choice")
    if isinstance(choice, str):
        out["tool_choice"] = choice
    fmt = params.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("type"), str):
        out["response_format"] = fmt["type"]
    if ctx.reasoning_policy:
        out["reasoning_policy"] = ctx.reasoning_policy
    return out


def _tool_calls(ctx: RequestContext, keys: AuditKeys) -> list[dict[str, Any]]:
    out = []
    for call in ctx.tool_calls:
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        args = fn.get("arguments", call.get("arguments", ""))
        args_bytes = args.encode() if isinstance(args, str) else chain.canonical(args)
        out.append(
            {
                "name": str(fn.get("name") or call.get("name") or ""),
                "target": call.get("target") or call.get("server"),
                "outcome": str(call.get("outcome") or "proposed"),
                "arguments_hmac": keys.hmac(args_bytes),
            }
        )
    return out


def _guardrail(ctx: RequestContext) -> dict[str, Any] | None:
    """Categories and counts only, never the matched values."""
    guard = ctx.notes.get("guard")
    if not isinstance(guard, dict):
        return None
    cats = guard.get("categories")
    counts = {str(k): int(v) for k, v in cats.items() if isinstance(v, int)} if isinstance(cats, dict) else {}
    decision = guard.get("decision")
    return {"decision": str(decision) if decision is not None else None, "categories": counts}


def _shared(ctx: RequestContext, facts: SystemFacts, keys: AuditKeys, end: float) -> tuple[Any, ...]:
    """The record's `system`, `model`, `hashes`, `retention` and `key_ids` (the same for every request of a
    backend, model, tenant and day; built once per such combination and shared: never mutate them), then
    the same five in canonical JSON (`orjson.Fragment`: what the writer's sorted serialisation would make of
    each dict, made once rather than for every record). One lookup rather than a call per member: they cost
    a request's record a fifth of its time (issue 14)."""
    day = int(end // 86_400)
    key = (ctx.backend, ctx.model, ctx.layer, ctx.engine, ctx.reasoning_policy, ctx.tenant, day, keys.pseudonym_id)
    hit = facts.shared.get(key)
    if hit is None:
        card = facts.models.get(ctx.backend or "")
        members = (
            facts.system(),
            _model(ctx.model, ctx.layer, ctx.backend, ctx.engine, card),
            _hashes(card.catalog_id if card else None, ctx.reasoning_policy, facts.config_hash),
            facts.retention(ctx.tenant, end),
            {"pseudonym": keys.pseudonym_id, "content": None},
        )
        hit = members + tuple(orjson.Fragment(chain.canonical(m)) for m in members)
        if len(facts.shared) >= 1024:
            facts.shared.clear()
        facts.shared[key] = hit
    return hit


def request_record(
    ctx: RequestContext,
    *,
    keys: AuditKeys,
    facts: SystemFacts,
    keystore: ContentKeystore | None = None,
    serialised: bool = False,
) -> dict[str, Any]:
    """The record of one request, built from its context once the response is complete.

    `serialised`: the record goes straight to the audit writer, which only serialises it (`chain.canonical`):
    its shared members are then their canonical JSON (`orjson.Fragment`), not dicts; the line written is
    byte for byte the same (tests/compliance/test_stage.py checks it)."""
    received = ctx.received_at
    started = ctx.started
    finished = ctx.finished_at  # `ctx.latency_s` and `ctx.ttft_s`, without the properties' calls
    latency = (finished if finished is not None else time.perf_counter()) - started
    end = received + latency
    req = ctx.request
    output = "".join(ctx.output_text)
    actor = ctx.key_id or ctx.client or "anonymous"
    user = req.params.get("user") if req is not None else None
    err = ctx.error
    usage = ctx.usage
    notes = ctx.notes
    shared = _shared(ctx, facts, keys, end)
    system, model, hashes, retention, key_ids = shared[5:] if serialised else shared[:5]
    end_iso = chain.iso(end)
    first = ctx.first_byte_at
    record: dict[str, Any] = {
        "type": REQUEST,
        "event_id": ctx.request_id,
        "time": end_iso,
        "start_time": chain.iso(received),
        "end_time": end_iso,
        "system": system,
        "model": model,
        "generation": _generation(ctx),
        "hashes": hashes,
        "actor": {
            "pseudonym": keys.pseudonym_of("actor", actor),
            "tenant": ctx.tenant,
            "app": ctx.headers.get("x-owstack-app") or ctx.headers.get("x-agent-id"),
            "end_user": keys.pseudonym_of("user", str(user)) if user else None,
            "protocol": ctx.protocol,
        },
        "input": {
            "hmac": keys.hmac(chain.canonical(req.messages)) if req is not None else None,
            "tokens": usage.prompt_tokens,
            "messages": len(req.messages) if req is not None else 0,
        },
        "output": {
            "hmac": keys.hmac(output.encode()) if output or ctx.tool_calls else None,
            "tokens": usage.completion_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "finish_reason": ctx.finish_reason,
        },
        "tool_calls": _tool_calls(ctx, keys) if ctx.tool_calls else [],
        "guardrail": _guardrail(ctx) if "guard" in notes else None,
        "oversight": [str(x) for x in notes["oversight"] if isinstance(x, str)] if "oversight" in notes else [],
        # the gateway marks every successful response (header and `owstack` body field); a stage that
        # withholds the mark says so with ctx.notes["output_marked"] = False
        "transparency": _TRANSPARENCY[ctx.status < 400 and notes.get("output_marked", True) is not False],
        "outcome": {
            "status": ctx.status,
            "error_code": err.code if err is not None else None,
            "latency_ms": _ms(latency),
            "ttft_ms": None if first is None else _ms(first - started),
            "attempts": [
                {
                    "backend": a.backend,
                    "outcome": a.outcome,
                    "latency_ms": None if (s := a.latency_s) is None else _ms(s),
                }
                for a in ctx.attempts
            ],
            "client_disconnected": ctx.client_disconnected,
        },
        "retention": retention,
        "key_ids": key_ids,
    }
    ledger = notes.get("ledger")  # what the ledger's row needs besides the above (metering.audit_journal)
    if ledger is not None:
        record["ledger"] = ledger
    if keystore is not None and req is not None:
        content = {"messages": req.messages, "output": output, "tool_calls": ctx.tool_calls}
        record["content"] = keystore.seal(ctx.tenant, ctx.request_id, content)
        record["key_ids"] = {"pseudonym": keys.pseudonym_id, "content": record["content"]["key_id"]}
    return record


def admin_record(
    kind: str,
    details: dict[str, Any],
    *,
    keys: AuditKeys,
    facts: SystemFacts,
    actor: str | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """An administrative event: `key.created`, `key.revoked`, `config.loaded`, `tenant.erased`, ..."""
    now = time.time()
    return {
        "type": f"admin.{kind}",
        "event_id": str(uuid.uuid4()),
        "time": chain.iso(now),
        "system": facts.system(),
        "actor": {"pseudonym": keys.pseudonym_of("actor", actor or "local-admin"), "tenant": tenant},
        "details": details,
        "hashes": {"policy_config": facts.config_hash},
        "retention": facts.retention(tenant, now),
        "key_ids": {"pseudonym": keys.pseudonym_id},
    }
