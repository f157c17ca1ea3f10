"""Forgeries that verified before: records after a seal behind a forged resume record, a deleted log,
duplicate JSON keys, and checkpoints of the older format (no `covers`) that must still verify."""

from __future__ import annotations

import json
from pathlib import Path

from owstack.compliance import chain
from owstack.compliance.config import AuditSection
from owstack.compliance.verify import verify
from owstack.compliance.writer import AuditWriter

from .conftest import read_lines, stream_dir, write_lines, write_records


def _chained(prev: dict, body: dict) -> dict:
    record = {**body, "stream": "testnode-0", "time": prev["time"], "seq": prev["seq"] + 1}
    record["prev_hash"] = prev["entry_hash"]
    record["entry_hash"] = chain.recompute(record)
    return record


def test_forged_resume_after_seal_is_named_at_the_resume_record(section: AuditSection) -> None:
    write_records(section, 12)
    seg = stream_dir(section) / "seg-000001.jsonl"
    records = read_lines(seg)
    last = records[-1]
    resume = _chained(
        last,
        {
            "type": chain.STREAM_RESUMED,
            "node": "testnode",
            "pid": 1,
            "gateway_version": "x",
            "previous": {"seq": last["seq"], "entry_hash": last["entry_hash"], "sealed": True},
            "torn": None,
        },
    )
    forged = _chained(resume, {"type": "test.event", "tenant": "globex", "i": 666})
    write_lines(seg, [*records, resume, forged])
    report = verify(Path(section.directory))
    assert not report.ok
    d = report.damage[0]
    assert (d.kind, d.seq) == ("appended_after_seal", resume["seq"])


def test_a_real_resume_after_seal_verifies(section: AuditSection) -> None:
    write_records(section, 5)
    write_records(section, 5)  # a second run of the same node resumes the sealed stream
    report = verify(Path(section.directory))
    assert report.ok, report.damage
    records = read_lines(stream_dir(section) / "seg-000001.jsonl")
    kinds = [r["type"] for r in records]
    i = kinds.index(chain.STREAM_RESUMED)
    assert kinds[i + 1] == chain.CHECKPOINT and records[i]["previous"]["sealed"] is True


def test_resume_misstating_the_seal_is_modified(section: AuditSection) -> None:
    write_records(section, 5)
    write_records(section, 5)
    seg = stream_dir(section) / "seg-000001.jsonl"
    records = read_lines(seg)
    i = next(i for i, r in enumerate(records) if r["type"] == chain.STREAM_RESUMED)
    records[i]["previous"]["sealed"] = False
    records[i]["entry_hash"] = chain.recompute(records[i])
    for j in range(i + 1, len(records)):
        records[j]["prev_hash"] = records[j - 1]["entry_hash"]
        records[j]["entry_hash"] = chain.recompute(records[j])
    write_lines(seg, records)
    d = verify(Path(section.directory)).damage[0]
    assert (d.kind, d.seq) == ("modified", records[i]["seq"])


def test_deleting_the_only_stream_is_damage(section: AuditSection) -> None:
    write_records(section, 3)
    import shutil

    shutil.rmtree(stream_dir(section))
    report = verify(Path(section.directory))
    assert not report.ok and report.damage[0].kind == "stream_missing"
    for f in stream_dir(section).parent.iterdir():
        shutil.rmtree(f)
    assert verify(Path(section.directory)).damage[0].kind == "stream_missing"  # keys prove a writer ran


def test_an_empty_directory_is_an_error_unless_declared_empty(tmp_path: Path) -> None:
    empty = tmp_path / "audit"
    empty.mkdir()
    assert verify(empty).damage[0].kind == "log_missing"
    assert verify(tmp_path / "nowhere").damage[0].kind == "log_missing"
    (empty / "manifest.json").write_text(json.dumps({"format": chain.FORMAT, "streams": []}))
    assert verify(empty).ok


def test_duplicate_key_is_named_at_its_record(section: AuditSection) -> None:
    write_records(section, 10, tenant="acme")
    seg = stream_dir(section) / "seg-000001.jsonl"
    lines = seg.read_bytes().splitlines()
    records = [json.loads(line) for line in lines]
    i = next(i for i, r in enumerate(records) if r.get("i") == 4)
    # first value "globex" for a first-wins parser, "acme" (the hashed one) for orjson and JSON.parse
    lines[i] = lines[i].replace(b'"tenant":"acme"', b'"tenant":"globex","tenant":"acme"')
    seg.write_bytes(b"\n".join(lines) + b"\n")
    d = verify(Path(section.directory)).damage[0]
    assert (d.kind, d.seq) == ("modified", records[i]["seq"])
    assert "'tenant' appears twice" in d.message


def test_reencoded_line_is_modified(section: AuditSection) -> None:
    write_records(section, 6)
    seg = stream_dir(section) / "seg-000001.jsonl"
    lines = seg.read_bytes().splitlines()
    record = json.loads(lines[3])
    lines[3] = json.dumps(record, sort_keys=True).encode()  # same data, spaces after separators
    seg.write_bytes(b"\n".join(lines) + b"\n")
    d = verify(Path(section.directory)).damage[0]
    assert (d.kind, d.seq) == ("modified", record["seq"])


def test_duplicate_key_in_manifest_is_corrupt(section: AuditSection) -> None:
    write_records(section, 3)
    manifest = stream_dir(section) / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"format"', '"stream": "other", "format"', 1))
    assert verify(Path(section.directory)).damage[0].kind == "corrupt"


def test_checkpoints_without_covers_still_verify(section: AuditSection) -> None:
    """Logs written before `covers` existed: the signature then covers no digest."""
    writer = AuditWriter(section).start()
    for i in range(4):
        writer.append_sync({"type": "test.event", "i": i})
    writer.close()
    seg = stream_dir(section) / "seg-000001.jsonl"
    records = read_lines(seg)
    keys = writer.keys
    for j, r in enumerate(records):  # rewritten in order, as the old writer wrote them
        if j:
            r["prev_hash"] = records[j - 1]["entry_hash"]
        if r["type"] == chain.CHECKPOINT:
            cp = r["checkpoint"]
            cp.pop("covers")
            cp["head_hash"] = r["prev_hash"]
            payload = chain.signed_payload(
                stream=r["stream"],
                seq=r["seq"],
                head_hash=cp["head_hash"],
                counter=cp["counter"],
                time=r["time"],
                sealed=cp["sealed"],
            )
            r["signature"] = chain.b64(keys.signing.sign(payload))
        r["entry_hash"] = chain.recompute(r)
    write_lines(seg, records)
    manifest_path = stream_dir(section) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    last_cp = [r for r in records if r["type"] == chain.CHECKPOINT][-1]
    manifest["checkpoint"].pop("covers")
    offset = sum(len(chain.canonical(r)) + 1 for r in records[: records.index(last_cp)])
    manifest["checkpoint"].update(
        signature=last_cp["signature"],
        entry_hash=last_cp["entry_hash"],
        head_hash=last_cp["checkpoint"]["head_hash"],
        offset=offset,  # where the old writer put it (these lines are shorter than the new writer's)
    )
    manifest_path.write_text(json.dumps(manifest))
    report = verify(Path(section.directory))
    assert report.ok, report.damage
