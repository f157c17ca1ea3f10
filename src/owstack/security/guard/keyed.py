"""Patterns searched only where their key words are: the whole of a short text, windows around the keys of a long
one (as `tool_orders` does), so that a rule costs little on long text that lacks its words."""

from __future__ import annotations

import re
from collections.abc import Iterator

from owstack.security.guard.phrases import merge_spans

#: texts up to this length are searched whole (when any key is in them)
WHOLE_UP_TO = 4096
#: at most this many key positions per pattern make windows; past it, the rest of the text is searched whole
MAX_KEYS = 4096


def spans(
    text: str, lowered: str, keys: tuple[str, ...], reach: int = 250, *, word_start: bool = False, word: bool = False
) -> list[tuple[int, int]] | None:
    """Where to search `text` for a pattern whose every match is within `reach` characters of one of `keys` (in
    `lowered`, the text lower-cased, of the same length): [] for nowhere, None for the whole text. With `word_start`,
    a key counts only where it starts a word ("add" in "add a payee", not in "address"); with `word`, only where it is
    a whole word ("close" in "please close it", not in "closed")."""
    if len(lowered) != len(text):  # lower() changed the length (rare scripts): offsets would not line up
        return None
    if len(text) <= WHOLE_UP_TO:
        return None if any(next(_positions(lowered, key, word_start, word), -1) >= 0 for key in keys) else []
    found: list[tuple[int, int]] = []
    for key in keys:
        for pos in _positions(lowered, key, word_start, word):
            found.append((max(0, pos - reach), pos + len(key) + reach))
            if len(found) >= MAX_KEYS:
                return None
    return merge_spans(found)


def _positions(lowered: str, key: str, word_start: bool, word: bool = False) -> Iterator[int]:
    pos = lowered.find(key)
    while pos >= 0:
        starts = pos == 0 or not lowered[pos - 1].isalpha()
        ends = pos + len(key) >= len(lowered) or not lowered[pos + len(key)].isalpha()
        if (starts or not (word_start or word)) and (ends or not word):
            yield pos
        pos = lowered.find(key, pos + 1)


def search(pattern: re.Pattern[str], text: str, where: list[tuple[int, int]] | None) -> Iterator[re.Match[str]]:
    """Matches of `pattern` in `text` within `where` (from `spans`; None: the whole text), each once."""
    if where is None:
        yield from pattern.finditer(text)
        return
    seen: set[tuple[int, int]] = set()
    for start, end in where:
        for m in pattern.finditer(text, start, min(end, len(text))):
            if m.span() not in seen:
                seen.add(m.span())
                yield m


def finditer(
    pattern: re.Pattern[str], text: str, lowered: str, keys: tuple[str, ...], reach: int = 250
) -> Iterator[re.Match[str]]:
    """Matches of `pattern` in `text` that lie within `reach` characters of one of `keys` (in `lowered`, the text
    lower-cased, of the same length); a match always contains or is near one of its keys."""
    if len(lowered) != len(text) or not lowered:
        if not lowered or any(key in lowered for key in keys):
            yield from pattern.finditer(text)
        return
    yield from search(pattern, text, spans(text, lowered, keys, reach))


#: a rule module's patterns: (its key words, the pattern, the finding's message)
Keyed = tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...]


def findings(patterns: Keyed, text: str) -> list[tuple[int, int, str]]:
    """(start, end, message) of every match of `patterns` in `text`, each searched near its key words."""
    lowered = text.lower()
    return [
        (m.start(), m.end(), message)
        for keys, pattern, message in patterns
        for m in finditer(pattern, text, lowered, keys)
    ]
