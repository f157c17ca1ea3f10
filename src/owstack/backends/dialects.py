"""What differs between OpenAI-compatible engines, as data: one `Dialect` per engine.

All of them speak `POST {base}/chat/completions`; they differ in where their health probe lives, whether a
stream can carry a final usage chunk, which token-limit field they take, which non-OpenAI fields they
reject, and where they put reasoning text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from owstack.types import JSON, ChatRequest

# Fields that only self-hosted engines understand: proprietary APIs reject them with a 400.
_ENGINE_ONLY = frozenset(
    {
        "chat_template_kwargs",
        "thinking_token_budget",
        "top_k",
        "min_p",
        "repetition_penalty",
        "separate_reasoning",
        "skip_special_tokens",
        "guided_json",
        "guided_regex",
        "guided_choice",
        "guided_grammar",
        "think",
    }
)


@dataclass(frozen=True, slots=True)
class Dialect:
    engine: str
    #: health probe: a path at the server's root ("/health") or, when it starts with "base:", under the API base
    health_path: str
    #: accepts `stream_options: {include_usage: true}` and then ends a stream with a usage chunk
    stream_usage: bool = True
    #: the token-limit field the engine wants
    max_tokens_field: str = "max_tokens"
    #: request fields to drop before sending
    drop: frozenset[str] = frozenset()
    #: the response field holding reasoning text, normalised to `reasoning_content`
    reasoning_fields: tuple[str, ...] = ("reasoning_content", "reasoning")

    def body(self, request: ChatRequest, model: str, *, stream: bool) -> JSON:
        body: JSON = dict(request.params)
        body["model"] = model
        body["messages"] = request.messages
        body["stream"] = stream
        if stream:
            if self.stream_usage:
                # Always ask for usage: the meter needs it even when the client did not.
                body["stream_options"] = {"include_usage": True}
            else:
                body.pop("stream_options", None)
        else:
            body.pop("stream_options", None)
        other = "max_completion_tokens" if self.max_tokens_field == "max_tokens" else "max_tokens"
        if other in body:
            value = body.pop(other)
            body.setdefault(self.max_tokens_field, value)
        for field in self.drop:
            body.pop(field, None)
        return body

    def normalise_message(self, message: Any) -> None:
        """Move reasoning text to `reasoning_content`, in place (works for messages and stream deltas)."""
        if not isinstance(message, dict):
            return
        for field in self.reasoning_fields:
            if field != "reasoning_content" and field in message:
                value = message.pop(field)
                if value is not None and "reasoning_content" not in message:
                    message["reasoning_content"] = value


DIALECTS: dict[str, Dialect] = {
    "vllm": Dialect("vllm", health_path="/health"),
    "sglang": Dialect("sglang", health_path="/health"),
    "llamacpp-server": Dialect("llamacpp-server", health_path="/health"),
    "tgi": Dialect("tgi", health_path="/health"),
    "tei": Dialect("tei", health_path="/health"),
    "ollama": Dialect("ollama", health_path="/api/version"),
    "openai": Dialect(
        "openai",
        health_path="base:/models",
        max_tokens_field="max_completion_tokens",
        drop=_ENGINE_ONLY,
    ),
}


def dialect(engine: str) -> Dialect:
    return DIALECTS[engine]
