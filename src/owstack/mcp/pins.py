"""Tool pinning: a canonical digest per tool definition, and the store of approved digests.

    definition = canonical(tool)                 name, title, description, schemas, annotations (no _meta)
    digest = digest_of(definition)               SHA-256 over canonical JSON (sorted keys, no whitespace)
    store = PinStore(url)                        SQLite or PostgreSQL (`storage.url`), migrated on open
    store.observe(...)                           record a definition when first seen (pending or approved)
    store.approve("files", "read_file")          approve its newest pending definition
    store.approved()                             {(server, tool): digest} of every approved tool

A tool is served only while its upstream's current definition has the approved digest: a changed
description, schema or annotation (a rug pull) withholds it until an operator approves the new digest,
and a renamed tool is a new name that waits like any other (see owstack.mcp.catalog).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc

from owstack.mcp.tables import mcp_pin_revision, mcp_pins

PENDING, APPROVED, SUPERSEDED = "pending", "approved", "superseded"
#: the fields of a tool definition that the digest covers (what a client shows to its model)
PINNED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


def canonical(tool: dict[str, Any]) -> dict[str, Any]:
    """The pinned part of a tool definition as sent on the wire (camelCase keys)."""
    return {k: tool[k] for k in PINNED_FIELDS if tool.get(k) is not None}


def digest_of(definition: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()


def diff(old: dict[str, Any] | None, new: dict[str, Any], *, limit: int = 60) -> list[str]:
    """A unified diff of two definitions (pretty JSON), at most `limit` lines, for the audit log and CLI."""
    before = json.dumps(old or {}, indent=1, sort_keys=True, ensure_ascii=True).splitlines()
    after = json.dumps(new, indent=1, sort_keys=True, ensure_ascii=True).splitlines()
    lines = list(difflib.unified_diff(before, after, "approved", "served", n=1, lineterm=""))
    return lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else [])


@dataclass(frozen=True, slots=True)
class Pin:
    server: str
    tool: str
    digest: str
    state: str
    definition: dict[str, Any]
    findings: list[dict[str, Any]]
    renamed_from: str | None
    first_seen_at: datetime
    decided_at: datetime | None
    decided_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": f"{self.server}.{self.tool}",
            "digest": self.digest,
            "state": self.state,
            "findings": self.findings,
            "renamed_from": self.renamed_from,
            "first_seen_at": self.first_seen_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "definition": self.definition,
        }


class PinNotFound(LookupError):
    """No pending definition (or no definition with that digest) for the tool."""


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pin(row: Any) -> Pin:
    first = _utc(row.first_seen_at)
    assert first is not None
    return Pin(
        row.server,
        row.tool,
        row.digest,
        row.state,
        json.loads(row.definition),
        json.loads(row.findings),
        row.renamed_from,
        first,
        _utc(row.decided_at),
        row.decided_by,
    )


class PinStore:
    """Pins in the `mcp_pins` table. Synchronous (SQLAlchemy Core): the gateway calls it off the loop."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        from owstack import storage

        if migrate:
            storage.migrate(url)
        self.url = url
        self._engine = storage.engine(url)

    def revision(self) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(mcp_pin_revision.c.revision).where(mcp_pin_revision.c.id == 1)).scalar()
        return int(value or 0)

    def approved(self) -> dict[tuple[str, str], str]:
        """The approved digest of every tool that has one."""
        query = sa.select(mcp_pins.c.server, mcp_pins.c.tool, mcp_pins.c.digest).where(mcp_pins.c.state == APPROVED)
        with self._engine.connect() as conn:
            return {(r.server, r.tool): r.digest for r in conn.execute(query)}

    def known(self, server: str) -> dict[tuple[str, str], str]:
        """(tool, digest) -> state for every definition of `server` ever seen."""
        query = sa.select(mcp_pins.c.tool, mcp_pins.c.digest, mcp_pins.c.state).where(mcp_pins.c.server == server)
        with self._engine.connect() as conn:
            return {(r.tool, r.digest): r.state for r in conn.execute(query)}

    def get(self, server: str, tool: str, digest: str) -> Pin | None:
        c = mcp_pins.c
        query = sa.select(mcp_pins).where(c.server == server, c.tool == tool, c.digest == digest)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _pin(row)

    def observe(
        self,
        server: str,
        tool: str,
        definition: dict[str, Any],
        *,
        findings: list[dict[str, Any]],
        approve: bool,
        renamed_from: list[str] | None = None,
    ) -> bool:
        """Record a definition the first time it is seen; True if this call inserted it (False: known)."""
        now = datetime.now(UTC)
        values = {
            "server": server,
            "tool": tool,
            "digest": digest_of(definition),
            "state": APPROVED if approve else PENDING,
            "definition": orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode(),
            "findings": json.dumps(findings, sort_keys=True),
            "renamed_from": ",".join(renamed_from)[:400] if renamed_from else None,
            "first_seen_at": now,
            "decided_at": now if approve else None,
            "decided_by": "owstack (pin: auto, first list)" if approve else None,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(mcp_pins).values(**values))
                if approve:
                    self._bump(conn)
        except exc.IntegrityError:  # another process recorded it first
            return False
        return True

    def approve(self, server: str, tool: str, digest: str | None = None, *, by: str) -> Pin:
        """Approve `digest` (default: the newest pending definition); the previous approval is superseded."""
        c = mcp_pins.c
        with self._engine.begin() as conn:
            query = sa.select(mcp_pins).where(c.server == server, c.tool == tool)
            if digest is None:
                query = query.where(c.state == PENDING).order_by(c.first_seen_at.desc(), c.id.desc())
            else:
                query = query.where(c.digest.startswith(digest))
            rows = conn.execute(query).all()
            if not rows or (digest is not None and len(rows) > 1):
                what = "a pending definition" if digest is None else f"one definition with digest {digest}"
                raise PinNotFound(f"{server}.{tool} has no {what}; `owstack mcp tools` lists what is known")
            row = rows[0]
            now = datetime.now(UTC)
            conn.execute(
                sa.update(mcp_pins)
                .where(c.server == server, c.tool == tool, c.state == APPROVED, c.id != row.id)
                .values(state=SUPERSEDED)
            )
            conn.execute(
                sa.update(mcp_pins).where(c.id == row.id).values(state=APPROVED, decided_at=now, decided_by=by[:128])
            )
            self._bump(conn)
            approved = conn.execute(sa.select(mcp_pins).where(c.id == row.id)).one()
        return _pin(approved)

    def list(self, server: str | None = None) -> list[Pin]:
        query = sa.select(mcp_pins).order_by(mcp_pins.c.server, mcp_pins.c.tool, mcp_pins.c.first_seen_at)
        if server is not None:
            query = query.where(mcp_pins.c.server == server)
        with self._engine.connect() as conn:
            return [_pin(r) for r in conn.execute(query)]

    @staticmethod
    def _bump(conn: sa.Connection) -> None:
        conn.execute(
            sa.update(mcp_pin_revision)
            .where(mcp_pin_revision.c.id == 1)
            .values(revision=mcp_pin_revision.c.revision + 1)
        )
