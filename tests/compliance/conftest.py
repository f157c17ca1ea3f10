"""Shared fixtures: an audit section and config pointing at a temporary directory, and log surgery helpers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from owstack.compliance import chain
from owstack.compliance.config import AuditSection
from owstack.compliance.writer import Appended, AuditWriter
from owstack.config.load import Config, from_dict


def section_for(tmp: Path, **over: Any) -> AuditSection:
    values: dict[str, Any] = {
        "directory": str(tmp / "audit"),
        "keys_directory": str(tmp / "keys"),
        "node": "testnode",
        "checkpoint_every_records": 10,
        "checkpoint_every_s": 3600,
    }
    values.update(over)
    return AuditSection(**values)


@pytest.fixture
def section(tmp_path: Path) -> AuditSection:
    return section_for(tmp_path)


def config_for(tmp: Path, **audit: Any) -> Config:
    raw = {
        "audit": section_for(tmp, **audit).model_dump(),
        "tenants": {"acme": {"capture_content": True}, "globex": {}},
    }
    return from_dict(raw, source=str(tmp / "owstack.yaml"))


def write_records(section: AuditSection, n: int, *, close: bool = True, **fields: Any) -> list[Appended]:
    writer = AuditWriter(section).start()

    async def go() -> list[Appended]:
        return list(await asyncio.gather(*[writer.append({"type": "test.event", "i": i, **fields}) for i in range(n)]))

    acked = asyncio.run(go())
    if close:
        writer.close()
    return acked


def stream_dir(section: AuditSection, name: str = "testnode-0") -> Path:
    return Path(section.directory) / "streams" / name


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(chain.canonical(r) + b"\n" for r in records))


def rechain(records: list[dict[str, Any]], start: int) -> None:
    """Recompute prev/entry hashes from index `start` on (what an attacker without the signing key can do)."""
    for i in range(start, len(records)):
        if i > 0:
            records[i]["prev_hash"] = records[i - 1]["entry_hash"]
        records[i]["entry_hash"] = chain.recompute(records[i])
