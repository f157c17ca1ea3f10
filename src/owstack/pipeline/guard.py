"""guard: make chat-template control tokens inert in every text field that reaches the prompt; scan
tool results, tool descriptions (and, if configured, user text) for prompt injection; flag or block.

It runs after route because the control tokens to neutralise are those of the candidate backends: the
served GGUF's own vocabulary for the embedded engine, the family's full list for HTTP engines (a
fallback may use another family, so the union over the candidates is applied). Which field classes keep
their tokens is the operator's choice (`security.guard.keep_control_tokens`, e.g. a trusted system
prompt). Findings are recorded as categories and counts in `ctx.notes["guard"]` (the audit log keeps
those, never the text).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from owstack.config.load import Config
from owstack.errors import InvalidRequest
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.security.guard import SEVERITY_RANK, GuardFinding, scan_text
from owstack.security.guard.fields import neutralize_request, texts_for_scan
from owstack.security.guard.offload import OFF_LOOP_CHARS, off_loop
from owstack.security.guard.token_sets import TokenSet

_GENERIC = "generic"
#: field class -> the scanner's source kind when that kind is configured
_SCAN_SOURCE = {"tool": "tool", "tools": "tool", "user": "user"}


class GuardBlocked(InvalidRequest):
    default_code = "guard_blocked"


@lru_cache(maxsize=4096)
def _scan(text: str, source: str) -> tuple[GuardFinding, ...]:
    """Agents resend the same tool results every turn: scan each distinct text once."""
    return tuple(scan_text(text, source=source))


def _scan_all(texts: Sequence[tuple[str, str]]) -> list[tuple[GuardFinding, ...]]:
    return [_scan(text, source) for text, source in texts]


def backend_tokens(config: Config) -> dict[str, TokenSet]:
    """Each backend's control tokens: its family's, plus every added token of the tokenizer the operator
    names (`tokenizer:`) and of the GGUF the embedded engine serves."""
    from owstack.catalog.models import embedded_gguf_path, find_card

    out: dict[str, TokenSet] = {}
    for name, backend in config.file.backends.items():
        card = find_card(backend.catalog or backend.model)
        family = getattr(card, "template", None) or _GENERIC
        tokens = TokenSet.for_family(family)
        if backend.tokenizer is not None:  # checked at start (config.validate): unreadable here is an error
            tokens = TokenSet.from_path(backend.tokenizer).union(tokens, f"tokenizer:{name}")
        if backend.engine == "llamacpp":
            try:
                path = Path(backend.model_path).expanduser() if backend.model_path else embedded_gguf_path(card)  # type: ignore[arg-type]
                tokens = TokenSet.from_gguf(path).union(tokens, f"gguf:{name}")
            except (OSError, ValueError, AttributeError):
                pass  # the backend reports its own missing file at start; the family list still applies
        out[name] = tokens
    return out


class GuardStage(BaseStage):
    name = "guard"

    def __init__(self, config: Config, tokens: dict[str, TokenSet] | None = None) -> None:
        section = config.file.security.guard
        self.neutralize = section.neutralize
        self.keep = frozenset(section.keep_control_tokens)
        self.block = section.mode == "block"
        self.block_rank = SEVERITY_RANK[section.block_at]
        scanned = set(section.scan) if section.mode != "off" else set()
        if "document" in scanned:
            scanned.add("tool")
        self.scan_classes = {cls: src for cls, src in _SCAN_SOURCE.items() if src in scanned}
        self.tokens = tokens if tokens is not None else backend_tokens(config)
        self._unions: dict[tuple[str, ...], TokenSet] = {}

    def _tokens_for(self, candidates: list[str]) -> TokenSet:
        key = tuple(sorted(set(candidates)))
        found = self._unions.get(key)
        if found is None:
            found = TokenSet.for_family(_GENERIC)
            for name in key:
                if name in self.tokens:
                    found = found.union(self.tokens[name], "+".join(key))
            self._unions[key] = found
        return found

    async def before(self, ctx: RequestContext) -> None:
        assert ctx.request is not None
        neutralised: Counter[str] = Counter()
        if self.neutralize:
            neutralised = neutralize_request(ctx.request, self._tokens_for(ctx.candidates), self.keep)
        categories: Counter[str] = Counter()
        worst = 0
        if self.scan_classes:
            scanned = self.scan_classes
            texts = [(text, scanned[cls]) for cls, text in texts_for_scan(ctx.request) if cls in scanned]
            if sum(len(text) for text, _ in texts) > OFF_LOOP_CHARS:  # long results, or many tool descriptions
                found = await off_loop(_scan_all, texts)  # the event loop serves other requests meanwhile
            else:
                found = _scan_all(texts)
            for finding in (f for findings in found for f in findings):
                categories[finding.category] += 1
                worst = max(worst, SEVERITY_RANK.get(finding.severity, 0))
        if not neutralised and not categories:
            return
        blocked = self.block and worst >= self.block_rank
        ctx.notes["guard"] = {
            "decision": "block" if blocked else ("flag" if categories else "pass"),
            "categories": dict(categories),
            "control_tokens_neutralised": sum(neutralised.values()),
            "control_tokens_by_field": dict(neutralised),
        }
        if blocked:
            names = ", ".join(sorted(categories))
            raise GuardBlocked(
                f"the request was blocked by the gateway's injection guard (categories: {names})", param="messages"
            )
