"""What differs between OpenAI-compatible engines, as data: one `Dialect` per engine.

All of them speak `POST {base}/chat/completions`; they differ in where their health probe lives, whether a
stream can carry a final usage chunk, which token-limit field they take, which non-OpenAI fields they
reject, where they put reasoning text, and how they take structured-output constraints:

- vLLM, SGLang, llama.cpp's server and Ollama take OpenAI's `response_format` (json_schema, json_object)
  as it is; TGI takes `{"type": "json_schema", "value": {"name", "schema"}}` (its `GrammarType`,
  router/src/lib.rs) and has no "any JSON object" mode;
- each enforces a different part of JSON Schema (`schema_profile`, see `schema_check.PROFILES`): a schema
  the engine would not enforce is refused with a 400 here, before it is sent;
- OpenAI validates its own schemas (no profile: passed through unchecked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from owstack.backends import structured
from owstack.errors import InvalidRequest
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
    #: what part of JSON Schema the engine's guided decoding enforces (None: not checked by owstack)
    schema_profile: str | None = "gbnf"
    #: the shape of `response_format` the engine takes: "openai" or "tgi"
    response_format: str = "openai"
    #: enforces `response_format: {"type": "json_object"}`
    json_object: bool = True
    #: leaves tool-call markup in the text (owstack reads it with the model card's format)
    tool_markup: bool = False

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
        if "response_format" in body or body.get("tool_choice") not in (None, "auto", "none"):
            self._structured(body)
        return body

    def _structured(self, body: JSON) -> None:
        """Refuse what the engine would not enforce; put `response_format` in the engine's shape."""
        if self.schema_profile is None:
            return
        fmt = structured.output_format(body)
        if fmt is not None:
            if fmt.kind == "json_object" and not self.json_object:
                raise InvalidRequest(
                    f"the {self.engine} engine cannot enforce response_format json_object; "
                    "send a json_schema response_format instead",
                    param="response_format",
                )
            structured.check_format(fmt, self.schema_profile)
            if self.response_format == "tgi":
                body["response_format"] = {
                    "type": "json_schema",
                    "value": {"name": fmt.name or None, "schema": fmt.schema},
                }
        forced = structured.forced_tools(body, structured.functions(body.get("tools")))
        structured.check_tools(forced, self.schema_profile)

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
    # guided decoding: xgrammar by default (vLLM `--structured-outputs-config`, SGLang `--grammar-backend`)
    "vllm": Dialect("vllm", health_path="/health", schema_profile="xgrammar"),
    "sglang": Dialect("sglang", health_path="/health", schema_profile="xgrammar"),
    # llama.cpp's own JSON-schema-to-GBNF converter (common/json-schema-to-grammar.cpp)
    "llamacpp-server": Dialect("llamacpp-server", health_path="/health", schema_profile="gbnf"),
    # outlines-core turns the schema into one regular expression: no recursion, no "any object"
    "tgi": Dialect("tgi", health_path="/health", schema_profile="outlines", response_format="tgi", json_object=False),
    # TEI serves embeddings only: nothing to decode
    "tei": Dialect("tei", health_path="/health"),
    # Ollama's `format` runs through llama.cpp's converter too
    "ollama": Dialect("ollama", health_path="/api/version", schema_profile="gbnf"),
    "openai": Dialect(
        "openai",
        health_path="base:/models",
        max_tokens_field="max_completion_tokens",
        drop=_ENGINE_ONLY,
        schema_profile=None,
    ),
}


def dialect(engine: str) -> Dialect:
    return DIALECTS[engine]
