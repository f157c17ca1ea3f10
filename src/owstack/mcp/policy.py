"""Who is calling, and what they may see and call: owstack keys and per-tenant tool allowlists.

`/mcp` authenticates exactly as `/v1` does (`Authorization: Bearer <owstack key>` or `x-api-key`), and runs
open only where `/v1` does (no tenants, loopback). The key is owstack's own: it is never passed upstream
(no token passthrough), and an upstream's credentials come from the config, never from the client.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache

from owstack.errors import PermissionDenied
from owstack.mcp.config import McpSection, TenantToolPolicy

OPEN_TENANT = "default"
#: in open mode (no tenants, loopback only) the single local user may use every tool unless listed
OPEN_POLICY = TenantToolPolicy(allow=("*",))
NO_TOOLS = TenantToolPolicy()


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated client of one HTTP request (set on the ASGI scope by the endpoint)."""

    tenant: str
    key_id: str | None
    policy: TenantToolPolicy
    request_id: str
    client: str | None = None

    def may_use(self, qualified: str) -> bool:
        return allowed(self.policy.allow, qualified)

    def check(self, qualified: str, kind: str = "tool") -> None:
        if not self.may_use(qualified):
            raise PermissionDenied(
                f"tenant {self.tenant!r} may not use {kind} {qualified!r}: "
                f"it is not in mcp.tenants.{self.tenant}.allow",
                code="tool_not_allowed",
            )


@lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def allowed(patterns: tuple[str, ...], qualified: str) -> bool:
    """Does `server.name` match one of the globs (`*` within and across the dot: `files.*`, `*.search`)?"""
    rx = _compiled(patterns)
    return rx is not None and rx.match(qualified) is not None


def policy_for(section: McpSection, tenant: str, *, open_mode: bool) -> TenantToolPolicy:
    found = section.tenants.get(tenant)
    if found is not None:
        return found
    return OPEN_POLICY if open_mode else NO_TOOLS
