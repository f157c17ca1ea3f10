"""The group-commit writer: durability of acknowledged records, chaining, resume, failure handling."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from owstack.compliance import chain
from owstack.compliance import writer as writer_module
from owstack.compliance.config import AuditSection
from owstack.compliance.verify import verify
from owstack.compliance.writer import AuditUnavailable, AuditWriter

from .conftest import read_lines, section_for, stream_dir


def test_concurrent_appends_are_all_on_disk_and_chained(section: AuditSection) -> None:
    writer = AuditWriter(section).start()

    async def task(t: int) -> list[tuple[str, int, str]]:
        out = []
        for i in range(25):
            done = await writer.append({"type": "test.event", "task": t, "i": i})
            out.append((done.stream, done.seq, done.entry_hash))
        return out

    async def main() -> list[tuple[str, int, str]]:
        results = await asyncio.gather(*[task(t) for t in range(40)])
        return [x for r in results for x in r]

    acked = asyncio.run(main())
    # group commit: far fewer fsync batches than records while 40 tasks wait on each other
    assert writer.batches_written < writer.records_written == 1001  # 1000 and the stream_opened record
    writer.close()
    records = read_lines(stream_dir(section) / "seg-000001.jsonl")
    by_seq = {r["seq"]: r for r in records}
    for stream, seq, digest in acked:
        assert stream == "testnode-0"
        assert by_seq[seq]["entry_hash"] == digest
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    for prev, cur in itertools.pairwise(records):
        assert cur["prev_hash"] == prev["entry_hash"]
        assert chain.recompute(cur) == cur["entry_hash"]
    assert {(r["task"], r["i"]) for r in records if r["type"] == "test.event"} == {
        (t, i) for t in range(40) for i in range(25)
    }
    cps = [r for r in records if r["type"] == chain.CHECKPOINT]
    assert [c["checkpoint"]["counter"] for c in cps] == list(range(1, len(cps) + 1))
    assert cps[-1]["checkpoint"]["sealed"] is True and records[-1] is cps[-1]
    report = verify(Path(section.directory))
    assert report.ok and report.streams[0].state == "sealed"


def test_a_second_run_resumes_the_same_stream(section: AuditSection) -> None:
    for _ in range(2):
        writer = AuditWriter(section).start()
        writer.append_sync({"type": "admin.test"})
        writer.close()
    records = read_lines(stream_dir(section) / "seg-000001.jsonl")
    resumed = [r for r in records if r["type"] == chain.STREAM_RESUMED]
    assert len(resumed) == 1 and resumed[0]["previous"]["sealed"] is True
    report = verify(Path(section.directory))
    assert report.ok, report.damage
    assert report.streams[0].records == len(records)


def test_concurrent_writers_get_their_own_streams(section: AuditSection) -> None:
    a, b = AuditWriter(section).start(), AuditWriter(section).start()
    assert {a.stream, b.stream} == {"testnode-0", "testnode-1"}
    a.append_sync({"type": "x"})
    b.append_sync({"type": "y"})
    live = verify(Path(section.directory))
    assert live.ok and {s.state for s in live.streams} == {"live"}
    a.close()
    b.close()
    assert {s.state for s in verify(Path(section.directory)).streams} == {"sealed"}


def test_segments_rotate_and_verify(tmp_path: Path) -> None:
    section = section_for(tmp_path, segment_max_bytes=4096)
    writer = AuditWriter(section).start()
    for i in range(60):
        writer.append_sync({"type": "test.event", "i": i, "pad": "x" * 100})
    writer.close()
    segments = sorted(stream_dir(section).glob("seg-*.jsonl"))
    assert len(segments) > 2
    # every new segment starts with a signed checkpoint
    for seg in segments[1:]:
        assert read_lines(seg)[0]["type"] == chain.CHECKPOINT
    assert verify(Path(section.directory)).ok


def test_a_failed_write_fails_its_records_then_the_writer_recovers_by_itself(section: AuditSection) -> None:
    """The disk fills up (the segment's descriptor swapped for /dev/full) and the next segment cannot be
    created (a directory stands in its place): the batch fails, the writer refuses, and keeps trying; once the
    cause is gone it writes again without a restart, and the chain verifies with no trace of the lost record."""
    writer = AuditWriter(section).start()
    writer.append_sync({"type": "ok"})
    full = os.open("/dev/full", os.O_WRONLY)
    os.close(writer._fd)  # type: ignore[arg-type]
    writer._fd = full
    blocker = writer._segment_path(writer._tail.segment + 1)
    blocker.mkdir()
    with pytest.raises(AuditUnavailable, match="No space left on device"):
        writer.append_sync({"type": "lost"})
    assert not writer.healthy
    with pytest.raises(AuditUnavailable, match="write failed"):
        writer.append_sync({"type": "refused"})
    assert wait_until(lambda: writer.failures >= 3)  # it keeps trying (and failing) on its own
    assert not writer.healthy
    blocker.rmdir()  # the cause goes away
    assert wait_until(lambda: writer.healthy)
    writer.append_sync({"type": "after"})
    writer.close()
    types = [r["type"] for seg in sorted(stream_dir(section).glob("seg-*.jsonl")) for r in read_lines(seg)]
    assert "ok" in types and "after" in types and "lost" not in types and "refused" not in types
    assert verify(Path(section.directory)).ok


def wait_until(predicate: Any, timeout: float = 60.0) -> bool:
    """Poll until `predicate` holds (the timeout only bounds a failing run)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_an_unwritable_directory_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("not a directory")
    with pytest.raises(AuditUnavailable, match="audit"):
        AuditWriter(section_for(tmp_path)).start()


def test_a_record_that_is_not_json_fails_alone(section: AuditSection) -> None:
    writer = AuditWriter(section).start()
    with pytest.raises(TypeError):
        writer.append_sync({"type": "bad", "value": object()})
    assert writer.healthy
    assert writer.append_sync({"type": "good"}).seq == 3  # opened=1, checkpoint=2, good=3
    writer.close()
    assert verify(Path(section.directory)).ok


def test_keys_are_private_files_apart_from_the_log(section: AuditSection) -> None:
    AuditWriter(section).start().close()
    keys = Path(section.keys_directory)
    for name in ("pseudonym.key", "signing.key"):
        assert (keys / name).stat().st_mode & 0o777 == 0o600
    assert keys.stat().st_mode & 0o777 == 0o700
    pubs = list((Path(section.directory) / "public-keys").glob("*.pub"))
    assert len(pubs) == 1
    secret = (keys / "signing.key").read_text().strip()
    for path in Path(section.directory).rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace")


def test_keys_inside_the_log_are_a_config_error(tmp_path: Path) -> None:
    from owstack.errors import ConfigError

    with pytest.raises(ConfigError, match="keys_directory"):
        AuditWriter(AuditSection(directory=str(tmp_path), keys_directory=str(tmp_path / "keys")))


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.sampled_from([writer_module._SLOT]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@given(
    fields=st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k != "entry_hash"), _VALUES, max_size=6)
)
def test_the_line_serialised_once_is_the_canonical_record_with_its_chain_hash(fields: dict[str, Any]) -> None:
    """`_hashed_line` (one serialisation, the hash spliced into a placeholder) gives exactly the line and hash
    the two-pass definition does (`chain.entry_hash` of the record without it), keys sorting before and after
    `entry_hash`, and also when a value holds the placeholder itself (then it serialises twice)."""
    record = {"type": "test.event", **fields}
    prev = "0" * 64
    line = writer_module._hashed_line(prev, dict(record))
    expected = {**record, "entry_hash": chain.entry_hash(prev, record)}
    assert line == chain.canonical(expected)


def test_pseudonym_hmac_from_precomputed_pads_is_rfc_2104_hmac() -> None:
    """`AuditKeys.hmac` keeps the key's padded SHA-256 states instead of calling `hmac.digest`: the digests
    recorded in audit logs must stay the standard HMAC-SHA256 (keys shorter, equal to and longer than a block)."""
    import hmac as std_hmac

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from owstack.compliance.keys import AuditKeys

    for size in (16, 32, 64, 65, 200):
        secret = os.urandom(size)
        keys = AuditKeys(secret, "p", Ed25519PrivateKey.generate(), "s")
        for data in (b"", b"abc", os.urandom(5000)):
            assert keys.hmac(data) == std_hmac.digest(secret, data, "sha256").hex()


def test_a_shipper_following_the_live_segment_by_its_size_reads_every_record(section: AuditSection) -> None:
    """Log shippers (Filebeat, Fluent Bit, Vector, `tail -F`) read a file as its size grows: every
    acknowledged record must be in the bytes up to the file's size, whole lines, nothing else (no
    preallocated zeros: docs/compliance.md, "How the log is stored")."""
    writer = AuditWriter(section).start()
    path = stream_dir(section) / "seg-000001.jsonl"
    offset, shipped = 0, []
    try:
        for i in range(30):
            done = asyncio.run(writer.append({"type": "test.event", "i": i}))
            size = os.stat(path).st_size
            with path.open("rb") as fh:  # what a shipper does: read from its offset up to the size now
                fh.seek(offset)
                chunk = fh.read(size - offset)
            assert b"\0" not in chunk and chunk.endswith(b"\n")
            shipped += [orjson.loads(line) for line in chunk.splitlines()]
            offset = size
            assert {"seq": done.seq, "hash": done.entry_hash} in [
                {"seq": r["seq"], "hash": r["entry_hash"]} for r in shipped
            ]
    finally:
        writer.close()
    assert [r["i"] for r in shipped if r["type"] == "test.event"] == list(range(30))
