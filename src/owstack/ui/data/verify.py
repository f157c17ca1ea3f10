"""The audit chain check, on demand: `owstack audit verify --json` in a child process (it reads every
record, and must not hold the gateway's interpreter while it does), its outcome kept in
`console_verifications` so that the compliance page can say when the chain was last found intact.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from owstack.ui.tables import console_verifications

#: the check's longest run before it is stopped and recorded as unfinished
TIMEOUT_S = 3600.0


def last(conn: sa.Connection) -> dict[str, Any] | None:
    t = console_verifications.c
    row = conn.execute(sa.select(console_verifications).order_by(t.id.desc()).limit(1)).mappings().first()
    return None if row is None else dict(row)


def started(conn: sa.Connection, actor: str) -> int:
    with conn.begin():
        got = conn.execute(console_verifications.insert().values(started_at=datetime.now(UTC), actor=actor[:200]))
    key = got.inserted_primary_key
    assert key is not None
    return int(key[0])


def finished(conn: sa.Connection, row_id: int, outcome: dict[str, Any]) -> None:
    with conn.begin():
        conn.execute(
            console_verifications.update()
            .where(console_verifications.c.id == row_id)
            .values(finished_at=datetime.now(UTC), **outcome)
        )


def summarize(code: int | None, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    """The row's outcome from the child's exit code and JSON report."""
    try:
        report = orjson.loads(stdout)
    except orjson.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        reason = (stderr.decode(errors="replace").strip().splitlines() or [f"exit code {code}"])[-1]
        return {"ok": False, "records": None, "streams": None, "summary": f"verify did not run: {reason}"[:2000]}
    damage = report.get("damage") or []
    lines = [f"stream {d.get('stream')}, {d.get('where')}: {d.get('kind')}: {d.get('message')}" for d in damage]
    return {
        "ok": bool(report.get("ok")) and code == 0,
        "records": int(report.get("records") or 0),
        "streams": len(report.get("streams") or []),
        "summary": ("\n".join(lines) if lines else "intact")[:2000],
    }


async def run(directory: Path) -> dict[str, Any]:
    """Run the check on `directory`; its outcome (for `finished`)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "owstack", "audit", "verify", "--dir", str(directory), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"ok": None, "records": None, "streams": None, "summary": f"stopped after {TIMEOUT_S:.0f} s"}
    except asyncio.CancelledError:  # the console is stopping: so does the check
        proc.kill()
        raise
    return summarize(proc.returncode, stdout, stderr)
