"""Every kind of tampering is detected by `audit verify`, with the first bad record and the kind named."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from owstack.compliance import chain
from owstack.compliance.config import AuditSection
from owstack.compliance.report import load_anchor
from owstack.compliance.verify import verify
from owstack.compliance.writer import AuditWriter

from .conftest import read_lines, rechain, section_for, stream_dir, write_lines, write_records


@pytest.fixture
def log(section: AuditSection) -> tuple[AuditSection, Path]:
    write_records(section, 30)
    seg = stream_dir(section) / "seg-000001.jsonl"
    assert verify(Path(section.directory)).ok
    return section, seg


def damage_of(section: AuditSection) -> tuple[str, int | None, str]:
    report = verify(Path(section.directory))
    assert not report.ok
    d = report.damage[0]
    return d.kind, d.seq, d.where


def seq_of(records: list[dict], typ: str, nth: int = 0) -> int:
    return [r for r in records if r["type"] == typ][nth]["seq"]


def test_modified_field(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    records[7]["i"] = 999
    write_lines(seg, records)
    assert damage_of(section)[:2] == ("modified", records[7]["seq"])


def test_modified_field_with_recomputed_hash(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    records[7]["i"] = 999
    records[7]["entry_hash"] = chain.recompute(records[7])
    write_lines(seg, records)
    assert damage_of(section)[:2] == ("modified", records[7]["seq"])


def test_deleted_record(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    gone = records.pop(5)
    write_lines(seg, records)
    kind, seq, _ = damage_of(section)
    assert (kind, seq) == ("deleted", gone["seq"] + 1)


def test_reordered_records(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    records[5], records[6] = records[6], records[5]
    write_lines(seg, records)
    kind, seq, _ = damage_of(section)
    assert (kind, seq) == ("reordered", records[5]["seq"])


def test_inserted_forged_record(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    forged = {"type": "test.event", "i": -1, "stream": "testnode-0", "time": records[5]["time"]}
    forged["seq"] = records[5]["seq"] + 1
    forged["prev_hash"] = records[5]["entry_hash"]
    forged["entry_hash"] = chain.recompute(forged)
    records.insert(6, forged)
    write_lines(seg, records)
    assert damage_of(section)[:2] == ("inserted", forged["seq"])


def test_truncated_tail(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    write_lines(seg, records[:-6])
    kind, seq, where = damage_of(section)  # named at the first missing record, in the segment it was in
    assert (kind, seq) == ("truncated", records[-6]["seq"]) and where.startswith(seg.name)


def test_truncated_mid_record(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) - 300])
    assert damage_of(section)[0] == "truncated"


def test_broken_checkpoint_signature(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    i = next(i for i, r in enumerate(records) if r["type"] == chain.CHECKPOINT and r["seq"] > 5)
    sig = bytearray(base64.b64decode(records[i]["signature"]))
    sig[0] ^= 1
    records[i]["signature"] = base64.b64encode(bytes(sig)).decode()
    rechain(records, i)
    write_lines(seg, records)
    assert damage_of(section)[:2] == ("bad_signature", records[i]["seq"])


def test_rewritten_chain_is_named_at_the_altered_record(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    records[4]["i"] = 12345
    rechain(records, 4)  # every hash after it recomputed: the next checkpoint's signed `covers` gives it away
    write_lines(seg, records)
    kind, seq, _ = damage_of(section)
    assert (kind, seq) == ("modified", records[4]["seq"])
    assert "rewritten" in verify(Path(section.directory)).damage[0].message


def test_appended_after_seal(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    records = read_lines(seg)
    extra = {"type": "test.event", "i": 77, "stream": "testnode-0", "time": records[-1]["time"]}
    extra["seq"] = records[-1]["seq"] + 1
    extra["prev_hash"] = records[-1]["entry_hash"]
    extra["entry_hash"] = chain.recompute(extra)
    write_lines(seg, [*records, extra])
    assert damage_of(section)[:2] == ("appended_after_seal", extra["seq"])


def test_unknown_signing_key(log: tuple[AuditSection, Path]) -> None:
    section, _ = log
    pub = next((Path(section.directory) / "public-keys").glob("*.pub"))
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pub.write_text(base64.b64encode(other).decode())
    assert damage_of(section)[0] == "unknown_key"


def test_untrusted_key(log: tuple[AuditSection, Path]) -> None:
    section, _ = log
    report = verify(Path(section.directory), trusted_keys={"ed25519:0000000000000000"})
    assert report.damage[0].kind == "unknown_key"


def test_deleted_manifest(log: tuple[AuditSection, Path]) -> None:
    section, _ = log
    (stream_dir(section) / "manifest.json").unlink()
    assert damage_of(section)[0] == "manifest_missing"


def test_corrupt_line(log: tuple[AuditSection, Path]) -> None:
    section, seg = log
    lines = seg.read_bytes().splitlines(keepends=True)
    seq = read_lines(seg)[3]["seq"]
    lines[3] = b"{not json\n"
    seg.write_bytes(b"".join(lines))
    assert damage_of(section)[:2] == ("corrupt", seq)  # the seq of the record that stood there


@pytest.fixture
def segmented(tmp_path: Path) -> AuditSection:
    section = section_for(tmp_path, segment_max_bytes=4096)
    writer = AuditWriter(section).start()
    for i in range(80):  # one at a time: a segment rotates between two batches
        writer.append_sync({"type": "test.event", "i": i, "pad": "x" * 100})
    writer.close()
    assert len(list(stream_dir(section).glob("seg-*.jsonl"))) >= 4
    assert verify(Path(section.directory)).ok
    return section


@pytest.mark.parametrize(("which", "kind"), [(1, "segment_missing"), (2, "segment_missing"), (-1, "truncated")])
def test_removed_segment(segmented: AuditSection, which: int, kind: str) -> None:
    segments = sorted(stream_dir(segmented).glob("seg-*.jsonl"))
    victim = segments[which - 1] if which > 0 else segments[-1]
    victim.unlink()
    got, _, where = damage_of(segmented)
    assert got == kind
    if kind == "segment_missing":
        assert victim.name in where


def test_crash_is_a_warning_and_an_anchor_catches_a_later_truncation(section: AuditSection) -> None:
    acked = write_records(section, 15, close=False)  # never sealed: as after kill -9 (the lock is ours, though)
    seg = stream_dir(section) / "seg-000001.jsonl"
    report = verify(Path(section.directory))
    assert report.ok and report.streams[0].state == "live"
    heads = report.to_dict()["heads"]
    assert heads["testnode-0"]["seq"] == acked[-1].seq
    anchor = Path(section.directory).parent / "anchor.json"
    import json

    anchor.write_text(json.dumps(report.to_dict()))
    records = read_lines(seg)
    write_lines(seg, records[:-2])  # drop the unsigned tail: invisible without an anchor ...
    assert verify(Path(section.directory)).ok
    damaged = verify(Path(section.directory), anchors=load_anchor(anchor))  # ... caught with one
    assert damaged.damage[0].kind == "truncated"
