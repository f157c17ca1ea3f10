"""The compliance CLI: audit verify/export/prune, tenants erase, docs annex-iv, bom."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from owstack.cli import app
from owstack.compliance.writer import AuditWriter

from .conftest import read_lines, section_for, stream_dir, write_lines

runner = CliRunner()


def write_config(tmp: Path, **audit: object) -> Path:
    section = section_for(tmp, **audit).model_dump(mode="json")
    path = tmp / "owstack.yaml"
    path.write_text(yaml.safe_dump({"audit": section, "tenants": {"acme": {"capture_content": True}}}))
    return path


def fill(tmp: Path, n: int = 20, **audit: object) -> Path:
    cfg = write_config(tmp, **audit)
    writer = AuditWriter(section_for(tmp, **audit)).start()
    for i in range(n):
        writer.append_sync(
            {"type": "inference.request" if i % 2 else "admin.test", "i": i, "actor": {"tenant": "acme"}}
        )
    writer.close()
    return cfg


def test_verify_intact_and_json(tmp_path: Path) -> None:
    cfg = fill(tmp_path)
    result = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output and "testnode-0: sealed" in result.output
    result = runner.invoke(app, ["audit", "verify", "--config", str(cfg), "--json"])
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["records"] > 20 and data["heads"]["testnode-0"]["seq"] > 20


def test_verify_names_the_first_bad_record(tmp_path: Path) -> None:
    cfg = fill(tmp_path)
    seg = stream_dir(section_for(tmp_path)) / "seg-000001.jsonl"
    records = read_lines(seg)
    records[4]["i"] = 1000
    write_lines(seg, records)
    result = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "DAMAGED" in result.output
    assert f"seg-000001.jsonl line 5 (seq {records[4]['seq']}): modified" in result.output
    assert "Traceback" not in result.output


def test_verify_missing_directory_and_bad_anchor(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert result.exit_code == 1 and "does not exist" in result.output
    fill(tmp_path)
    (tmp_path / "anchor.json").write_text("[1, 2]")
    result = runner.invoke(app, ["audit", "verify", "--config", str(cfg), "--anchor", str(tmp_path / "anchor.json")])
    assert result.exit_code == 2 and "--anchor" in result.output


def test_export_jsonl_and_csv_filter_by_time(tmp_path: Path) -> None:
    cfg = fill(tmp_path, n=10)
    today = datetime.now(UTC).date()
    out = tmp_path / "out.jsonl"
    args = ["audit", "export", "--config", str(cfg), "--since", str(today), "--until", str(today + timedelta(days=1))]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sum(1 for r in lines if r["type"] in ("inference.request", "admin.test")) == 10
    assert all("entry_hash" in r for r in lines)
    result = runner.invoke(app, [*args, "--format", "csv", "--type", "inference"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 5 and {r["type"] for r in rows} == {"inference.request"} and rows[0]["tenant"] == "acme"
    past = ["--since", "2020-01-01", "--until", "2020-02-01"]
    result = runner.invoke(app, ["audit", "export", "--config", str(cfg), *past])
    assert result.exit_code == 0 and result.stdout == ""


def test_export_usage_errors(tmp_path: Path) -> None:
    cfg = fill(tmp_path, n=2)
    base = ["audit", "export", "--config", str(cfg)]
    bad_date = runner.invoke(app, [*base, "--since", "yesterday", "--until", "2026-01-01"])
    assert bad_date.exit_code == 2 and "--since" in bad_date.output
    bad_fmt = runner.invoke(app, [*base, "--since", "2026-01-01", "--until", "2026-02-01", "--format", "xml"])
    assert bad_fmt.exit_code == 2 and "jsonl or csv" in bad_fmt.output


def test_prune_keeps_the_chain_verifiable(tmp_path: Path) -> None:
    section = section_for(tmp_path, segment_max_bytes=4096)
    cfg = write_config(tmp_path, segment_max_bytes=4096)
    writer = AuditWriter(section).start()
    for i in range(80):
        writer.append_sync({"type": "test.event", "i": i, "pad": "x" * 100})
    writer.close()
    before = sorted(stream_dir(section).glob("seg-*.jsonl"))
    later = (datetime.now(UTC) + timedelta(days=200)).strftime("%Y-%m-%d")
    dry = runner.invoke(app, ["audit", "prune", "--config", str(cfg), "--now", later, "--dry-run"])
    assert dry.exit_code == 0 and "would remove" in dry.output
    assert sorted(stream_dir(section).glob("seg-*.jsonl")) == before
    none = runner.invoke(app, ["audit", "prune", "--config", str(cfg)])
    assert none.exit_code == 0 and "nothing older" in none.output
    result = runner.invoke(app, ["audit", "prune", "--config", str(cfg), "--now", later])
    assert result.exit_code == 0, result.output
    after = sorted(stream_dir(section).glob("seg-*.jsonl"))
    assert len(after) < len(before) and before[-1].name in {p.name for p in after}
    marker = json.loads((stream_dir(section) / "pruned.json").read_text())
    assert marker["first_segment"] == int(after[0].stem.split("-")[1])
    verify = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert verify.exit_code == 0, verify.output
    assert "pruned before seq" in verify.output
    # a forged marker (moving the anchor) is caught
    marker["first_seq"] += 1
    (stream_dir(section) / "pruned.json").write_text(json.dumps(marker))
    assert runner.invoke(app, ["audit", "verify", "--config", str(cfg)]).exit_code == 1


def test_legal_hold_stops_pruning(tmp_path: Path) -> None:
    section = section_for(tmp_path, segment_max_bytes=4096)
    writer = AuditWriter(section).start()
    for i in range(60):
        writer.append_sync({"type": "test.event", "i": i, "pad": "x" * 100, "actor": {"tenant": "acme"}})
    writer.close()
    later = (datetime.now(UTC) + timedelta(days=200)).strftime("%Y-%m-%d")
    n = len(list(stream_dir(section).glob("seg-*.jsonl")))
    for hold in ({"legal_hold": True}, {"legal_hold_tenants": ["acme"]}):
        cfg = write_config(tmp_path, segment_max_bytes=4096, **hold)
        result = runner.invoke(app, ["audit", "prune", "--config", str(cfg), "--now", later])
        assert result.exit_code == 0 and "remov" not in result.output, result.output
        assert len(list(stream_dir(section).glob("seg-*.jsonl"))) == n


def test_tenants_erase(tmp_path: Path) -> None:
    from owstack.compliance.service import AuditLog
    from owstack.config.load import load
    from owstack.protocols.responses.store import ResponseStore

    cfg = write_config(tmp_path)
    store = ResponseStore(load(cfg).file.storage.url, retention_s=3600)
    for tenant, rid in (("acme", "resp_a1"), ("acme", "resp_a2"), ("other", "resp_o1")):
        asyncio.run(store.put(tenant, {"id": rid, "status": "completed"}, [{"type": "message"}]))
    log = AuditLog(load(cfg))
    sealed = log.keystore.seal("acme", "ev1", {"messages": ["hello"]})
    assert log.keystore.open("acme", "ev1", sealed) == {"messages": ["hello"]}
    refused = runner.invoke(app, ["tenants", "erase", "acme", "--config", str(cfg)], input="n\n")
    assert refused.exit_code == 1
    assert asyncio.run(store.get("acme", "resp_a1")) is not None  # refused: nothing erased
    result = runner.invoke(app, ["tenants", "erase", "acme", "--config", str(cfg), "--yes"])
    assert result.exit_code == 0, result.output
    assert sealed["key_id"] in result.output and "recorded tenant.erased" in result.output
    assert "2 stored response(s) deleted" in result.output
    assert asyncio.run(store.get("acme", "resp_a1")) is None and asyncio.run(store.get("acme", "resp_a2")) is None
    assert asyncio.run(store.get("other", "resp_o1")) is not None  # another tenant's stay
    from owstack.compliance.keystore import ContentUnavailable

    with pytest.raises(ContentUnavailable):
        AuditLog(load(cfg)).keystore.open("acme", "ev1", sealed)
    again = runner.invoke(app, ["tenants", "erase", "acme", "--config", str(cfg), "--yes"])
    assert again.exit_code == 0 and "no content key" in again.output and "0 stored response(s)" in again.output
    assert runner.invoke(app, ["audit", "verify", "--config", str(cfg)]).exit_code == 0


def test_docs_annex_iv_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "backends": {
                    "nemo-eu": {
                        "engine": "vllm",
                        "url": "http://gpu-eu:8000/v1",
                        "jurisdiction": "eu",
                        "model": "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
                    },
                    "edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct"},
                },
                "layers": {
                    "coding": {"backends": ["nemo-eu"], "fallback": ["edge-local"]},
                    "edge": {"backends": ["edge-local"]},
                },
                "tenants": {"acme-eu": {"jurisdictions": ["eu"]}},
                "audit": {
                    "retention_days": 400,
                    "directory": str(tmp_path / "a"),
                    "keys_directory": str(tmp_path / "k"),
                },
            }
        )
    )
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"policies": {"concise": {"accuracy": 0.75, "mean_tokens": 28.5}}}))
    out = tmp_path / "annex"
    result = runner.invoke(
        app, ["docs", "annex-iv", "--config", str(cfg), "--out", str(out), "--results", str(results)]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("0*.md"))
    assert len(names) == 9 and names[0].startswith("01-") and names[-1].startswith("09-")
    text = {p.name: p.read_text() for p in out.glob("*.md")}
    s1 = text["01-general-description.md"]
    assert "nemo-eu" in s1 and "| eu |" in s1 and "nemo-eu, " not in s1.split("| coding |")[0]
    assert "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in s1
    assert "NVIDIA Nemotron Open Model License" in s1 or "Nemotron" in s1
    assert "| coding | nemo-eu | edge-local |" in s1
    assert "policies.concise.accuracy | 0.75" in text["04-performance-metrics.md"]
    assert (
        "400 days" in text["03-monitoring-functioning-control.md"]
        and "acme-eu" in text["03-monitoring-functioning-control.md"]
    )
    for name in names:
        assert "TO BE COMPLETED BY THE PROVIDER" in text[name], name
    bad = runner.invoke(app, ["docs", "annex-iv", "--config", str(cfg), "--results", str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "--results" in bad.output


def test_bom_validates(tmp_path: Path) -> None:
    out = tmp_path / "bom.json"
    result = runner.invoke(app, ["bom", "--out", str(out)])
    assert result.exit_code == 0, result.output
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = out.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6" and bom["metadata"]["component"]["name"] == "owstack"
    (model,) = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert model["hashes"] == [
        {"alg": "SHA-256", "content": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}
    ]
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}] and "modelCard" in model
    libs = {c["name"].lower() for c in bom["components"] if c["type"] == "library"}
    assert {"pydantic", "cryptography", "cyclonedx-python-lib", "typer"} <= libs
    # a broken document is refused by the same validator
    bom["components"][0]["type"] = "not-a-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is not None


def test_real_subprocess(tmp_path: Path) -> None:
    cfg = fill(tmp_path, n=3)
    exe = Path(sys.executable).with_name("owstack")
    proc = subprocess.run(
        [str(exe), "audit", "verify", "--config", str(cfg), "--json"], capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    seg = stream_dir(section_for(tmp_path)) / "seg-000001.jsonl"
    seg.write_bytes(seg.read_bytes().replace(b'"i":1', b'"i":7', 1))
    proc = subprocess.run([str(exe), "audit", "verify", "--config", str(cfg)], capture_output=True, timeout=120)
    assert proc.returncode == 1 and b"modified" in proc.stderr and b"Traceback" not in proc.stderr
