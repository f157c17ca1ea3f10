"""guard: make chat-template control tokens in user and tool content inert; scan tool results (and, if
configured, user text) for prompt injection; flag or block by policy.

It runs after route because the control tokens to neutralise are those of the candidate backends' template
families (a fallback may use another family, so all of them are applied). Findings are recorded as
categories and counts in `ctx.notes["guard"]` (the audit log keeps those, never the text).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

from owstack.config.load import Config
from owstack.errors import InvalidRequest
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.security.guard import SEVERITY_RANK, GuardFinding, neutralize, scan_text

_ROLES_NEUTRALISED = ("user", "tool")
_GENERIC = "generic"


class GuardBlocked(InvalidRequest):
    default_code = "guard_blocked"


@lru_cache(maxsize=4096)
def _scan(text: str, source: str) -> tuple[GuardFinding, ...]:
    """Agents resend the same tool results every turn: scan each distinct text once."""
    return tuple(scan_text(text, source=source))


class GuardStage(BaseStage):
    name = "guard"

    def __init__(self, config: Config) -> None:
        from owstack.catalog.models import find_card

        section = config.file.security.guard
        self.neutralize = section.neutralize
        self.block = section.mode == "block"
        self.block_rank = SEVERITY_RANK[section.block_at]
        # message role -> the scanner's source kind; tool results stand for retrieved documents too
        scanned = set(section.scan) if section.mode != "off" else set()
        self.scan_roles: dict[str, str] = {role: role for role in ("tool", "user") if role in scanned}
        if "document" in scanned:
            self.scan_roles.setdefault("tool", "tool")
        self.families: dict[str, str] = {}
        for name, backend in config.file.backends.items():
            card = find_card(backend.catalog or backend.model)
            self.families[name] = getattr(card, "template", None) or _GENERIC

    async def before(self, ctx: RequestContext) -> None:
        assert ctx.request is not None
        families = sorted({self.families.get(name, _GENERIC) for name in ctx.candidates}) or [_GENERIC]
        neutralised = 0
        categories: Counter[str] = Counter()
        worst = 0
        for message in ctx.request.messages:
            role = message.get("role")
            if self.neutralize and role in _ROLES_NEUTRALISED:
                neutralised += _neutralise_message(message, families)
            source = self.scan_roles.get(str(role))
            if source is not None:
                for finding in _scan(_text_of(message), source):
                    categories[finding.category] += 1
                    worst = max(worst, SEVERITY_RANK.get(finding.severity, 0))
        if not neutralised and not categories:
            return
        blocked = self.block and worst >= self.block_rank
        decision = "block" if blocked else ("flag" if categories else "pass")
        ctx.notes["guard"] = {
            "decision": decision,
            "categories": dict(categories),
            "control_tokens_neutralised": neutralised,
        }
        if blocked:
            names = ", ".join(sorted(categories))
            raise GuardBlocked(
                f"the request was blocked by the gateway's injection guard (categories: {names})", param="messages"
            )


def _neutralise_message(message: dict[str, Any], families: list[str]) -> int:
    content = message.get("content")
    count = 0
    if isinstance(content, str):
        for family in families:
            content, n = neutralize(content, family)
            count += n
        if count:
            message["content"] = content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                text = part["text"]
                for family in families:
                    text, n = neutralize(text, family)
                    count += n
                part["text"] = text
    return count


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
