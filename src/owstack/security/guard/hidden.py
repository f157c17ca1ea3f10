"""Hidden Unicode: characters a person does not see but a model reads.

- Tag characters (U+E0000-E007F) spell ASCII invisibly ("ASCII smuggling"); the one legitimate use, the
  subdivision flags (U+1F3F4 + tag letters + U+E007F CANCEL TAG, e.g. England's flag), is allowed.
- Bidi controls reorder what is displayed (Trojan Source, CVE-2021-42574).
- Zero-width and filler characters hide text or split words past filters. ZWJ inside emoji sequences and
  ZWNJ/ZWJ between letters of scripts that need them (Arabic, Persian, Indic) are allowed.
- Variation selectors 17-256 (U+E0100-E01EF) can carry a byte each after an emoji ("emoji smuggling");
  a run of them is flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from owstack.security.guard.types import GuardFinding, safe_excerpt

_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_BIDI_RUN = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_ZW_RUN = re.compile("[\u200b-\u200d\u2060-\u2064\ufeff\u180e\u034f\u115f\u1160\u3164\uffa0]+")
_VS_RUN = re.compile("[\U000e0100-\U000e01ef]{2,}")
_BLACK_FLAG = "\U0001f3f4"
_CANCEL_TAG = "\U000e007f"
_JOINER_SCRIPTS = (
    "ARABIC",
    "DEVANAGARI",
    "BENGALI",
    "GURMUKHI",
    "GUJARATI",
    "ORIYA",
    "TAMIL",
    "TELUGU",
    "KANNADA",
    "MALAYALAM",
    "SINHALA",
    "SYRIAC",
    "MONGOLIAN",
    "KHMER",
    "MYANMAR",
    "HEBREW",
)


def decode_tags(run: str) -> str:
    """The ASCII a run of tag characters spells (U+E0041 -> 'A')."""
    return "".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E)


def _is_flag_sequence(text: str, start: int, end: int) -> bool:
    run = text[start:end]
    return (
        start > 0
        and text[start - 1] == _BLACK_FLAG
        and run.endswith(_CANCEL_TAG)
        and 2 <= len(run) - 1 <= 6
        and decode_tags(run[:-1]).isalnum()
    )


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return cp >= 0x1F000 or 0x2600 <= cp <= 0x27BF or cp in (0x2640, 0x2642, 0x2695, 0x2708, 0xFE0F)


def _joiner_script(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return any(name.startswith(s) for s in _JOINER_SCRIPTS)


def _legit_joiner(text: str, start: int, end: int) -> bool:
    """A single ZWJ/ZWNJ between emoji or between letters of a script that uses joiners."""
    if end - start != 1 or text[start] not in "\u200c\u200d" or start == 0 or end >= len(text):
        return False
    before, after = text[start - 1], text[end]
    if text[start] == "\u200d" and _is_emoji(before) and _is_emoji(after):
        return True
    return _joiner_script(before) and _joiner_script(after)


def _allowed_marker(text: str, start: int, run: str) -> bool:
    """A byte-order mark at the start, or the U+200B that `neutralize` puts inside a control token."""
    if start == 0 and run == "\ufeff":
        return True
    # `<`, `[` and the full-width and small forms NFKC folds to them (token_sets._FOLD_STARTS)
    opener = start > 0 and text[start - 1] in "<[\uff1c\ufe64\uff3b\ufe47"
    return run == "\u200b" and opener and text[start + 1 : start + 2] not in ("", " ")


def scan_hidden(text: str) -> Iterator[GuardFinding]:
    """Yield findings for hidden Unicode in `text`. ASCII-only text is skipped by the caller."""
    for m in _TAG_RUN.finditer(text):
        if _is_flag_sequence(text, m.start(), m.end()):
            continue
        hidden = decode_tags(m.group())
        yield GuardFinding(
            "OWS-GRD-001",
            "high",
            "hidden_unicode",
            m.start(),
            m.end(),
            safe_excerpt(hidden, 0, len(hidden)) if hidden else safe_excerpt(text, m.start(), m.end()),
            f"{m.end() - m.start()} invisible Unicode tag characters" + (" spelling hidden text" if hidden else ""),
        )
    for m in _BIDI_RUN.finditer(text):
        yield GuardFinding(
            "OWS-GRD-002",
            "medium",
            "hidden_unicode",
            m.start(),
            m.end(),
            safe_excerpt(text, max(0, m.start() - 20), m.end() + 20),
            "bidirectional control characters reorder what a reader sees",
        )
    for m in _ZW_RUN.finditer(text):
        if _legit_joiner(text, m.start(), m.end()) or _allowed_marker(text, m.start(), m.group()):
            continue
        yield GuardFinding(
            "OWS-GRD-003",
            "medium",
            "hidden_unicode",
            m.start(),
            m.end(),
            safe_excerpt(text, max(0, m.start() - 20), m.end() + 20),
            "zero-width or invisible filler characters",
        )
    for m in _VS_RUN.finditer(text):
        yield GuardFinding(
            "OWS-GRD-004",
            "high",
            "hidden_unicode",
            m.start(),
            m.end(),
            safe_excerpt(text, max(0, m.start() - 2), m.end()),
            f"{m.end() - m.start()} variation selectors in a row can carry hidden bytes",
        )
