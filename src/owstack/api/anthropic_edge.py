"""The Anthropic Messages edge: OpenAI-format results out as Anthropic messages and stream events.

A stream becomes `message_start`, then one content block per kind of output in order (thinking, text,
each tool call as `tool_use` with `input_json_delta`s), then `message_delta` (stop reason, usage) and
`message_stop`. Errors use Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`.
"""

from __future__ import annotations

from typing import Any

import orjson

from owstack.api.handler import marker
from owstack.errors import OwstackError
from owstack.pipeline.context import RequestContext
from owstack.protocol.anthropic import ERROR_TYPES, STOP_REASONS
from owstack.types import JSON, Completion


def _event(name: str, data: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _error_body(error: OwstackError) -> JSON:
    kind = ERROR_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def _input(arguments: Any) -> Any:
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


class AnthropicEdge:
    protocol = "anthropic"

    def error(self, error: OwstackError) -> tuple[int, bytes]:
        return error.status, orjson.dumps(_error_body(error))

    def completion(self, ctx: RequestContext, result: Completion) -> bytes:
        choices = result.body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        content: list[JSON] = []
        if message.get("reasoning_content"):
            content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
        if message.get("content"):
            content.append({"type": "text", "text": message["content"]})
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            content.append(
                {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": _input(fn.get("arguments"))}
            )
        body = {
            "id": f"msg_{ctx.request_id}",
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": STOP_REASONS.get(result.finish_reason or "stop", "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": ctx.usage.prompt_tokens, "output_tokens": ctx.usage.completion_tokens},
            "owstack": marker(ctx),
        }
        return orjson.dumps(body)

    def encoder(self, ctx: RequestContext) -> AnthropicStream:
        return AnthropicStream(ctx)


class AnthropicStream:
    """OpenAI chunks -> Anthropic stream events, one content block open at a time."""

    wants_usage = True

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._started = False
        self._index = -1
        self._open: str | None = None  # "thinking", "text" or "tool:<openai index>"

    def chunk(self, chunk: JSON) -> bytes:
        out = b""
        if not self._started:
            self._started = True
            message: JSON = {
                "id": f"msg_{self._ctx.request_id}",
                "type": "message",
                "role": "assistant",
                "model": self._ctx.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
                "owstack": marker(self._ctx),
            }
            out += _event("message_start", {"type": "message_start", "message": message})
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                out += self._delta(delta)
        return out

    def _delta(self, delta: JSON) -> bytes:
        out = b""
        if delta.get("reasoning_content"):
            out += self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
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
                    "id": call.get("id") or f"toolu_{self._index + 1}",
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
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def end(self, ctx: RequestContext) -> bytes:
        out = self._close_block()
        usage = {"input_tokens": ctx.usage.prompt_tokens, "output_tokens": ctx.usage.completion_tokens}
        stop = STOP_REASONS.get(ctx.finish_reason or "stop", "end_turn")
        out += _event(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage},
        )
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, error: OwstackError) -> bytes:
        return _event("error", _error_body(error))

    def close(self) -> bytes:
        return b""
