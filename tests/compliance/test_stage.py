"""The audit stage: one pseudonymous record per request, content capture and erasure, fail closed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from pathlib import Path

import pytest

from owstack.compliance.keystore import ContentUnavailable
from owstack.compliance.service import AuditLog, audit_admin_event
from owstack.compliance.stage import AuditStage
from owstack.compliance.verify import verify
from owstack.errors import ServiceUnavailable, UpstreamError
from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import ChatRequest, Usage

from .conftest import config_for, read_lines

PROMPT = "My IBAN is DE89370400440532013000, please summarise my account"
ANSWER = "Here is a summary of the account ending 3000"


def context(tenant: str = "globex", request_id: str = "req-1") -> RequestContext:
    ctx = RequestContext(request_id=request_id, tenant=tenant, key_id="key-abc", headers={"x-owstack-app": "crm-bot"})
    ctx.request = ChatRequest(
        model="edge",
        messages=[{"role": "user", "content": PROMPT}],
        params={"temperature": 0.2, "user": "alice@example.com"},
    )
    ctx.layer, ctx.backend, ctx.engine, ctx.model = "edge", "edge-local", "llamacpp", "smollm2-135m-instruct"
    ctx.output_text = [ANSWER[:10], ANSWER[10:]]
    ctx.usage = Usage(prompt_tokens=21, completion_tokens=12)
    ctx.finish_reason = "stop"
    ctx.attempts = [Attempt("edge-local", "ok", 0.05)]
    ctx.tool_calls = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"iban": "DE89"}'}}]
    ctx.notes["guard"] = {"decision": "flag", "categories": {"control_token": 2}, "matches": ["<|im_start|>"]}
    ctx.response_headers["x-owstack-ai-generated"] = "true"
    ctx.finished_at = ctx.started + 0.06
    return ctx


def run(stage: AuditStage, ctx: RequestContext) -> None:
    async def go() -> None:
        await stage.before(ctx)
        await stage.after(ctx)

    asyncio.run(go())


def all_records(tmp: Path) -> list[dict]:
    return [r for seg in sorted((tmp / "audit" / "streams").glob("*/seg-*.jsonl")) for r in read_lines(seg)]


def test_request_record_has_the_fields_and_no_raw_text(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    stage = AuditStage(config)
    run(stage, context())
    stage.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "audit").rglob("*.jsonl"))
    for secret in (PROMPT, ANSWER, "DE89", "alice@example.com", "key-abc", "<|im_start|>"):
        assert secret.encode() not in raw
    (rec,) = [r for r in all_records(tmp_path) if r["type"] == "inference.request"]
    key = bytes.fromhex((tmp_path / "keys" / "pseudonym.key").read_text().strip())
    from owstack.compliance.chain import canonical

    expect_in = hmac.new(key, canonical([{"role": "user", "content": PROMPT}]), hashlib.sha256).hexdigest()
    assert rec["input"] == {"hmac": expect_in, "tokens": 21, "messages": 1}
    assert rec["output"]["hmac"] == hmac.new(key, ANSWER.encode(), hashlib.sha256).hexdigest()
    assert rec["output"]["tokens"] == 12 and rec["output"]["finish_reason"] == "stop"
    assert rec["actor"]["pseudonym"].startswith("hmac:") and rec["actor"]["tenant"] == "globex"
    assert rec["actor"]["app"] == "crm-bot" and rec["actor"]["end_user"].startswith("hmac:")
    assert rec["model"]["weights_digest"] == "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert rec["generation"]["temperature"] == 0.2
    assert rec["hashes"]["policy_config"].startswith("sha256:") and rec["hashes"]["prompt_template"]
    assert rec["tool_calls"][0]["name"] == "lookup" and len(rec["tool_calls"][0]["arguments_hmac"]) == 64
    assert rec["guardrail"] == {"decision": "flag", "categories": {"control_token": 2}}
    assert rec["transparency"] == {"ai_disclosure": True, "output_marked": True}
    assert rec["outcome"]["status"] == 200 and rec["outcome"]["attempts"][0]["backend"] == "edge-local"
    assert rec["retention"]["days"] == 183 and rec["retention"]["legal_hold"] is False
    assert rec["start_time"] <= rec["end_time"] and "content" not in rec
    assert rec["event_id"] == "req-1" and rec["system"]["id"] == "owstack"
    assert verify(tmp_path / "audit").ok


def test_shared_members_follow_the_tenant_backend_and_day() -> None:
    """The members a record shares with others (system, model, hashes, retention, key ids) are built once per
    backend, model, tenant and day: a tenant under legal hold, another backend or another day gets its own."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from owstack.compliance.facts import ModelFacts
    from owstack.compliance.keys import AuditKeys
    from owstack.compliance.records import SystemFacts, request_record

    cards = {
        name: ModelFacts(backend=name, engine="vllm", model=f"m-{name}", jurisdiction="EU", proprietary=False,
                         catalog_id=f"cat-{name}", weights_digest=f"sha256:{name}")
        for name in ("a", "b")
    }  # fmt: skip
    facts = SystemFacts("sys", "node", "eu", "sha256:cfg", 30, legal_hold_tenants=frozenset({"held"}), models=cards)
    keys = AuditKeys(b"k" * 32, "hmac:test", Ed25519PrivateKey.generate(), "ed25519:test")

    def record(tenant: str, backend: str, received: float) -> dict:
        ctx = context(tenant=tenant)
        ctx.backend, ctx.received_at = backend, received
        return request_record(ctx, keys=keys, facts=facts)

    day = 86_400 * 20_000.0
    first, again = record("globex", "a", day + 10), record("globex", "a", day + 20)
    assert first["retention"] is again["retention"] and first["model"] is again["model"]
    held, other = record("held", "a", day + 30), record("globex", "b", day + 40)
    tomorrow = record("globex", "a", day + 86_400)
    assert first["retention"]["legal_hold"] is False and held["retention"]["legal_hold"] is True
    assert held["retention"]["class"] == "legal_hold"
    assert other["model"]["backend"] == "b" and other["model"]["weights_digest"] == "sha256:b"
    assert other["hashes"]["prompt_template"] != first["hashes"]["prompt_template"]
    assert tomorrow["retention"]["expires"] > first["retention"]["expires"]
    assert first["key_ids"] == {"pseudonym": keys.pseudonym_id, "content": None}


def test_serialised_records_write_the_same_line() -> None:
    """The record the audit stage hands to the writer (`serialised=True`: its shared members already canonical
    JSON) makes the same line and entry hash as the plain record, whatever the tenant, backend and options."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from owstack.compliance.chain import canonical
    from owstack.compliance.facts import ModelFacts
    from owstack.compliance.keys import AuditKeys
    from owstack.compliance.records import SystemFacts, request_record
    from owstack.compliance.writer import _hashed_line

    card = ModelFacts(backend="a", engine="vllm", model="m-a", jurisdiction="EU", proprietary=False,
                      catalog_id="cat-a", weights_digest="sha256:a")  # fmt: skip
    held = frozenset({"held"})
    facts = SystemFacts("sys", "node", None, "sha256:cfg", 30, legal_hold_tenants=held, models={"a": card})
    keys = AuditKeys(b"k" * 32, "hmac:test", Ed25519PrivateKey.generate(), "ed25519:test")
    for tenant, backend, policy in (("globex", "a", None), ("held", "a", "low"), ("globex", "b", None)):
        ctx = context(tenant=tenant)
        ctx.backend, ctx.reasoning_policy = backend, policy
        plain = request_record(ctx, keys=keys, facts=facts)
        ready = request_record(ctx, keys=keys, facts=facts, serialised=True)
        assert isinstance(ready["model"], type(ready["system"])) and not isinstance(ready["model"], dict)
        assert canonical(ready) == canonical(plain)
        for record in (plain, ready):
            record.update(stream="s-0", seq=7, prev_hash="ab" * 32)
        assert _hashed_line("ab" * 32, ready) == _hashed_line("ab" * 32, plain)
        assert ready["entry_hash"] == plain["entry_hash"]


def test_milliseconds_are_rounded_as_round_does() -> None:
    """A record's latencies (`_ms`, a faster path) are exactly `round(seconds * 1000, 3)`: halves of a
    microsecond, values a hair either side of them, large, tiny, negative and non-finite ones."""
    import math
    import random

    from owstack.compliance.records import _ms

    rng = random.Random(14)
    values = [0.0, -0.0, 1e-9, 0.0000005, 0.0000015, 0.0000025, 1.2345675, 86_400.0, 1e9, 1e12, -0.0001]
    values += [math.inf, -math.inf, 4e12 + 0.5, 0.1 + 0.2, 1 / 3]
    for _ in range(200_000):
        micro = rng.randrange(0, 10**10)
        values.append((micro + rng.choice((0.5, 0.4999999, 0.5000001, 0.0, rng.random()))) / 1e6)
        values.append(rng.expovariate(3.0))
        values.append((rng.randrange(10**12, 10**16) + rng.choice((0.5, 0.25, 0.0))) / 1e6)  # years, coarse floats
    for v in values:
        got, want = _ms(v), round(v * 1000, 3)
        assert got == want and math.copysign(1, got) == math.copysign(1, want), v
    assert math.isnan(_ms(math.nan))


def test_error_requests_are_recorded(tmp_path: Path) -> None:
    stage = AuditStage(config_for(tmp_path))
    ctx = context()
    ctx.status, ctx.error, ctx.output_text = 502, UpstreamError("boom"), []
    run(stage, ctx)
    stage.close()
    (rec,) = [r for r in all_records(tmp_path) if r["type"] == "inference.request"]
    assert rec["outcome"]["error_code"] == "upstream_error" and rec["outcome"]["status"] == 502


def test_capture_then_erase(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    log = AuditLog(config)
    stage = AuditStage(config, log=log)
    run(stage, context(tenant="acme", request_id="req-acme"))
    (rec,) = [r for r in all_records(tmp_path) if r["type"] == "inference.request"]
    assert (
        PROMPT.encode()
        not in (tmp_path / "audit")
        .joinpath("streams")
        .joinpath(rec["stream"])
        .joinpath("seg-000001.jsonl")
        .read_bytes()
    )
    content = log.keystore.open("acme", "req-acme", rec["content"])
    assert content["messages"][0]["content"] == PROMPT and content["output"] == ANSWER
    assert rec["key_ids"]["content"] == rec["content"]["key_id"]

    assert log.keystore.destroy("acme") == rec["content"]["key_id"]
    audit_admin_event(config, "tenant.erased", {"tenant": "acme"}, tenant="acme", writer=log.writer())
    with pytest.raises(ContentUnavailable, match="destroyed"):
        AuditLog(config).keystore.open("acme", "req-acme", rec["content"])
    with pytest.raises(ContentUnavailable):
        log.keystore.open("acme", "req-acme", rec["content"])
    # new requests of the tenant get a new key; the old content stays unreadable
    run(stage, context(tenant="acme", request_id="req-acme-2"))
    stage.close()
    recs = [r for r in all_records(tmp_path) if r["type"] == "inference.request"]
    assert recs[1]["content"]["key_id"] != recs[0]["content"]["key_id"]
    assert AuditLog(config).keystore.open("acme", "req-acme-2", recs[1]["content"])["output"] == ANSWER
    assert any(r["type"] == "admin.tenant.erased" for r in all_records(tmp_path))
    assert verify(tmp_path / "audit").ok


def test_before_refuses_when_the_writer_failed(tmp_path: Path) -> None:
    stage = AuditStage(config_for(tmp_path))
    run(stage, context())
    assert stage.log is not None
    writer = stage.log.writer()
    full = os.open("/dev/full", os.O_WRONLY)
    os.close(writer._fd)  # type: ignore[arg-type]
    writer._fd = full
    with pytest.raises(ServiceUnavailable, match="audit log cannot be written"):
        run(stage, context(request_id="req-2"))  # the append in after() fails: the response must not complete
    with pytest.raises(ServiceUnavailable, match="audit log cannot be written: write failed: No space left"):
        asyncio.run(stage.before(context(request_id="req-3")))
    stage.close()


def test_before_refuses_when_the_log_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("a file where the directory should be")
    stage = AuditStage(config_for(tmp_path))
    with pytest.raises(ServiceUnavailable, match="audit log cannot be written") as info:
        asyncio.run(stage.before(context()))
    assert info.value.status == 503 and info.value.code == "audit_unavailable"


def test_disabled_audit_records_nothing(tmp_path: Path) -> None:
    stage = AuditStage(config_for(tmp_path, enabled=False))
    run(stage, context())
    assert not (tmp_path / "audit").exists()


def test_config_rejects_short_retention(tmp_path: Path) -> None:
    from owstack.errors import ConfigError

    with pytest.raises(ConfigError, match="retention_days"):
        from owstack.config.load import from_dict

        from_dict({"audit": {"retention_days": 30}})


def test_gateway_hooks_record_config_loaded_and_seal(tmp_path: Path) -> None:
    stage = AuditStage(config_for(tmp_path))

    async def lifecycle() -> None:
        await stage.start()
        await stage.before(context())
        await stage.after(context())
        await stage.aclose()

    asyncio.run(lifecycle())
    records = all_records(tmp_path)
    loaded = [r for r in records if r["type"] == "admin.config.loaded"]
    assert len(loaded) == 1 and loaded[0]["hashes"]["policy_config"].startswith("sha256:")
    assert loaded[0]["actor"]["pseudonym"].startswith("hmac:")
    report = verify(tmp_path / "audit")
    assert report.ok and report.streams[0].state == "sealed"


def test_start_with_an_unwritable_log_does_not_raise_but_refuses(tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("in the way")
    stage = AuditStage(config_for(tmp_path))
    asyncio.run(stage.start())
    assert stage.unavailable() is not None and not stage.healthy
    with pytest.raises(ServiceUnavailable):
        asyncio.run(stage.before(context()))


@pytest.mark.parametrize("captures", [False, True])
def test_a_record_that_cannot_be_built_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, captures: bool
) -> None:
    """A bug while building the record (on the commit thread, or on the loop for a tenant that captures
    content) refuses the response with 503 rather than serving it unrecorded, and the log goes on."""
    stage = AuditStage(config_for(tmp_path))
    run(stage, context())
    assert stage.log is not None
    monkeypatch.setattr(stage.log, "captures", lambda tenant: captures)

    def broken(*args: object, **kwargs: object) -> dict:
        raise KeyError("a field the record expected")

    monkeypatch.setattr("owstack.compliance.stage.request_record", broken)
    with pytest.raises(ServiceUnavailable, match="record could not be built") as info:
        run(stage, context(request_id="req-broken"))
    assert info.value.code == "audit_unavailable"
    monkeypatch.undo()
    run(stage, context(request_id="req-after"))  # the writer is still healthy: later requests are recorded
    stage.close()
    ids = [r["event_id"] for r in all_records(tmp_path) if r["type"] == "inference.request"]
    assert ids == ["req-1", "req-after"]
    assert verify(tmp_path / "audit").ok
