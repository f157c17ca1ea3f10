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


def finditer(
    pattern: re.Pattern[str], text: str, lowered: str, keys: tuple[str, ...], reach: int = 250
) -> Iterator[re.Match[str]]:
    """Matches of `pattern` in `text` that lie within `reach` characters of one of `keys` (in `lowered`, the text
    lower-cased, of the same length); a match always contains or is near one of its keys."""
    if len(lowered) != len(text):  # lower() changed the length (rare scripts): offsets would not line up
        lowered = ""
    if len(text) <= WHOLE_UP_TO or not lowered:
        if not lowered or any(key in lowered for key in keys):
            yield from pattern.finditer(text)
        return
    spans: list[tuple[int, int]] = []
    for key in keys:
        pos = lowered.find(key)
        while pos >= 0 and len(spans) < MAX_KEYS:
            spans.append((max(0, pos - reach), pos + len(key) + reach))
            pos = lowered.find(key, pos + 1)
    if len(spans) >= MAX_KEYS:
        yield from pattern.finditer(text)
        return
    seen: set[tuple[int, int]] = set()
    for start, end in merge_spans(spans):
        for m in pattern.finditer(text, start, min(end, len(text))):
            if m.span() not in seen:
                seen.add(m.span())
                yield m
