"""Training rows from the audit log: only a consenting tenant's own captured requests, decrypted in the job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from owstack.compliance import chain
from owstack.compliance.service import AuditLog
from owstack.config.load import load as load_config
from owstack.finetune.errors import DataError, SovereigntyError
from owstack.finetune.plan import heldout, prepare
from owstack.finetune.recipe import load

from .conftest import write_recipe


def _config(tmp: Path, **acme: Any) -> Path:
    raw = {
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys"), "node": "n1"},
        "tenants": {
            "acme": {"jurisdictions": ["eu", "local"], "capture_content": True, "finetune_consent": True, **acme},
            "globex": {"capture_content": True, "finetune_consent": True},
        },
    }
    path = tmp / "owstack.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _capture(config_path: Path, tenant: str, question: str, answer: str, **over: Any) -> str:
    log = AuditLog(load_config(config_path))
    event = f"req-{tenant}-{abs(hash(question)) % 10**8}"
    content = {"messages": [{"role": "user", "content": question}], "output": answer, "tool_calls": []}
    record = {
        "type": "inference.request",
        "event_id": event,
        "time": chain.iso(1_790_000_000 + len(question)),
        "actor": {"tenant": tenant},
        "outcome": {"status": over.pop("status", 200)},
        "output": {"finish_reason": over.pop("finish", "stop")},
        "content": log.keystore.seal(tenant, event, content),
    }
    try:
        log.writer().append_sync(record)
    finally:
        log.close()
    return event


def _recipe(tmp: Path, config: Path, **over: Any) -> Path:
    data = {"train": [], "audit": {"tenant": "acme", "config": str(config)}, "eval_split": 0.25, **over}
    return write_recipe(tmp, "embedded", jurisdiction="eu-fr", data=data)


def test_only_the_tenants_own_successful_text_requests_become_rows(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for i in range(4):
        _capture(config, "acme", f"acme question {i}?", f"acme answer {i}")
    _capture(config, "acme", "failed one", "partial", status=500)
    _capture(config, "acme", "cut one", "partial", finish="length")
    _capture(config, "globex", "globex secret?", "globex answer")
    plan = prepare(load(_recipe(tmp_path, config)))
    texts = [e.data["prompt"][0]["content"] for e in [*plan.train, *plan.eval]]
    assert sorted(texts) == [f"acme question {i}?" for i in range(4)]
    (source,) = plan.sources
    assert source.kind == "audit" and source.rows == 4 and source.jurisdictions == ("eu", "local")
    assert source.details["skipped"] == {"failed": 2, "erased": 0, "not_text": 0, "no_content": 0}
    assert plan.serving_jurisdictions == ["eu", "local"]
    # the held-out split keeps audit rows as references only, and decrypts them again for evaluation
    from owstack.finetune.data import write_jsonl

    run = tmp_path / "run"
    write_jsonl(run / "heldout.jsonl", plan.eval)
    stored = [json.loads(x) for x in (run / "heldout.jsonl").read_text().splitlines()]
    assert stored == [{"ref": e.ref} for e in plan.eval]
    assert [e.data for e in heldout(run, plan.loaded)] == [e.data for e in plan.eval]


def test_no_consent_no_capture_or_the_wrong_jurisdiction_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, finetune_consent=False)
    with pytest.raises(SovereigntyError, match="tenant 'acme' has not consented to fine-tuning"):
        prepare(load(_recipe(tmp_path, config)))
    config = _config(tmp_path, capture_content=False)
    with pytest.raises(SovereigntyError, match="does not capture content"):
        prepare(load(_recipe(tmp_path, config)))
    config = _config(tmp_path)
    _capture(config, "acme", "q?", "a")
    path = write_recipe(
        tmp_path, "embedded", jurisdiction="us", data={"audit": {"tenant": "acme", "config": str(config)}}
    )
    with pytest.raises(SovereigntyError, match=r"runs in 'us', but tenant 'acme' may only be processed in eu, local"):
        prepare(load(path))
    path = write_recipe(tmp_path, "embedded", data={"train": [], "audit": {"tenant": "initech", "config": str(config)}})
    with pytest.raises(SovereigntyError, match="no tenant 'initech'"):
        prepare(load(path))


def test_erased_tenants_content_cannot_be_trained_on(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _capture(config, "acme", "q?", "a")
    AuditLog(load_config(config)).keystore.destroy("acme")  # `owstack tenants erase`: crypto-shredding
    with pytest.raises(DataError, match=r"no usable captured requests .*'erased': 1"):
        prepare(load(_recipe(tmp_path, config)))


def test_pii_is_redacted_before_training(tmp_path: Path) -> None:
    pytest.importorskip("presidio_analyzer")
    config = _config(tmp_path)
    _capture(config, "acme", "Mail jane.doe@example.com or call +44 20 7946 0958", "Card 4111 1111 1111 1111 noted")
    _capture(config, "acme", "IBAN DE89 3704 0044 0532 0130 00 please", "ok")
    plan = prepare(load(_recipe(tmp_path, config, eval_split=0.0, redact_pii=True)))
    text = json.dumps([e.data for e in plan.train])
    for secret in ("jane.doe@example.com", "4111 1111 1111 1111", "DE89 3704", "7946 0958"):
        assert secret not in text
    assert "<EMAIL_ADDRESS>" in text and "<CREDIT_CARD>" in text and "<IBAN_CODE>" in text
    assert plan.redaction is not None and plan.redaction["EMAIL_ADDRESS"] == 1 and plan.redaction["IBAN_CODE"] == 1


def test_example_recipes_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "finetune"
    recipes = sorted(root.glob("*.yaml"))
    assert len(recipes) >= 3
    for path in recipes:
        load(path)
    with pytest.raises(DataError, match="captured traffic has no preference pairs"):
        from owstack.finetune.audit_data import read_audit
        from owstack.finetune.recipe import AuditSource

        read_audit(AuditSource(tenant="x"), root, "dpo", "last_turn")
