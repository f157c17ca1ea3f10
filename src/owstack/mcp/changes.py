"""Telling connected clients that what the gateway lists has changed, in the way their revision has.

An upstream's `notifications/tools/list_changed` (or prompts, resources), a tool withheld or released by a
pin, a server that came back: clients learn it as from any MCP server.

    2025 revisions     `notifications/<kind>/list_changed` on each session's standalone stream (the GET
                       stream the client opened); sessions advertise `listChanged` at `initialize`
    2026-07-28         a `subscriptions/listen` stream carries the event (the SDK's `ListenHandler` on
                       an in-process bus); no standing stream otherwise exists in that revision

Delivery is best effort, as in the SDK: a session whose stream is gone is skipped.
"""

from __future__ import annotations

import asyncio
import logging

from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)

from owstack.mcp.sessions import Sessions

log = logging.getLogger("owstack.mcp")
KINDS = ("tools", "prompts", "resources")
_EVENTS: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
}
_SEND = {"tools": "send_tool_list_changed", "prompts": "send_prompt_list_changed",
         "resources": "send_resource_list_changed"}  # fmt: skip
SEND_TIMEOUT_S = 5.0


class ChangeFeed:
    def __init__(self, sessions: Sessions, bus: InMemorySubscriptionBus | None = None) -> None:
        self.sessions = sessions
        self.bus = bus or InMemorySubscriptionBus()
        self.sent = 0

    async def changed(self, kind: str) -> None:
        if kind not in _EVENTS:
            return
        await self.bus.publish(_EVENTS[kind])
        peers = self.sessions.peers()
        if peers:
            await asyncio.gather(*(self._send(s.peer, kind, s.id) for s in peers))

    async def _send(self, peer: object, kind: str, session_id: str) -> None:
        try:
            await asyncio.wait_for(getattr(peer, _SEND[kind])(), SEND_TIMEOUT_S)
            self.sent += 1
        except Exception as exc:  # the client's stream is gone or stuck: it re-lists when it reconnects
            log.debug("mcp: %s list_changed not delivered to session %s: %s", kind, session_id[:12], exc)
