"""What the injection scanner reports, and how a finding's excerpt is made safe to show and log."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

EXCERPT_CHARS = 80
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_SECRET = re.compile(
    r"(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{12,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}"
    r"|glpat-[A-Za-z0-9_-]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{5,}|[A-Za-z0-9+/_-]{40,}={0,2})"
)
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&#\s]{1,64})=([^&#\s\"')]{9,})")


@dataclass(frozen=True, slots=True)
class GuardFinding:
    """One injection signal in a piece of text.

    `rule` is a stable id (`OWS-GRD-010`), `category` one of hidden_unicode, override, role_spoof,
    exfiltration, encoded, hidden_text, tool_abuse; `start`/`end` are character offsets into the scanned
    text; `excerpt` is a short, display-safe view of the match: invisible characters spelt as `<U+XXXX>`,
    anything that looks like a key or token and long URL query values masked.
    """

    rule: str
    severity: Severity
    category: str
    start: int
    end: int
    excerpt: str
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def safe_excerpt(text: str, start: int, end: int) -> str:
    """A display-safe excerpt of text[start:end]: at most ~80 visible characters, no secrets, no hidden
    characters (they are spelt out), one line."""
    shown = " ".join(redact(text[start : min(end, start + EXCERPT_CHARS * 4)]).split())
    if len(shown) > EXCERPT_CHARS:
        shown = shown[: EXCERPT_CHARS - 1] + "…"
    return shown


def redact(text: str) -> str:
    """`text` with invisible characters spelt out and keys, tokens and long URL query values masked."""
    shown = _INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    shown = _SECRET.sub("[redacted]", shown)
    return _QUERY_VALUE.sub(lambda m: f"{m.group(1)}=[redacted]", shown)


def at_least(severity: str, threshold: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]
