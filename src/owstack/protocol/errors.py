"""Turning a pydantic error location into the `param` an OpenAI client expects (`messages[0].content`)."""

from __future__ import annotations

from collections.abc import Sequence

# Discriminator tags pydantic adds after a message's or a content part's index; not part of the field path.
_TAGS = frozenset(
    {
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "function",
        "text",
        "image_url",
        "input_audio",
        "file",
        "refusal",
    }
)


def param_of(loc: Sequence[int | str]) -> str:
    kept: list[int | str] = []
    tag_next = False
    for part in loc:
        if isinstance(part, str):
            if "[" in part or part in ("str", "int", "float", "bool", "none") or part.startswith("function-"):
                continue  # a union branch label
            if tag_next and part in _TAGS:
                tag_next = False
                continue
        tag_next = isinstance(part, int) and bool(kept) and kept[-1] in ("messages", "content")
        kept.append(part)
    out = ""
    for part in kept:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
