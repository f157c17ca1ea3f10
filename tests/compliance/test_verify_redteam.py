"""Red-team pass over `owstack audit verify`: tampering of every kind on logs written by the real writer.

Each case must be detected (not ok, CLI exit 1, no traceback) and the report must name the first damaged
record: its stream, its segment (in `where`) and its sequence number. Legitimate logs (crash-recovered,
rotated, resumed, pruned by retention) must still verify. The table in docs/compliance.md ("Red-team pass")
lists the cases and which of them the verifier caught before this pass.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from owstack.cli import app
from owstack.compliance import chain, retention
from owstack.compliance.config import AuditSection
from owstack.compliance.keys import public_key_id
from owstack.compliance.report import Damage
from owstack.compliance.verify import verify
from owstack.compliance.writer import AuditWriter

from .conftest import read_lines, rechain, section_for, stream_dir, write_lines, write_records

STREAM = "testnode-0"
runner = CliRunner()


# -- logs written by the real writer ------------------------------------------------------------------


def sealed_log(tmp: Path, n: int = 30) -> tuple[AuditSection, Path]:
    """One sealed stream, one segment: opened, cp, 10 events, cp, ... , sealing cp."""
    section = section_for(tmp)
    write_records(section, n)
    assert verify(Path(section.directory)).ok
    return section, stream_dir(section) / "seg-000001.jsonl"


def segmented_log(tmp: Path, n: int = 80) -> AuditSection:
    """One sealed stream over several 4 KiB segments (each new segment starts with a checkpoint)."""
    section = section_for(tmp, segment_max_bytes=4096)
    writer = AuditWriter(section).start()
    for i in range(n):
        writer.append_sync({"type": "test.event", "i": i, "pad": "x" * 100})
    writer.close()
    assert len(segments(section)) >= 4
    assert verify(Path(section.directory)).ok
    return section


def two_streams(tmp: Path, n: int = 40) -> AuditSection:
    """Two writers at once: streams testnode-0 and testnode-1, each over several segments."""
    section = section_for(tmp, segment_max_bytes=4096)
    a, b = AuditWriter(section).start(), AuditWriter(section).start()
    for i in range(n):
        a.append_sync({"type": "test.event", "i": i, "pad": "a" * 100})
        b.append_sync({"type": "test.event", "i": i, "pad": "b" * 100})
    a.close()
    b.close()
    assert verify(Path(section.directory)).ok
    return section


def segments(section: AuditSection, name: str = STREAM) -> list[Path]:
    return sorted(stream_dir(section, name).glob("seg-*.jsonl"))


def damage(section: AuditSection) -> Damage:
    report = verify(Path(section.directory))
    assert not report.ok, "not detected"
    return report.damage[0]


def assert_named(section: AuditSection, kinds: str | set[str], seq: int | None, segment: str, stream: str = STREAM):
    d = damage(section)
    kinds = {kinds} if isinstance(kinds, str) else kinds
    assert d.kind in kinds, d
    assert (d.stream, d.seq) == (stream, seq), d
    assert segment in d.where, d
    cli_reports_damage(section)
    return d


def cli_reports_damage(section: AuditSection) -> None:
    """`owstack audit verify` exits 1 with a `damage:` line, not an error (the CLI's last-resort handler)."""
    result = runner.invoke(app, ["audit", "verify", "--dir", section.directory])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "damage: stream" in result.output and "unexpected" not in result.output, result.output


def lines_of(seg: Path) -> list[bytes]:
    return seg.read_bytes().splitlines()


def put_lines(seg: Path, lines: list[bytes]) -> None:
    seg.write_bytes(b"".join(line + b"\n" for line in lines))


# -- truncation ---------------------------------------------------------------------------------------


def test_truncated_tail_names_the_first_missing_record(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    write_lines(seg, records[:-6])
    assert_named(section, "truncated", records[-6]["seq"], "seg-000001.jsonl")


def test_truncated_to_the_seal_only(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    write_lines(seg, records[:-1])  # only the sealing checkpoint gone
    assert_named(section, "truncated", records[-1]["seq"], "seg-000001.jsonl")


def test_truncated_last_segment_deleted_names_it(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    first = read_lines(segs[-1])[0]["seq"]
    segs[-1].unlink()
    assert_named(section, "truncated", first, segs[-1].name)


def test_truncated_tail_with_trailing_garbage_after_the_seal(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    last = read_lines(seg)[-1]
    with seg.open("ab") as fh:
        fh.write(b"garbage")
    assert_named(section, "corrupt", last["seq"] + 1, "seg-000001.jsonl")


def test_a_record_prefix_appended_after_the_seal_is_not_a_crash(tmp_path: Path) -> None:
    """After a seal the next write is a resume record: a torn tail must be a prefix of one."""
    section, seg = sealed_log(tmp_path)
    last = read_lines(seg)[-1]
    with seg.open("ab") as fh:
        fh.write(b'{"actor":{"tenant":"acme"},"entry_hash":"')
    assert_named(section, "corrupt", last["seq"] + 1, "seg-000001.jsonl")


# -- segments -----------------------------------------------------------------------------------------


def test_middle_segment_deleted_names_its_first_record(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    first = read_lines(segs[1])[0]["seq"]
    segs[1].unlink()
    assert_named(section, "segment_missing", first, segs[1].name)


def test_first_segment_deleted_without_prune_marker(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segments(section)[0].unlink()
    assert_named(section, "segment_missing", 1, "seg-000001.jsonl")


def test_middle_segment_deleted_and_later_ones_renamed_to_close_the_gap(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    first_after = read_lines(segs[2])[0]["seq"]
    segs[1].unlink()
    for a, b in itertools.pairwise(segs[1:]):
        b.rename(a)
    assert_named(section, "deleted", first_after, "seg-000002.jsonl")


def test_two_segments_swapped(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    moved = read_lines(segs[2])[0]["seq"]
    tmp = segs[1].with_name("swap")
    segs[1].rename(tmp)
    segs[2].rename(segs[1])
    tmp.rename(segs[2])
    assert_named(section, {"reordered", "deleted"}, moved, "seg-000002.jsonl")


def test_segment_swapped_with_another_streams(tmp_path: Path) -> None:
    section = two_streams(tmp_path)
    a, b = segments(section, "testnode-0"), segments(section, "testnode-1")
    first = read_lines(b[1])[0]["seq"]
    shutil.copyfile(b[1], a[1])
    assert_named(section, {"modified", "deleted", "inserted", "reordered"}, first, "seg-000002.jsonl")


def test_streams_renamed_into_each_other(tmp_path: Path) -> None:
    section = two_streams(tmp_path)
    a, b = stream_dir(section, "testnode-0"), stream_dir(section, "testnode-1")
    a.rename(a.with_name("tmp"))
    b.rename(a)
    a.with_name("tmp").rename(b)
    d = damage(section)
    assert d.stream == "testnode-0" and d.seq == 1 and "seg-000001.jsonl" in d.where


def test_a_stream_deleted_next_to_a_later_one(tmp_path: Path) -> None:
    """Writers claim streams <node>-0, -1, ... in order, so -0 gone while -1 is there was deleted."""
    section = two_streams(tmp_path)
    shutil.rmtree(stream_dir(section, "testnode-0"))
    d = damage(section)
    assert (d.kind, d.stream) == ("stream_missing", "testnode-0")


def test_segment_symlinked_outside_the_log(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    first = read_lines(segs[1])[0]["seq"]
    outside = tmp_path / "elsewhere.jsonl"
    shutil.move(segs[1], outside)
    segs[1].symlink_to(outside)  # same bytes, but no longer in the log: whoever writes there rewrites the log
    assert_named(section, "corrupt", first, segs[1].name)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "dir"])
def test_segment_that_is_not_a_file_is_refused_without_hanging(tmp_path: Path, target: str) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    first = read_lines(segs[1])[0]["seq"]
    segs[1].unlink()
    if target == "fifo":
        os.mkfifo(segs[1])
    elif target == "dir":
        segs[1].mkdir()
    else:
        segs[1].symlink_to(target)
    kind, seq, where = _verify_apart(section)
    assert (kind, seq) == ("corrupt", first) and segs[1].name in where


def _verify_apart(section: AuditSection) -> tuple[str, int, str]:
    """The first damage, from verify run in a child process with 4 GiB of address space and 60 s."""
    code = (
        "import sys, json; from pathlib import Path; from owstack.compliance.verify import verify;"
        "r = verify(Path(sys.argv[1])); d = r.damage[0];"
        "print(json.dumps([d.kind, d.seq, d.where]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code, section.directory],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
        preexec_fn=_limit_memory,  # reading /dev/zero as a line must not take the machine down
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    kind, seq, where = orjson.loads(proc.stdout)
    return kind, seq, where


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_empty_segment_in_the_middle(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    segs[1].write_bytes(b"")  # every record of it deleted: the chain breaks at the next segment's first
    assert_named(section, "deleted", read_lines(segs[2])[0]["seq"], "seg-000003.jsonl")


# -- records: duplicates, gaps, removed or renumbered checkpoints --------------------------------------


def test_duplicated_record(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    lines = lines_of(seg)
    lines.insert(6, lines[5])
    put_lines(seg, lines)
    assert_named(section, "inserted", orjson.loads(lines[5])["seq"], "seg-000001.jsonl line 7")


def test_duplicated_last_record_names_the_copy(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    lines = lines_of(seg)
    put_lines(seg, [*lines, lines[-1]])
    assert_named(section, "inserted", orjson.loads(lines[-1])["seq"], f"seg-000001.jsonl line {len(lines) + 1}")


def test_seq_gap_without_rehash(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    records[8]["seq"] += 1
    write_lines(seg, records)
    assert_named(section, "modified", records[8]["seq"] - 1, "seg-000001.jsonl line 9")


def test_checkpoint_removed(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    i = [j for j, r in enumerate(records) if r["type"] == chain.CHECKPOINT][2]
    del records[i]
    write_lines(seg, records)
    assert_named(section, "deleted", records[i]["seq"], "seg-000001.jsonl")


def test_checkpoint_removed_and_chain_renumbered(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    i = [j for j, r in enumerate(records) if r["type"] == chain.CHECKPOINT][1]
    del records[i]
    for r in records[i:]:
        r["seq"] -= 1
    rechain(records, i)
    write_lines(seg, records)
    assert_named(section, {"deleted", "modified"}, records[i]["seq"], "seg-000001.jsonl")


def test_records_removed_and_chain_renumbered(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    del records[5:7]
    for r in records[5:]:
        r["seq"] -= 2
    rechain(records, 5)
    write_lines(seg, records)
    assert_named(section, {"deleted", "modified"}, records[5]["seq"], "seg-000001.jsonl")


def test_record_inserted_and_chain_renumbered(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    forged = {**records[5], "i": 666}
    records.insert(6, forged)
    for r in records[6:]:
        r["seq"] += 1
    rechain(records, 6)
    write_lines(seg, records)
    assert_named(section, {"inserted", "modified"}, records[6]["seq"], "seg-000001.jsonl line 7")


def test_checkpoint_counter_changed(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    i = [j for j, r in enumerate(records) if r["type"] == chain.CHECKPOINT][2]
    records[i]["checkpoint"]["counter"] += 1
    rechain(records, i)
    write_lines(seg, records)
    assert_named(section, "bad_signature", records[i]["seq"], "seg-000001.jsonl")


def test_stream_opened_forged_mid_stream(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    fake = {**records[0], "seq": records[29]["seq"] + 1, "pid": 1}
    records.insert(30, fake)
    rechain(records, 30)
    for r in records[31:]:
        r["seq"] += 1
    rechain(records, 30)
    write_lines(seg, records)
    assert_named(section, {"inserted", "modified"}, fake["seq"], "seg-000001.jsonl line 31")


# -- keys ---------------------------------------------------------------------------------------------


def _resign(records: list[dict[str, Any]], start: int, key: Ed25519PrivateKey) -> None:
    """Rechain from `start` and sign every checkpoint from there with `key` (covers recomputed)."""
    covered: list[str] = []
    for j, r in enumerate(records):
        if j >= start:
            r["prev_hash"] = records[j - 1]["entry_hash"]
            if r["type"] == chain.CHECKPOINT:
                cp = r["checkpoint"]
                cp.update(head_hash=r["prev_hash"], covers=covered, key_id=public_key_id(key.public_key()))
                payload = chain.signed_payload(
                    stream=r["stream"],
                    seq=r["seq"],
                    head_hash=cp["head_hash"],
                    counter=cp["counter"],
                    time=r["time"],
                    sealed=cp["sealed"],
                    covers=chain.covers_digest(covered),
                )
                r["signature"] = chain.b64(key.sign(payload))
            r["entry_hash"] = chain.recompute(r)
        covered = [] if r["type"] == chain.CHECKPOINT else covered
        covered.append(chain.cover(r["entry_hash"]))


def _publish(section: AuditSection, key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = public_key_id(key.public_key()).replace(":", "-")
    (Path(section.directory) / "public-keys" / f"{kid}.pub").write_bytes(base64.b64encode(raw) + b"\n")


def _fix_manifest(section: AuditSection, records: list[dict[str, Any]]) -> None:
    path = stream_dir(section) / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    last = records[-1]
    cp = last["checkpoint"]
    manifest["checkpoint"].update(
        entry_hash=last["entry_hash"],
        head_hash=cp["head_hash"],
        covers=chain.covers_digest(cp["covers"]),
        key_id=cp["key_id"],
        signature=last["signature"],
    )
    path.write_bytes(orjson.dumps(manifest))


def test_checkpoint_signed_with_an_unpublished_key(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    i = [j for j, r in enumerate(records) if r["type"] == chain.CHECKPOINT][2]
    _resign(records, i, Ed25519PrivateKey.generate())
    write_lines(seg, records)
    _fix_manifest(section, records)
    assert_named(section, "unknown_key", records[i]["seq"], "seg-000001.jsonl")


def test_chain_rewritten_and_resigned_with_a_published_key_mid_run(tmp_path: Path) -> None:
    """Someone who can write the folder adds their own public key and signs a rewritten chain with it. A
    writer signs a whole run with one key: a key change without a resume record is a forgery."""
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    cps = [j for j, r in enumerate(records) if r["type"] == chain.CHECKPOINT]
    key = Ed25519PrivateKey.generate()
    _publish(section, key)
    _resign(records, cps[2], key)
    write_lines(seg, records)
    _fix_manifest(section, records)
    assert_named(section, "unknown_key", records[cps[2]]["seq"], "seg-000001.jsonl")


# -- serialisation: the same record written differently ------------------------------------------------


def _edit_line(seg: Path, index: int, edit: Callable[[bytes], bytes]) -> int:
    lines = lines_of(seg)
    seq = int(orjson.loads(lines[index])["seq"])
    lines[index] = edit(lines[index])
    put_lines(seg, lines)
    return seq


EDITS: dict[str, Callable[[bytes], bytes]] = {
    "whitespace": lambda b: b.replace(b'","', b'", "', 1),
    "trailing_space": lambda b: b + b" ",
    "key_order": lambda b: orjson.dumps(dict(reversed(list(orjson.loads(b).items())))),
    "unicode_escape": lambda b: b.replace(b'"test.event"', b'"test.\\u0065vent"'),
    "slash_escape": lambda b: b.replace(b'"test.event"', b'"test\\/event"'),
    "nan": lambda b: b.replace(b'"i":4', b'"i":NaN'),
    "infinity": lambda b: b.replace(b'"i":4', b'"i":Infinity'),
    "overflow": lambda b: b.replace(b'"i":4', b'"i":1e400'),
    "big_int": lambda b: b.replace(b'"i":4', b'"i":' + b"9" * 40),
    "float_for_int": lambda b: b.replace(b'"i":4', b'"i":4.0'),
    "minus_zero": lambda b: b.replace(b'"i":4', b'"i":-0'),
    "nested_duplicate": lambda b: b.replace(b'"i":4', b'"i":4,"x":{"a":1,"a":2}'),
    "top_duplicate": lambda b: b.replace(b'"i":4', b'"i":5,"i":4'),
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "crlf": lambda b: b + b"\r",
    "nul": lambda b: b + b"\x00",
    "invalid_utf8": lambda b: b.replace(b'"test.event"', b'"test.\xff"'),
    "overlong_utf8": lambda b: b.replace(b'"test.event"', b'"test\xc0\xaeevent"'),
    "lone_surrogate": lambda b: b.replace(b'"test.event"', b'"test.\\ud800"'),
    "empty": lambda b: b"",
    "not_an_object": lambda b: b"[" + b + b"]",
    "deep_nesting": lambda b: b.replace(b'"i":4', b'"i":4,"x":' + b"[" * 900 + b"]" * 900),
}


@pytest.mark.parametrize("how", sorted(EDITS))
def test_reserialised_record_is_named(tmp_path: Path, how: str) -> None:
    section, seg = sealed_log(tmp_path)
    i = next(j for j, r in enumerate(read_lines(seg)) if r.get("i") == 4)
    seq = _edit_line(seg, i, EDITS[how])
    assert_named(section, {"modified", "corrupt"}, seq, f"seg-000001.jsonl line {i + 1}")


def test_reserialised_record_with_recomputed_hash(tmp_path: Path) -> None:
    """Rehashed over the non-canonical form: the canonical check still names it."""
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    i = next(j for j, r in enumerate(records) if r.get("i") == 4)
    records[i]["x"] = {"deep": [1.5, -0.0, "\u00e9"]}
    records[i]["entry_hash"] = chain.recompute(records[i])
    lines = lines_of(seg)
    lines[i] = orjson.dumps(records[i], option=orjson.OPT_INDENT_2).replace(b"\n", b"")
    put_lines(seg, lines)
    assert_named(section, "modified", records[i]["seq"], f"seg-000001.jsonl line {i + 1}")


def test_extra_empty_line_between_records(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    lines = lines_of(seg)
    seq = orjson.loads(lines[5])["seq"]
    lines.insert(5, b"")
    put_lines(seg, lines)
    assert_named(section, "corrupt", seq, "seg-000001.jsonl line 6")


@pytest.mark.parametrize(
    "field",
    [
        {"checkpoint": 5},
        {"checkpoint": {"counter": "x", "covers": [1, 2]}},
        {"checkpoint": {"sealed": "yes", "covers": None}},
        {"signature": 12},
        {"seq": True},
        {"time": ["x"]},
    ],
)
def test_malformed_checkpoint_fields_rehashed(tmp_path: Path, field: dict[str, Any]) -> None:
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    i = [j for j, r in enumerate(records) if r["type"] == chain.CHECKPOINT][2]
    seq = records[i]["seq"]
    records[i].update(field)
    rechain(records, i)
    write_lines(seg, records)
    assert_named(
        section, {"modified", "bad_signature", "corrupt", "unknown_key"}, seq, f"seg-000001.jsonl line {i + 1}"
    )


@pytest.mark.parametrize("previous", ["x", {"seq": "3"}, None, {"seq": [], "entry_hash": {}}])
def test_malformed_resume_record_rehashed(tmp_path: Path, previous: Any) -> None:
    section = section_for(tmp_path)
    write_records(section, 5)
    write_records(section, 5)
    seg = stream_dir(section) / "seg-000001.jsonl"
    records = read_lines(seg)
    i = next(j for j, r in enumerate(records) if r["type"] == chain.STREAM_RESUMED)
    records[i]["previous"] = previous
    rechain(records, i)
    write_lines(seg, records)
    assert_named(section, {"modified", "bad_signature"}, records[i]["seq"], f"seg-000001.jsonl line {i + 1}")


# -- size: no hang, no crash --------------------------------------------------------------------------


#: the longest line verify reads, lowered for these tests (records are far shorter; the real limit is
#: entries.MAX_LINE_BYTES, 256 MiB)
SMALL_LIMIT = 1 << 20


def test_very_long_line_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("owstack.compliance.entries.MAX_LINE_BYTES", SMALL_LIMIT, raising=False)
    section, seg = sealed_log(tmp_path)
    lines = lines_of(seg)
    seq = orjson.loads(lines[5])["seq"]
    lines[5] = lines[5][:-1] + b',"pad":"' + b"x" * (2 * SMALL_LIMIT) + b'"}'
    put_lines(seg, lines)
    d = assert_named(section, "corrupt", seq, "seg-000001.jsonl line 6")
    assert "longer than" in d.message


def test_huge_tail_without_a_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("owstack.compliance.entries.MAX_LINE_BYTES", SMALL_LIMIT, raising=False)
    section, seg = sealed_log(tmp_path)
    last = read_lines(seg)[-1]
    with seg.open("ab") as fh:
        fh.write(b"x" * (3 * SMALL_LIMIT))
    assert_named(section, "corrupt", last["seq"] + 1, "seg-000001.jsonl")


# -- the manifest -------------------------------------------------------------------------------------


def _manifest(section: AuditSection) -> tuple[Path, dict[str, Any]]:
    path = stream_dir(section) / "manifest.json"
    return path, orjson.loads(path.read_bytes())


@pytest.mark.parametrize(
    ("key", "value"),
    [("entry_hash", "0" * 64), ("segment", 2), ("offset", 7), ("seq", 3)],
)
def test_manifest_that_lies_about_its_checkpoint(tmp_path: Path, key: str, value: Any) -> None:
    section, _ = sealed_log(tmp_path)
    path, manifest = _manifest(section)
    manifest["checkpoint"][key] = value
    path.write_bytes(orjson.dumps(manifest))
    d = damage(section)
    assert d.kind in {"modified", "bad_signature", "corrupt", "truncated", "rewritten"}
    assert "manifest.json" in d.where, d


def test_manifest_names_another_stream(tmp_path: Path) -> None:
    section, _ = sealed_log(tmp_path)
    path, manifest = _manifest(section)
    manifest["stream"] = "testnode-7"
    path.write_bytes(orjson.dumps(manifest))
    assert "manifest.json" in damage(section).where


@pytest.mark.parametrize("checkpoint", ["x", 5, [], None, {"seq": {}}])
def test_manifest_with_a_malformed_checkpoint(tmp_path: Path, checkpoint: Any) -> None:
    section, _ = sealed_log(tmp_path)
    path, manifest = _manifest(section)
    manifest["checkpoint"] = checkpoint
    path.write_bytes(orjson.dumps(manifest))
    assert "manifest.json" in damage(section).where


def test_manifest_copied_from_another_stream(tmp_path: Path) -> None:
    section = two_streams(tmp_path)
    a, b = stream_dir(section, "testnode-0"), stream_dir(section, "testnode-1")
    shutil.copyfile(b / "manifest.json", a / "manifest.json")
    d = damage(section)
    assert d.stream == "testnode-0" and "manifest.json" in d.where


@pytest.mark.parametrize("name", ["manifest.json", "pruned.json", "public-key"])
def test_special_files_that_are_not_files(tmp_path: Path, name: str) -> None:
    section, _ = sealed_log(tmp_path)
    if name == "public-key":
        path = next((Path(section.directory) / "public-keys").glob("*.pub"))
    else:
        path = stream_dir(section) / name
    path.unlink(missing_ok=True)
    path.mkdir()
    cli_reports_damage(section)


# -- legitimate logs still verify ---------------------------------------------------------------------


def _crashed_log(tmp_path: Path) -> tuple[AuditSection, Path]:
    """What a kill -9 leaves: a snapshot of the folder while a writer was live (its lock then released)."""
    section = section_for(tmp_path)
    writer = AuditWriter(section).start()
    for i in range(15):
        writer.append_sync({"type": "test.event", "i": i})
    snapshot = tmp_path / "snapshot"
    shutil.copytree(section.directory, snapshot)
    writer.close()
    shutil.rmtree(section.directory)
    snapshot.rename(section.directory)
    assert verify(Path(section.directory)).streams[0].state == "crashed"
    return section, stream_dir(section) / "seg-000001.jsonl"


def test_a_crash_recovered_stream_with_a_torn_tail_verifies(tmp_path: Path) -> None:
    """A kill -9 leaves what a live writer had fsynced (a snapshot of the folder) plus maybe a torn write."""
    section, seg = _crashed_log(tmp_path)
    with seg.open("ab") as fh:
        fh.write(b'{"entry_hash":"4a1')  # the start of a record the crash tore
    report = verify(Path(section.directory))
    assert report.ok and report.streams[0].state == "crashed", report.damage
    write_records(section, 3)
    report = verify(Path(section.directory))
    assert report.ok and report.streams[0].state == "sealed", report.damage


def test_rotated_and_pruned_streams_verify(tmp_path: Path) -> None:
    section = two_streams(tmp_path, n=60)
    write_records(section, 4)  # a second run resumes testnode-0
    plans = retention.plan(Path(section.directory), cutoff="9999")
    assert plans
    writer = AuditWriter(section)
    retention.apply(plans, writer.keys, cutoff="9999")
    report = verify(Path(section.directory))
    assert report.ok, report.damage
    assert all(s.pruned_before_seq for s in report.streams)


# -- more replays and key files -----------------------------------------------------------------------


def test_a_stream_replayed_from_another_system_names_its_first_record(tmp_path: Path) -> None:
    """Another installation with the same node name writes a stream of the same name (same genesis): its
    segment copied over ours links up, but its checkpoints are signed by a key this log does not hold."""
    section, seg = sealed_log(tmp_path / "ours")
    other, other_seg = sealed_log(tmp_path / "theirs", n=12)
    shutil.copyfile(other_seg, seg)
    shutil.copyfile(stream_dir(other) / "manifest.json", stream_dir(section) / "manifest.json")
    assert_named(section, "unknown_key", 1, "seg-000001.jsonl line 1")


def test_a_segment_from_another_stream_appended_after_the_seal(tmp_path: Path) -> None:
    section = two_streams(tmp_path)
    a, b = segments(section, "testnode-0"), segments(section, "testnode-1")
    extra = a[-1].with_name(f"seg-{len(a) + 1:06d}.jsonl")
    shutil.copyfile(b[-1], extra)
    first = read_lines(a[-1])[-1]["seq"] + 1
    assert_named(section, {"inserted", "appended_after_seal", "deleted", "reordered"}, first, extra.name)


def test_the_first_kept_segment_deleted_after_pruning(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    cutoff = read_lines(segments(section)[2])[0]["time"]  # segments 1 and 2 are older
    plans = retention.plan(Path(section.directory), cutoff=cutoff)
    retention.apply(plans, AuditWriter(section).keys, cutoff=cutoff)
    assert verify(Path(section.directory)).ok
    kept = segments(section)
    assert kept[0].name == "seg-000003.jsonl" and len(kept) > 1
    first = read_lines(kept[0])[0]["seq"]
    kept[0].unlink()
    assert_named(section, "segment_missing", first, kept[0].name)


def test_a_public_key_file_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    section, _ = sealed_log(tmp_path)
    os.mkfifo(Path(section.directory) / "public-keys" / "zz-fifo.pub")
    code = (
        "import sys; from pathlib import Path; from owstack.compliance.verify import verify;"
        "print(verify(Path(sys.argv[1])).ok)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code, section.directory], capture_output=True, timeout=60, env=env, check=False
    )
    assert proc.stdout.strip() == b"True", proc.stderr


def test_every_checkpoint_removed_and_chain_renumbered(tmp_path: Path) -> None:
    """No signature left to check: but a writer signs a checkpoint in the same write as its opening record."""
    section, seg = sealed_log(tmp_path)
    records = [r for r in read_lines(seg) if r["type"] != chain.CHECKPOINT]
    for n, r in enumerate(records, start=1):
        r["seq"] = n
    rechain(records, 1)
    write_lines(seg, records)
    assert_named(section, "deleted", 2, "seg-000001.jsonl line 2")


def test_whole_file_converted_to_crlf(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    seg.write_bytes(seg.read_bytes().replace(b"\n", b"\r\n"))
    assert_named(section, "modified", 1, "seg-000001.jsonl line 1")


def test_an_earlier_segment_replayed_in_place_of_a_later_one(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    replaced = read_lines(segs[2])[0]
    shutil.copyfile(segs[1], segs[2])
    d = assert_named(section, {"reordered", "inserted", "deleted"}, read_lines(segs[1])[0]["seq"], segs[2].name)
    assert replaced["seq"] > d.seq


def test_a_run_forged_after_a_crash_is_named_at_its_resume_record(tmp_path: Path) -> None:
    """After a crash anyone can append a resume record; its checkpoint must be signed by a stored key."""
    section, seg = _crashed_log(tmp_path)
    records = read_lines(seg)
    last = records[-1]
    resume = {
        "type": chain.STREAM_RESUMED,
        "gateway_version": "x",
        "node": "testnode",
        "pid": 1,
        "previous": {"seq": last["seq"], "entry_hash": last["entry_hash"], "sealed": False},
        "torn": None,
        "stream": STREAM,
        "time": last["time"],
        "seq": last["seq"] + 1,
        "prev_hash": last["entry_hash"],
    }
    resume["entry_hash"] = chain.recompute(resume)
    cp = {"type": chain.CHECKPOINT, "stream": STREAM, "time": last["time"], "seq": resume["seq"] + 1}
    cp["checkpoint"] = {"counter": 99, "sealed": True, "covers": [], "head_hash": "", "key_id": ""}
    cp["signature"] = ""
    forged = [*records, resume, cp, {**records[-1], "seq": cp["seq"] + 1, "i": 666}]
    _resign(forged, len(records), Ed25519PrivateKey.generate())
    write_lines(seg, forged)
    assert_named(section, "unknown_key", resume["seq"], "seg-000001.jsonl")


def test_a_stream_folder_that_is_a_symlink(tmp_path: Path) -> None:
    section = two_streams(tmp_path)
    b = stream_dir(section, "testnode-1")
    shutil.move(b, tmp_path / "moved")
    b.symlink_to(tmp_path / "moved")
    d = damage(section)
    assert (d.kind, d.stream) == ("corrupt", "testnode-1")


def test_segment_numbers_far_apart_do_not_flood_the_report(tmp_path: Path) -> None:
    section, seg = sealed_log(tmp_path)
    shutil.copyfile(seg, seg.with_name("seg-999999.jsonl"))
    d = damage(section)
    assert d.kind == "segment_missing" and len(d.message) < 500 and "in all" in d.message
    (Path(section.directory) / "streams" / "testnode-99999").mkdir()
    report = verify(Path(section.directory))
    assert len(report.damage) < 300


def test_seq_changed_and_rehashed(tmp_path: Path) -> None:
    """The record still links to the one before it: its place is known, its seq was changed."""
    section, seg = sealed_log(tmp_path)
    records = read_lines(seg)
    seq = records[8]["seq"]
    records[8]["seq"] += 5
    records[8]["entry_hash"] = chain.recompute(records[8])
    write_lines(seg, records)
    assert_named(section, "modified", seq, "seg-000001.jsonl line 9")


@pytest.mark.parametrize("where", ["first_line", "last_line"])
def test_bom_or_empty_line_at_the_ends_of_a_file(tmp_path: Path, where: str) -> None:
    section, seg = sealed_log(tmp_path)
    data = seg.read_bytes()
    if where == "first_line":
        seg.write_bytes(b"\xef\xbb\xbf" + data)
        assert_named(section, "corrupt", 1, "seg-000001.jsonl line 1")
    else:
        seg.write_bytes(data + b"\n")
        last = orjson.loads(data.splitlines()[-1])
        assert_named(section, "corrupt", last["seq"] + 1, f"seg-000001.jsonl line {len(data.splitlines()) + 1}")


def test_the_printed_damage_line_names_stream_segment_and_seq(tmp_path: Path) -> None:
    section = segmented_log(tmp_path)
    segs = segments(section)
    first = read_lines(segs[1])[0]["seq"]
    segs[1].unlink()
    result = runner.invoke(app, ["audit", "verify", "--dir", section.directory])
    assert result.exit_code == 1
    assert f"damage: stream {STREAM}, {segs[1].name} (seq {first}): segment_missing" in result.output, result.output


def test_a_torn_tail_that_does_not_continue_the_chain(tmp_path: Path) -> None:
    """Bytes appended to a crashed stream without a newline pass for a torn write only if they begin the
    record the writer would have written next: here its prev_hash (far into the line) is wrong."""
    section, seg = _crashed_log(tmp_path)
    last = read_lines(seg)[-1]
    forged = {"actor": {"tenant": "acme", "note": "y" * 600}, "entry_hash": "0" * 64, "i": 1}
    forged.update(prev_hash="f" * 64, seq=last["seq"] + 1, stream=STREAM, time=last["time"], type="test.event")
    with seg.open("ab") as fh:
        fh.write(orjson.dumps(forged, option=orjson.OPT_SORT_KEYS))
    assert_named(section, "corrupt", last["seq"] + 1, "seg-000001.jsonl")
    forged["prev_hash"] = last["entry_hash"]  # the same bytes with the right link: a torn write, as after a crash
    seg.write_bytes(
        b"".join(line + b"\n" for line in lines_of(seg)[:-1]) + orjson.dumps(forged, option=orjson.OPT_SORT_KEYS)
    )
    report = verify(Path(section.directory))
    assert report.ok and report.streams[0].torn is not None, report.damage


def test_a_sparse_segment_of_terabytes_is_refused_quickly(tmp_path: Path) -> None:
    """A file of zeros without a newline costs one line limit's worth of reading (256 MiB), not the file's
    size (run apart, with its memory limited: the old reader kept the whole line)."""
    section = segmented_log(tmp_path)
    segs = segments(section)
    records = read_lines(segs[1])
    with segs[1].open("r+b") as fh:
        fh.truncate(1 << 40)  # 1 TiB, sparse: after its records, a line of NUL bytes as long as the disk
    kind, seq, where = _verify_apart(section)
    assert (kind, seq) == ("corrupt", records[-1]["seq"] + 1) and f"{segs[1].name} line {len(records) + 1}" in where


def test_a_top_level_manifest_that_is_a_fifo(tmp_path: Path) -> None:
    empty = tmp_path / "audit"
    (empty / "streams").mkdir(parents=True)
    os.mkfifo(empty / "manifest.json")
    code = (
        "import sys; from pathlib import Path; from owstack.compliance.verify import verify;"
        "print(verify(Path(sys.argv[1])).damage[0].kind)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(empty)], capture_output=True, timeout=60, env=env, check=False
    )
    assert proc.stdout.strip() == b"corrupt", proc.stderr[-2000:]
