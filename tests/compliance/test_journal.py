"""The audit journal: commits made durable in a preallocated journal, the segment fsynced only at lap ends;
after a crash of the host, what the segment lacks is copied back from the journal, and nothing else.

A host crash is simulated by copying a live stream (what the page cache holds) and cutting or zeroing the
copy's segment after the journal's lap start (what the disk may lack: only that far was the segment fsynced).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from owstack.compliance import journal
from owstack.compliance.config import AuditSection
from owstack.compliance.verify import verify
from owstack.compliance.writer import Appended, AuditWriter

from .conftest import read_lines, section_for, stream_dir


def _append(writer: AuditWriter, n: int, tasks: int = 8) -> list[Appended]:
    async def task(t: int) -> list[Appended]:
        return [await writer.append({"type": "test.event", "t": t, "i": i}) for i in range(n // tasks)]

    async def main() -> list[Appended]:
        return [a for part in await asyncio.gather(*[task(t) for t in range(tasks)]) for a in part]

    return asyncio.run(main())


def _crash_image(section: AuditSection, tmp_path: Path) -> tuple[AuditSection, Path]:
    """A copy of the live log, as the page cache holds it, and the copy's stream directory."""
    image = section_for(tmp_path / "image", keys_directory=section.keys_directory)
    shutil.copytree(section.directory, image.directory, ignore=shutil.ignore_patterns(".*.tmp"))
    return image, stream_dir(image)


def _lap(stream: Path) -> journal.Lap:
    lap = journal._header((stream / journal.JOURNAL).read_bytes()[: journal.HEADER_BYTES], stream.name)
    assert lap is not None
    return lap


def _resumed(image: AuditSection) -> list[dict[str, Any]]:
    """Continue the crash image with a new writer, seal it; its records."""
    writer = AuditWriter(image).start()
    writer.close()
    report = verify(Path(image.directory))
    assert report.ok, report.damage
    segs = sorted(stream_dir(image).glob("seg-*.jsonl"))
    return [r for seg in segs for r in read_lines(seg)]


def _acked_all_there(acked: list[Appended], records: list[dict[str, Any]]) -> None:
    by_seq = {r["seq"]: r["entry_hash"] for r in records}
    lost = [a.seq for a in acked if by_seq.get(a.seq) != a.entry_hash]
    assert not lost, f"{len(lost)} acknowledged records lost, seq {lost[:5]}"


def test_records_a_host_crash_cut_from_the_segment_are_copied_back(section: AuditSection, tmp_path: Path) -> None:
    writer = AuditWriter(section).start()
    try:
        acked = _append(writer, 200)
        image, stream = _crash_image(section, tmp_path)
        assert writer._journal is not None and writer._journal.laps == 1  # one lap: the segment fsynced once
    finally:
        writer.close()
    lap = _lap(stream)
    seg = stream / "seg-000001.jsonl"
    full = seg.read_bytes()
    assert lap.segment == 1 and 0 < lap.offset < len(full) - 5000
    with seg.open("r+b") as fh:  # the disk had the segment up to the lap and 700 bytes more (half a record)
        fh.truncate(lap.offset + 700)
    assert journal.recover(stream) > 150
    assert seg.read_bytes() == full  # the same bytes, not a rewritten chain
    _acked_all_there(acked, _resumed(image))


def test_a_page_of_zeros_inside_the_segment_is_filled_from_the_journal(section: AuditSection, tmp_path: Path) -> None:
    """A file system may leave a page unwritten (zeros) before one it wrote; its size can cover both."""
    writer = AuditWriter(section).start()
    try:
        acked = _append(writer, 120)
        image, stream = _crash_image(section, tmp_path)
    finally:
        writer.close()
    seg = stream / "seg-000001.jsonl"
    full = seg.read_bytes()
    at = _lap(stream).offset + 4096
    with seg.open("r+b") as fh:
        fh.seek(at)
        fh.write(bytes(4096))
    assert journal.recover(stream) >= 1
    assert seg.read_bytes() == full
    _acked_all_there(acked, _resumed(image))


def test_a_segment_holding_other_bytes_than_the_journal_is_left_alone(section: AuditSection, tmp_path: Path) -> None:
    """The journal only fills in what is missing: an edited record is not overwritten (verify reports it)."""
    writer = AuditWriter(section).start()
    try:
        _append(writer, 120)
        _, stream = _crash_image(section, tmp_path)
    finally:
        writer.close()
    seg = stream / "seg-000001.jsonl"
    data = bytearray(seg.read_bytes())
    at = _lap(stream).offset + 300
    data[at] = ord("Z") if data[at] != ord("Z") else ord("Y")
    cut = bytes(data[: at + 2000])
    seg.write_bytes(cut)
    assert journal.recover(stream) == 0
    assert seg.read_bytes() == cut


def test_laps_wrap_and_bytes_of_an_older_lap_are_never_taken(
    section: AuditSection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "JOURNAL_BYTES", 24 * 1024)
    writer = AuditWriter(section).start()
    try:
        acked = _append(writer, 400)
        acked += [writer.append_sync({"type": "test.event", "last": i}) for i in range(3)]  # some in this lap
        assert writer._journal is not None and writer._journal.laps >= 4
        image, stream = _crash_image(section, tmp_path)
    finally:
        writer.close()
    lap = _lap(stream)
    data = (stream / journal.JOURNAL).read_bytes()
    records, length = journal._chained(data[journal.HEADER_BYTES :], lap)
    tail = data[journal.HEADER_BYTES + length :]
    stale = [orjson.loads(line) for line in tail.split(b"\n")[1:-1] if line.startswith(b"{")]
    assert records and stale and all(r["seq"] <= lap.seq for r in stale)  # an older lap's records lie after this lap's
    seg = stream / "seg-000001.jsonl"
    full = seg.read_bytes()
    with seg.open("r+b") as fh:
        fh.truncate(lap.offset)
    assert journal.recover(stream) == len(records)
    assert seg.read_bytes() == full[: lap.offset + length]
    _acked_all_there(acked, _resumed(image))


def test_a_crash_after_segments_rotate_loses_nothing(tmp_path: Path) -> None:
    section = section_for(tmp_path, segment_max_bytes=8192)
    writer = AuditWriter(section).start()
    try:
        acked = _append(writer, 240)
        image, stream = _crash_image(section, tmp_path)
    finally:
        writer.close()
    segs = sorted(stream.glob("seg-*.jsonl"))
    lap = _lap(stream)
    assert len(segs) > 3 and segs[-1].name == f"seg-{lap.segment:06d}.jsonl"
    with segs[-1].open("r+b") as fh:
        fh.truncate(lap.offset)
    journal.recover(stream)
    _acked_all_there(acked, _resumed(image))


def test_a_batch_whose_journal_write_failed_is_not_recovered(
    section: AuditSection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its records were refused and the chain rolled back: the journal must not bring them back."""
    writer = AuditWriter(section).start()
    try:
        _append(writer, 40)
        real = os.fdatasync
        failing = True

        def fdatasync(fd: int) -> None:
            nonlocal failing
            if writer._journal is not None and fd == writer._journal._fd and failing:
                failing = False
                raise OSError(5, "Input/output error")
            real(fd)

        monkeypatch.setattr(os, "fdatasync", fdatasync)
        with pytest.raises(Exception, match="Input/output error"):
            writer.append_sync({"type": "test.refused"})
        monkeypatch.setattr(os, "fdatasync", real)
        data = (stream_dir(section) / journal.JOURNAL).read_bytes()
    finally:
        writer.close()
    assert b"test.refused" not in data
