"""Content checks on tool traffic: poisoned definitions, injected results, secrets both ways.

The detectors are the guard library's (`owstack.security.guard.scan_text`: injection phrases, hidden
unicode, chat-template control tokens, exfiltration links, encoded payloads) and the credential formats in
`mcp/data/secrets.yaml`. What happens to a finding is the tenant's policy (`mcp.tenants.<t>.results` and
`.secrets`): `flag` records it (categories and counts, never the text), `redact` masks the matched passage
and passes the rest, `block` replaces the whole message with an error. Only findings of severity medium or
above act: the guard reports quoted mentions ("phrases such as 'ignore previous instructions'") as low.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

from owstack.security.guard import SEVERITY_RANK, GuardFinding, neutralize, scan_text

#: findings below this severity are recorded by the guard library as mentions, not acted on
ACT_AT = SEVERITY_RANK["medium"]
REDACTED_INJECTION = "[owstack: suspected prompt injection removed]"
REDACTED_SECRET = "[owstack: secret redacted]"
_STRING_LIMIT = 1_000_000


@cache
def secret_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    text = resources.files("owstack.mcp").joinpath("data").joinpath("secrets.yaml").read_text(encoding="utf-8")
    return tuple((s["id"], re.compile(s["pattern"])) for s in yaml.safe_load(text)["secrets"])


@cache
def _any_secret() -> re.Pattern[str]:
    """Every format in one alternation: one pass finds that a text (as most are) holds none of them."""
    parts = []
    for _, rx in secret_patterns():
        flags = "i" if rx.flags & re.IGNORECASE else ""
        body = rx.pattern.removeprefix("(?i)")
        parts.append(f"(?{flags}:{body})" if flags else f"(?:{body})")
    return re.compile("|".join(parts))


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every credential in `text`."""
    if _any_secret().search(text) is None:
        return []
    return [(m.start(), m.end(), kind) for kind, rx in secret_patterns() for m in rx.finditer(text)]


@lru_cache(maxsize=4096)
def _injections(text: str) -> tuple[GuardFinding, ...]:
    """Agents fetch the same pages and files again and again: scan each distinct text once."""
    return tuple(f for f in scan_text(text, source="tool") if SEVERITY_RANK.get(f.severity, 0) >= ACT_AT)


@dataclass(slots=True)
class Verdict:
    """What the checks found in one message and what was done: `action` is pass, flag, redact or block."""

    action: str = "pass"
    categories: Counter[str] = field(default_factory=Counter)

    def add(self, category: str, action: str) -> None:
        self.categories[category] += 1
        if _RANK[action] > _RANK[self.action]:
            self.action = action

    def as_dict(self) -> dict[str, Any]:
        return {"decision": self.action, "categories": dict(self.categories)}


_RANK = {"pass": 0, "flag": 1, "redact": 2, "block": 3}


def strings(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON value (dict keys included for schemas' property names)."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from strings(v, f"{path}[{i}]")


def _map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_strings(v, fn) for v in obj]
    return obj


def definition_findings(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Injection and secret findings in a tool, prompt or resource definition (every string in it)."""
    found: list[dict[str, Any]] = []
    for path, text in strings(definition):
        if path == "name" or not text.strip():
            continue
        for f in scan_text(text[:_STRING_LIMIT], source="tool"):
            found.append({"field": path, "rule": f.rule, "category": f.category, "severity": f.severity})
        for _, _, kind in find_secrets(text):
            found.append({"field": path, "rule": f"secret:{kind}", "category": "secret", "severity": "high"})
    return found


def poisoned(findings: list[dict[str, Any]], threshold: str) -> bool:
    rank = SEVERITY_RANK[threshold]
    return any(SEVERITY_RANK.get(str(f.get("severity")), 0) >= rank for f in findings)


def _mask(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, last = [], 0
    for start, end, replacement in sorted(spans):
        if start < last:
            continue
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def check_arguments(arguments: dict[str, Any] | None, secrets: str) -> tuple[dict[str, Any] | None, Verdict]:
    """Secrets in a call's arguments: a tool should not receive the agent's credentials."""
    verdict = Verdict()
    if not arguments:
        return arguments, verdict

    for text in _texts(arguments):
        for _, _, kind in find_secrets(text):
            verdict.add(f"secret:{kind}", secrets)
    if verdict.action != "redact":
        return arguments, verdict

    def mask(text: str) -> str:
        hits = find_secrets(text)
        return _mask(text, [(s, e, REDACTED_SECRET) for s, e, _ in hits]) if hits else text

    return _map_strings(arguments, mask), verdict


def check_result(result: dict[str, Any], results: str, secrets: str) -> tuple[dict[str, Any], Verdict]:
    """Injection and secrets in a tool result (text, embedded resources, structured content).

    Returns the result to send (masked under `redact`; under `block` the caller replaces it) and the verdict.
    Control tokens are made inert whenever anything was redacted, so a masked result cannot still carry one.
    The result is scanned first and copied only when something in it is to be masked.
    """
    verdict = Verdict()
    masks: dict[str, list[tuple[int, int, str]]] = {}
    for key in ("content", "structuredContent"):
        for text in _texts(result.get(key)):
            if len(text) < 8:
                continue
            keep: list[tuple[int, int, str]] = []
            found = _injections(text[:_STRING_LIMIT])
            # The classifier scores a window; a rule marks the passage itself: mask the window only when no
            # rule marked anything, so that the rest of the result (the data the agent asked for) survives.
            precise = [f for f in found if f.category != "classifier"] or found
            for f in found:
                verdict.add(f.category, results)
            if results == "redact":
                keep += [(f.start, f.end, REDACTED_INJECTION) for f in precise]
            for start, end, kind in find_secrets(text):
                verdict.add(f"secret:{kind}", secrets)
                if secrets == "redact":
                    keep.append((start, end, REDACTED_SECRET))
            if keep:
                masks[text] = keep
    if verdict.action != "redact" or not masks:
        return result, verdict

    def one(text: str) -> str:
        keep = masks.get(text)
        return neutralize(_mask(text, keep), "generic")[0] if keep else text

    return {
        k: (_map_strings(v, one) if k in ("content", "structuredContent") else v) for k, v in result.items()
    }, verdict


def _texts(obj: Any) -> Iterator[str]:
    """Every string in a JSON value (values only: a result's keys are its schema's, not the tool's text)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _texts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _texts(v)
