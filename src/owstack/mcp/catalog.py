"""One view of every upstream's tools, prompts and resources, names prefixed by server, tools pinned.

`sync(upstream)` lists a server's tools (every page), computes each definition's digest and decides, against
the pins, which tools may be served:

    approved   the served definition has the approved digest                         served
    pending    a new tool waiting for approval (pin: manual, a poisoned definition,   withheld
               or a new name on a server whose approved tool vanished: a rename)
    changed    an approved tool now served with another definition (a rug pull)       withheld

Under `pin: auto` a server's first list is trusted (unless a definition is poisoned) and a new tool added
later is approved too, unless an approved tool of that server vanished at the same time: a tool that is
renamed to dodge its pin waits for an operator like a changed one. Every change, rename and poisoned
definition is reported once (to the audit log and /metrics) through `on_event`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.shared.inbound import x_mcp_header_map

from owstack.mcp.config import McpSection
from owstack.mcp.content import definition_findings, poisoned
from owstack.mcp.errors import ToolWithheld, UnknownName
from owstack.mcp.pins import APPROVED, PinStore, canonical, diff, digest_of
from owstack.mcp.policy import Caller
from owstack.mcp.upstreams import Upstream
from owstack.security.guard.offload import off_loop

log = logging.getLogger("owstack.mcp")
Event = Callable[[str, dict[str, Any]], Awaitable[None]]
SEP = "."


@dataclass(slots=True)
class ToolEntry:
    server: str
    name: str
    qualified: str
    #: the definition as the upstream served it, with the qualified name
    wire: dict[str, Any]
    digest: str
    state: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: argument path -> `Mcp-Param-*` header token, from the input schema's `x-mcp-header` annotations
    param_headers: dict[tuple[str, ...], str] = field(default_factory=dict)


class Catalog:
    def __init__(self, section: McpSection, store: PinStore, on_event: Event) -> None:
        self.section = section
        self.store = store
        self.on_event = on_event
        self.tools: dict[str, ToolEntry] = {}
        self.approved: dict[tuple[str, str], str] = {}
        self.revision = -1
        self._reported: set[tuple[str, str, str]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._rank = {name: i for i, name in enumerate(section.servers)}

    async def refresh_pins(self) -> bool:
        """Reload the approved digests when an approval changed them (any process); True if that changed
        which tools are served."""
        revision = await asyncio.to_thread(self.store.revision)
        if revision == self.revision:
            return False
        self.approved = await asyncio.to_thread(self.store.approved)
        self.revision = revision
        before = self._served()
        for entry in self.tools.values():
            entry.state = self._state(entry.server, entry.name, entry.digest)
        return self._served() != before

    def _served(self, server: str | None = None) -> dict[str, str]:
        """qualified name -> digest of every tool served now (of one server, or all)."""
        return {q: e.digest for q, e in self.tools.items() if e.state == APPROVED and server in (None, e.server)}

    def _state(self, server: str, name: str, digest: str) -> str:
        approved = self.approved.get((server, name))
        if approved == digest:
            return APPROVED
        return "pending" if approved is None else "changed"

    async def sync(self, upstream: Upstream) -> bool:
        """List the server's tools and decide what may be served (one sync per server at a time); True if
        what is served changed."""
        lock = self._locks.setdefault(upstream.name, asyncio.Lock())
        async with lock:
            listed = await upstream.list_tools()
            before = self._served()
            await self._apply(upstream.name, listed)
            return self._served() != before

    async def _apply(self, server: str, listed: list[dict[str, Any]]) -> None:
        await self.refresh_pins()
        known = await asyncio.to_thread(self.store.known, server)
        first_list = not known
        names = {str(t.get("name")) for t in listed}
        vanished = sorted(n for (s, n) in self.approved if s == server and n not in names)
        entries: dict[str, ToolEntry] = {}
        for tool in listed:
            name = str(tool.get("name") or "")
            if not name:
                continue
            definition = canonical(tool)
            digest = digest_of(definition)
            qualified = f"{server}{SEP}{name}"
            findings: list[dict[str, Any]] = []
            if (name, digest) not in known:
                findings = await off_loop(definition_findings, definition)  # rules: ms of CPU per KB
                await self._first_sight(server, name, definition, findings, first_list, vanished)
            wire = {**tool, "name": qualified}
            headers = _param_headers(tool.get("inputSchema"))
            entries[qualified] = ToolEntry(server, name, qualified, wire, digest, "pending", findings, headers)
        merged = [*(e for e in self.tools.values() if e.server != server), *entries.values()]
        merged.sort(key=lambda e: self._rank.get(e.server, len(self._rank)))  # config order, then the server's
        self.tools = {e.qualified: e for e in merged}
        for entry in entries.values():
            entry.state = self._state(server, entry.name, entry.digest)

    async def _first_sight(
        self,
        server: str,
        name: str,
        definition: dict[str, Any],
        findings: list[dict[str, Any]],
        first_list: bool,
        vanished: list[str],
    ) -> None:
        upstream_pin = self.section.servers[server].pin or self.section.pin
        previous = self.approved.get((server, name))
        bad = poisoned(findings, self.section.poison_at)
        rename = previous is None and bool(vanished) and not first_list
        auto = upstream_pin == "auto" and previous is None and not bad and not rename
        inserted = await asyncio.to_thread(
            self.store.observe,
            server,
            name,
            definition,
            findings=findings,
            approve=auto,
            renamed_from=vanished if rename else None,
        )
        if auto:
            self.approved[(server, name)] = digest_of(definition)
        if not inserted:
            return
        base = {"server": server, "tool": f"{server}{SEP}{name}", "digest": digest_of(definition)}
        if bad:
            categories = sorted({str(f["category"]) for f in findings})
            await self.on_event("tool_poisoned", {**base, "categories": categories, "findings": findings[:20]})
        if previous is not None:
            old = await asyncio.to_thread(self.store.get, server, name, previous)
            old_def = old.definition if old is not None else None
            details = {**base, "approved_digest": previous, "diff": diff(old_def, definition)}
            await self.on_event("tool_changed", details)
            return
        if rename:
            olds = [await asyncio.to_thread(self.store.get, server, v, self.approved[(server, v)]) for v in vanished]
            old_def = olds[0].definition if olds and olds[0] is not None else None
            details = {
                **base,
                "renamed_from": [f"{server}{SEP}{v}" for v in vanished],
                "approved_digests": [o.digest for o in olds if o is not None],
                "diff": diff(old_def, definition),
            }
            await self.on_event("tool_renamed", details)

    # serving --------------------------------------------------------------------------------------
    def visible(self, caller: Caller) -> list[dict[str, Any]]:
        """The tools this caller may see: approved and in its allowlist."""
        return [e.wire for e in self.tools.values() if e.state == APPROVED and caller.may_use(e.qualified)]

    def resolve(self, caller: Caller, qualified: str) -> ToolEntry:
        """The tool a call names, or the typed refusal (unknown, not allowed, withheld)."""
        entry = self.tools.get(qualified)
        if entry is None:
            raise UnknownName(f"unknown tool {qualified!r}; tools/list shows the tools you may call")
        caller.check(qualified)
        if entry.state != APPROVED:
            why = {
                "changed": "its definition changed since it was approved (a possible rug pull)",
                "pending": "its definition has not been approved",
            }[entry.state]
            raise ToolWithheld(
                f"tool {qualified!r} is withheld: {why}; an operator can review it with `owstack mcp tools` "
                f"and approve it with `owstack mcp approve {qualified}`"
            )
        return entry


def _param_headers(schema: Any) -> dict[tuple[str, ...], str]:
    try:
        return x_mcp_header_map(schema) if isinstance(schema, dict) else {}
    except Exception:  # an annotation the SDK cannot read mirrors no header; the upstream judges the call
        return {}


def split(qualified: str) -> tuple[str, str]:
    """`files.read_file` -> (`files`, `read_file`); the server name has no dot, the tool name may."""
    server, sep, name = qualified.partition(SEP)
    if not sep or not name:
        raise UnknownName(f"{qualified!r} is not a server-prefixed name such as files.read_file")
    return server, name
