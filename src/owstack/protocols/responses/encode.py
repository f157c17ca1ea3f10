"""The Responses API's objects: output items from the internal result, and the response around them.

Item ids are made here once and used in the stream and in the final (and stored) response alike.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from owstack.protocols.base import marker
from owstack.protocols.responses.request import Turn, encode_reasoning
from owstack.types import JSON

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext

#: fields of the request the response object echoes back as they were sent
_ECHO = ("instructions", "max_output_tokens", "parallel_tool_calls", "previous_response_id", "temperature", "top_p")


def response_id(ctx: RequestContext) -> str:
    return f"resp_{ctx.request_id}"


def item_id(ctx: RequestContext, prefix: str, index: int) -> str:
    return f"{prefix}_{ctx.request_id}_{index}"


def reasoning_item(ctx: RequestContext, index: int, text: str, turn: Turn) -> JSON:
    item: JSON = {
        "id": item_id(ctx, "rs", index),
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": "completed",
    }
    if turn.encrypted_reasoning:
        item["encrypted_content"] = encode_reasoning(text)
    return item


def text_part(text: str, logprobs: list[JSON] | None = None) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def message_item(ctx: RequestContext, index: int, text: str, status: str = "completed") -> JSON:
    content = [text_part(text)] if status == "completed" else []
    return {
        "id": item_id(ctx, "msg", index),
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def call_item(ctx: RequestContext, index: int, call: JSON, turn: Turn, status: str = "completed") -> JSON:
    """An OpenAI tool call -> a `function_call` (or `custom_tool_call`) item under the client's names."""
    fn = call.get("function") or {}
    internal = fn.get("name") or ""
    given = fn.get("arguments")
    arguments = given if isinstance(given, str) else ""
    tool = turn.tools.get(internal)
    call_id = call.get("id") or f"call_{ctx.request_id}_{index}"
    if tool is not None and tool.kind == "custom":
        item: JSON = {
            "id": item_id(ctx, "ctc", index),
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "id": item_id(ctx, "fc", index),
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name if tool is not None else internal,
            "arguments": arguments,
        }
    if tool is not None and tool.namespace:
        item["namespace"] = tool.namespace
    return item


def custom_input(arguments: str) -> str:
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments


def output_items(ctx: RequestContext, message: JSON, turn: Turn) -> list[JSON]:
    """The items of a whole (non-streamed) chat message, in the order a stream would have produced them."""
    items: list[JSON] = []
    if message.get("reasoning_content"):
        items.append(reasoning_item(ctx, len(items), message["reasoning_content"], turn))
    if message.get("content"):
        item = message_item(ctx, len(items), message["content"])
        logprobs = message.get("logprobs_content")
        if logprobs:
            item["content"][0]["logprobs"] = logprobs
        items.append(item)
    for call in message.get("tool_calls") or ():
        items.append(call_item(ctx, len(items), call, turn))
    return items


def usage(ctx: RequestContext) -> JSON:
    u = ctx.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def status_of(finish_reason: str | None) -> tuple[str, JSON | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response(
    ctx: RequestContext,
    turn: Turn,
    *,
    status: str,
    output: list[JSON],
    error: JSON | None = None,
    incomplete: JSON | None = None,
    with_usage: bool = True,
) -> JSON:
    body = turn.body
    text = body.get("text") or {}
    reasoning = body.get("reasoning") or {}
    out: JSON = {
        "id": response_id(ctx),
        "object": "response",
        "created_at": int(ctx.received_at),
        "status": status,
        "background": turn.background,
        "error": error,
        "incomplete_details": incomplete,
        "model": ctx.model or body.get("model"),
        "output": output,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": turn.store,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "truncation": body.get("truncation") or "disabled",
        "usage": usage(ctx) if with_usage else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
        "owstack": marker(ctx),
    }
    for name in _ECHO:
        out[name] = body.get(name, True if name == "parallel_tool_calls" else None)
    if status in ("completed", "incomplete", "failed", "cancelled"):
        out["completed_at"] = int(time.time())
    return out


def first_message(body: JSON) -> JSON:
    choices = body.get("choices") or [{}]
    first: Any = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    logprobs = first.get("logprobs")
    if isinstance(logprobs, dict) and logprobs.get("content"):
        message = {**message, "logprobs_content": logprobs["content"]}
    return message
