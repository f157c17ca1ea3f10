"""An upstream's list changes on the 2026-07-28 revision, where they come only on a `subscriptions/listen`
stream (2025 sessions send `notifications/*/list_changed` on their own, to the client's message handler).

    await follow(client, "files", on_change)      runs for the life of the upstream session

Listens to what the upstream advertises (`listChanged` of tools, prompts, resources), re-listens when the
stream ends (a graceful close, a dropped stream, the egress transport's deadline), and hands each event to
`on_change(server, kind)` as the 2025 notifications are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.client.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp import Client

log = logging.getLogger("owstack.mcp")
KINDS: dict[type[Any], str] = {
    ToolsListChanged: "tools",
    PromptsListChanged: "prompts",
    ResourcesListChanged: "resources",
}
RELISTEN_S = 1.0


def _advertised(client: Client) -> tuple[bool, bool, bool]:
    """Whether the upstream says its tools, prompts and resources lists may change."""
    caps = client.server_capabilities
    return (
        bool(caps.tools and caps.tools.list_changed),
        bool(caps.prompts and caps.prompts.list_changed),
        bool(caps.resources and caps.resources.list_changed),
    )


async def follow(client: Client, server: str, on_change: Callable[[str, str], Awaitable[None]]) -> None:
    """Follow the upstream's change events until cancelled; nothing to do before 2026-07-28."""
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return
    tools, prompts, resources = _advertised(client)
    if not (tools or prompts or resources):
        return
    while True:
        try:
            listening = client.listen(
                tools_list_changed=tools, prompts_list_changed=prompts, resources_list_changed=resources
            )
            async with listening as subscription:
                async for event in subscription:
                    kind = KINDS.get(type(event))
                    if kind is not None:
                        await on_change(server, kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream dropped or was refused: listen again shortly
            log.debug("mcp: listening to %s ended: %s", server, exc)
        await asyncio.sleep(RELISTEN_S)
