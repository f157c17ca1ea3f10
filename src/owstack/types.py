"""The internal types every stage and backend speaks.

The internal request is OpenAI's chat format, already validated: protocol edges (OpenAI, Anthropic)
translate into it and out of it, backends translate it into their engine's dialect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    model: str
    #: OpenAI-format messages (role, content as a string or parts, tool_calls, tool_call_id, name)
    messages: list[JSON]
    stream: bool = False
    #: the client asked for the final usage chunk (`stream_options.include_usage`)
    include_usage: bool = False
    #: every other request field, passed through to OpenAI-compatible upstreams as-is
    params: JSON = field(default_factory=dict)
    has_images: bool = False
    has_tools: bool = False
    #: the reasoning policy the shape stage resolved (`owstack.efficiency.policies.Policy`), applied by
    #: each backend in its own dialect at call time (a fallback may change the engine)
    reasoning: Any = None
    #: the fine-tuned adapter the route chose (`model: "edge:<adapter>"`), served by each backend its own way
    adapter: str | None = None
    #: the OpenAI endpoint it is for: "chat"; or "completions" / "embeddings", whose bodies travel in `params`
    #: as the client wrote them (`messages` then holds their text, for routing, guard and token counts)
    endpoint: str = "chat"

    @property
    def max_tokens(self) -> int | None:
        value = self.params.get("max_completion_tokens", self.params.get("max_tokens"))
        return value if isinstance(value, int) else None


#: more tokens than any request can hold (2**40): a reported count past it is not a count
MAX_TOKENS = 1 << 40


def _count(value: Any) -> int:
    """A token count from an upstream's JSON: a whole number in [0, MAX_TOKENS] (None or absent is 0)."""
    if value.__class__ is int and 0 <= value <= MAX_TOKENS:  # the usual case first: it is on every request
        return int(value)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not a whole number")
    if not 0 <= value <= MAX_TOKENS:
        raise ValueError("out of range")
    return int(value)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    #: True when the numbers came from the upstream, False when owstack counted them itself
    reported: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> JSON:
        out: JSON = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        if self.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return out

    @classmethod
    def from_openai(cls, data: Any) -> Usage | None:
        """The usage an upstream reported; None when absent or not usable (a count that is negative, not a
        whole number, or past `MAX_TOKENS`: an upstream's numbers must not break the ledger or the audit log)."""
        if not isinstance(data, dict):
            return None
        details = data.get("completion_tokens_details") or {}
        prompt_details = data.get("prompt_tokens_details") or {}
        try:
            return cls(
                prompt_tokens=_count(data.get("prompt_tokens")),
                completion_tokens=_count(data.get("completion_tokens")),
                reasoning_tokens=_count(details.get("reasoning_tokens")) if isinstance(details, dict) else 0,
                cached_tokens=_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
                reported=True,
            )
        except (TypeError, ValueError):
            return None


@dataclass(slots=True)
class Completion:
    """A whole (non-streaming) response: the OpenAI `chat.completion` body and what was read off it."""

    body: JSON
    usage: Usage | None = None
    finish_reason: str | None = None


#: A stream of OpenAI `chat.completion.chunk` objects. A backend raises an `OwstackError` before its first
#: chunk for failures that may be retried elsewhere; an exception after the first chunk ends the stream.
ChunkStream = AsyncIterator[JSON]
