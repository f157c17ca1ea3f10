"""Turning a pydantic error location into the `param` an OpenAI client expects (`messages[0].content`)."""

from __future__ import annotations

from collections.abc import Sequence

# Labels pydantic adds for union branches and discriminator tags; they are not part of the field path.
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
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part in ("str", "int", "float", "bool", "none") or part.startswith("function-"):
            pass
        elif i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] in ("messages", "content") and part in _TAGS:
            pass  # the discriminator tag of a message or content part
        else:
            out += f".{part}" if out else part
    return out
