"""OpenAI chunks -> Responses API stream events, in the documented order, with stable item ids.

    response.created, response.in_progress
    per item: response.output_item.added
        reasoning: response.reasoning_text.delta ... .done
        message:   response.content_part.added, response.output_text.delta ... .done, response.content_part.done
        call:      response.function_call_arguments.delta ... .done (custom tools: custom_tool_call_input.*)
    response.output_item.done
    response.completed | response.incomplete (max_output_tokens) | response.failed (an error mid-stream)

Every event carries a `sequence_number`. The final response lists the same items, with the same ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from owstack.errors import OwstackError
from owstack.protocols.responses import encode
from owstack.protocols.responses.request import Turn
from owstack.types import JSON

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext


class _Open:
    """The item being streamed: its kind, index and the text or arguments gathered so far."""

    __slots__ = ("call", "index", "key", "kind", "parts")

    def __init__(self, kind: str, key: str, index: int, call: JSON | None = None) -> None:
        self.kind = kind
        self.key = key
        self.index = index
        self.parts: list[str] = []
        self.call = call


class ResponsesStream:
    wants_usage = True
    wants_prompt_tokens = False

    def __init__(self, ctx: RequestContext, turn: Turn) -> None:
        self._ctx = ctx
        self._turn = turn
        self._seq = 0
        self._open: _Open | None = None
        self.items: list[JSON] = []
        self.final: JSON | None = None

    def _event(self, kind: str, data: JSON) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def start(self, ctx: RequestContext) -> bytes:
        shell = encode.response(ctx, self._turn, status="in_progress", output=[], with_usage=False)
        return self._event("response.created", {"response": shell}) + self._event(
            "response.in_progress", {"response": shell}
        )

    def chunk(self, chunk: JSON) -> bytes:
        out = b""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            if delta.get("reasoning_content"):
                out += self._open_item("reasoning", "reasoning") + self._reasoning(delta["reasoning_content"])
            if delta.get("content"):
                out += self._open_item("message", "message") + self._text(delta["content"])
            for call in delta.get("tool_calls") or ():
                out += self._call(call)
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict) and self._open is not None and self._open.kind == "message":
                self._open.call = self._open.call or {"logprobs": []}
                self._open.call["logprobs"].extend(logprobs.get("content") or ())
        return out

    # items -------------------------------------------------------------------------------------------
    def _open_item(self, kind: str, key: str, call: JSON | None = None) -> bytes:
        if self._open is not None and self._open.key == key:
            return b""
        out = self._close()
        index = len(self.items)
        self._open = _Open(kind, key, index, call)
        ctx = self._ctx
        if kind == "reasoning":
            item = {"id": encode.item_id(ctx, "rs", index), "type": "reasoning", "summary": [], "content": []}
        elif kind == "message":
            item = encode.message_item(ctx, index, "", status="in_progress")
        else:
            item = encode.call_item(ctx, index, call or {}, self._turn, status="in_progress")
        self.items.append(item)
        out += self._event("response.output_item.added", {"output_index": index, "item": item})
        if kind == "message":
            out += self._event(
                "response.content_part.added",
                {"item_id": item["id"], "output_index": index, "content_index": 0, "part": encode.text_part("")},
            )
        return out

    def _where(self) -> JSON:
        assert self._open is not None
        return {"item_id": self.items[self._open.index]["id"], "output_index": self._open.index}

    def _reasoning(self, text: str) -> bytes:
        assert self._open is not None
        self._open.parts.append(text)
        return self._event("response.reasoning_text.delta", {**self._where(), "content_index": 0, "delta": text})

    def _text(self, text: str) -> bytes:
        assert self._open is not None
        self._open.parts.append(text)
        return self._event(
            "response.output_text.delta", {**self._where(), "content_index": 0, "delta": text, "logprobs": []}
        )

    def _call(self, call: JSON) -> bytes:
        key = f"call:{call.get('index', 0)}"
        fn = call.get("function") or {}
        out = b""
        if self._open is None or self._open.key != key:
            start = {"id": call.get("id"), "function": {"name": fn.get("name"), "arguments": ""}}
            out += self._open_item("call", key, start)
        opened = self._open
        assert opened is not None
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            opened.parts.append(arguments)
            if self.items[opened.index]["type"] == "function_call":
                out += self._event("response.function_call_arguments.delta", {**self._where(), "delta": arguments})
        return out

    def _close(self) -> bytes:
        opened = self._open
        if opened is None:
            return b""
        self._open = None
        ctx, index = self._ctx, opened.index
        text = "".join(opened.parts)
        where = {"item_id": self.items[index]["id"], "output_index": index}
        out = b""
        if opened.kind == "reasoning":
            item = encode.reasoning_item(ctx, index, text, self._turn)
            out += self._event("response.reasoning_text.done", {**where, "content_index": 0, "text": text})
        elif opened.kind == "message":
            logprobs = (opened.call or {}).get("logprobs") or []
            item = encode.message_item(ctx, index, text)
            item["content"][0]["logprobs"] = logprobs
            part = item["content"][0]
            out += self._event(
                "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": logprobs}
            )
            out += self._event("response.content_part.done", {**where, "content_index": 0, "part": part})
        else:
            call: Any = opened.call or {}
            full = {
                "id": call.get("id"),
                "function": {"name": (call.get("function") or {}).get("name"), "arguments": text},
            }
            item = encode.call_item(ctx, index, full, self._turn)
            if item["type"] == "custom_tool_call":
                out += self._event("response.custom_tool_call_input.delta", {**where, "delta": item["input"]})
                out += self._event("response.custom_tool_call_input.done", {**where, "input": item["input"]})
            else:
                out += self._event(
                    "response.function_call_arguments.done", {**where, "name": item["name"], "arguments": text}
                )
        self.items[index] = item
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    # the end -----------------------------------------------------------------------------------------
    def end(self, ctx: RequestContext) -> bytes:
        out = self._close()
        status, incomplete = encode.status_of(ctx.finish_reason)
        self.final = self._turn.final = encode.response(
            ctx, self._turn, status=status, output=self.items, incomplete=incomplete
        )
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": self.final})

    def error(self, error: OwstackError) -> bytes:
        out = self._close()
        failure = {"code": error.code or error.type, "message": error.message}
        self.final = encode.response(self._ctx, self._turn, status="failed", output=self.items, error=failure)
        return out + self._event("response.failed", {"response": self.final})

    def close(self) -> bytes:
        return b""
