"""The Anthropic Messages protocol: bodies in, OpenAI-format results out as Anthropic messages and events.

A stream becomes `message_start` (with the prompt's tokens), then one content block per kind of output in
order (thinking with `thinking_delta`s closed by a `signature_delta`, text, each tool call as `tool_use` with
`input_json_delta`s), then `message_delta` (stop reason, stop sequence, usage) and `message_stop`. Errors use
Anthropic's shape, `{"type": "error", "error": {"type", "message"}, "request_id"}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

import orjson

from owstack.errors import OwstackError
from owstack.protocols.anthropic.request import to_chat_request
from owstack.protocols.anthropic.schema import ERROR_TYPES, STOP_REASONS, TAGS, MessagesRequest
from owstack.protocols.base import Plain, marker
from owstack.protocols.body import json_object, validate
from owstack.types import JSON, ChatRequest, Completion

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext

#: thinking blocks carry a signature; owstack's is an HMAC under a per-process key (clients echo it back)
_SIGNING_KEY = secrets.token_bytes(32)


def _event(name: str, data: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_body(error: OwstackError, request_id: str | None = None) -> JSON:
    kind = ERROR_TYPES.get(error.status, "api_error")
    body: JSON = {"type": "error", "error": {"type": kind, "message": error.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def signature(thinking: str) -> str:
    return base64.b64encode(hmac.digest(_SIGNING_KEY, thinking.encode("utf-8"), hashlib.sha256)).decode()


def tool_input(arguments: Any) -> Any:
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def stop_of(ctx: RequestContext, finish_reason: str | None) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence): `stop_sequence` when one of the request's stop strings ended the text."""
    stops = ctx.request.params.get("stop") if ctx.request is not None else None
    if finish_reason in (None, "stop") and ctx.stop_sequence is not None and stops and ctx.stop_sequence in stops:
        return "stop_sequence", ctx.stop_sequence
    return STOP_REASONS.get(finish_reason or "stop", "end_turn"), None


def thinking_shown(ctx: RequestContext) -> tuple[bool, bool]:
    """(thinking blocks wanted, their text shown): Anthropic returns thinking only when the request enabled it
    (`enabled`, `adaptive`), and with `display: "omitted"` returns the blocks with their signature, empty."""
    thinking = ctx.wire_state if isinstance(ctx.wire_state, dict) else {}
    wanted = thinking.get("type") in ("enabled", "adaptive", "between_tools")
    return wanted, thinking.get("display") != "omitted"


def usage_of(ctx: RequestContext) -> JSON:
    usage = ctx.usage
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


class AnthropicMessages(Plain):
    name = "anthropic"
    request_id_header: bytes | None = b"request-id"

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        data = json_object(body)
        validate(MessagesRequest, data, tags=TAGS)
        request, ctx.reasoning_request = to_chat_request(data)
        ctx.wire_state = data.get("thinking") or {}
        return request

    def error(self, error: OwstackError, request_id: str) -> tuple[int, bytes]:
        return error.status, orjson.dumps(error_body(error, request_id))

    def completion(self, ctx: RequestContext, result: Completion) -> bytes:
        choices = result.body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        content: list[JSON] = []
        wanted, shown = thinking_shown(ctx)
        if message.get("reasoning_content") and wanted:
            thinking = message["reasoning_content"]
            content.append(
                {"type": "thinking", "thinking": thinking if shown else "", "signature": signature(thinking)}
            )
        if message.get("content"):
            content.append({"type": "text", "text": message["content"]})
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": fn.get("name"),
                    "input": tool_input(fn.get("arguments")),
                }
            )
        stop_reason, stop_sequence = stop_of(ctx, result.finish_reason)
        body = {
            "id": f"msg_{ctx.request_id}",
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage_of(ctx),
            "owstack": marker(ctx),
        }
        return orjson.dumps(body)

    def encoder(self, ctx: RequestContext) -> AnthropicStream:
        return AnthropicStream(ctx)


class AnthropicStream:
    """OpenAI chunks -> Anthropic stream events, one content block open at a time."""

    wants_usage = True
    #: `message_start` reports the prompt's tokens, so the handler counts them before the first event
    wants_prompt_tokens = True

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._thinking_wanted, self._thinking_shown = thinking_shown(ctx)
        self._index = -1
        self._open: str | None = None  # "thinking", "text" or "tool:<openai index>"
        self._thinking: list[str] = []

    def start(self, ctx: RequestContext) -> bytes:
        message: JSON = {
            "id": f"msg_{ctx.request_id}",
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage_of(ctx), "output_tokens": 0},
            "owstack": marker(ctx),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def chunk(self, chunk: JSON) -> bytes:
        out = b""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                out += self._delta(delta)
        return out

    def _delta(self, delta: JSON) -> bytes:
        out = b""
        if delta.get("reasoning_content") and self._thinking_wanted:
            out += self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            self._thinking.append(delta["reasoning_content"])
            if self._thinking_shown:
                out += self._send({"type": "thinking_delta", "thinking": delta["reasoning_content"]})
        if delta.get("content"):
            out += self._block("text", {"type": "text", "text": ""})
            out += self._send({"type": "text_delta", "text": delta["content"]})
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            key = f"tool:{call.get('index', 0)}"
            if self._open != key:
                block: JSON = {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{self._ctx.request_id}_{self._index + 1}",
                    "name": fn.get("name"),
                    "input": {},
                }
                out += self._block(key, block)
            if fn.get("arguments"):
                out += self._send({"type": "input_json_delta", "partial_json": fn["arguments"]})
        return out

    def _block(self, key: str, block: JSON) -> bytes:
        if self._open == key:
            return b""
        out = self._close_block()
        self._index += 1
        self._open = key
        return out + _event(
            "content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block}
        )

    def _send(self, delta: JSON) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        out = b""
        if self._open == "thinking":
            out += self._send({"type": "signature_delta", "signature": signature("".join(self._thinking))})
            self._thinking = []
        self._open = None
        return out + _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def end(self, ctx: RequestContext) -> bytes:
        out = self._close_block()
        stop_reason, stop_sequence = stop_of(ctx, ctx.finish_reason)
        out += _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": usage_of(ctx),
            },
        )
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, error: OwstackError) -> bytes:
        return _event("error", error_body(error, self._ctx.request_id))

    def close(self) -> bytes:
        return b""
