"""Anthropic Messages API request schema, and its translation into the internal (OpenAI-format) request.

Pure: no engine imports. What maps where:

    system (string or text blocks)        -> a system message
    user text / image blocks              -> user content parts (images as data: or https: image_url)
    user tool_result blocks               -> tool messages (tool_call_id = tool_use_id), before the user's text
    assistant text / tool_use blocks      -> assistant content / tool_calls (input as JSON arguments)
    tools[].input_schema                  -> tools[].function.parameters
    tool_choice auto|any|tool|none        -> auto|required|{function}|none
    stop_sequences, max_tokens, temperature, top_p, top_k, metadata.user_id -> their OpenAI counterparts
    thinking {type: enabled, budget_tokens: N} -> the reasoning policy `budget:N`; {type: disabled} -> `off`;
                                             adaptive / between_tools -> the engine's own behaviour
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from owstack.types import JSON, ChatRequest


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextBlock(_Open):
    type: Literal["text"]
    text: str


class ImageSource(_Open):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ImageBlock(_Open):
    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    input: dict[str, Any]


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: Annotated[str, Field(min_length=1)]
    content: str | list[TextBlock | ImageBlock] | None = None
    is_error: bool | None = None


class ThinkingBlock(_Open):
    type: Literal["thinking", "redacted_thinking"]


Block = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock, Field(discriminator="type")]


class Message(_Open):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[Block], Field(min_length=1)]


class Tool(_Open):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: str | None = None
    input_schema: dict[str, Any]


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class Thinking(_Open):
    #: enabled (with a budget), disabled, or left to the model (adaptive, between_tools)
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: Annotated[int, Field(ge=0)] | None = None


class MessagesRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    max_tokens: Annotated[int, Field(ge=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = False
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    metadata: dict[str, Any] | None = None


def to_chat_request(data: JSON) -> tuple[ChatRequest, str | None]:
    """A validated Messages body -> (the internal request, the reasoning policy its `thinking` asks for)."""
    messages: list[JSON] = []
    system = data.get("system")
    if system:
        messages.append({"role": "system", "content": _text(system)})
    for message in data["messages"]:
        messages.extend(_message(message))
    params: JSON = {"max_tokens": data["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):
        if data.get(name) is not None:
            params[name] = data[name]
    if data.get("stop_sequences"):
        params["stop"] = data["stop_sequences"]
    user = (data.get("metadata") or {}).get("user_id")
    if user:
        params["user"] = str(user)
    tools = data.get("tools")
    if tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description") or "",
                    "parameters": t["input_schema"],
                },
            }
            for t in tools
        ]
    choice = data.get("tool_choice")
    if choice:
        params["tool_choice"] = _tool_choice(choice)
    stream = bool(data.get("stream"))
    request = ChatRequest(
        model=data["model"],
        messages=messages,
        stream=stream,
        include_usage=stream,
        params=params,
        has_images=any(_has_image(m) for m in messages),
        has_tools=bool(tools) or any(m["role"] == "tool" or m.get("tool_calls") for m in messages),
    )
    return request, _policy(data.get("thinking"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def _image_part(block: JSON) -> JSON:
    source = block["source"]
    url = (
        source.get("url") if source["type"] == "url" else f"data:{source.get('media_type')};base64,{source.get('data')}"
    )
    return {"type": "image_url", "image_url": {"url": url}}


def _message(message: JSON) -> list[JSON]:
    content = message["content"]
    role = message["role"]
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "assistant":
        text = "".join(b["text"] for b in content if b["type"] == "text")
        calls = [
            {
                "id": b["id"],
                "type": "function",
                "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()},
            }
            for b in content
            if b["type"] == "tool_use"
        ]
        out: JSON = {"role": "assistant", "content": text or None}
        if calls:
            out["tool_calls"] = calls
        elif not text:
            out["content"] = ""
        return [out]
    results = [
        {
            "role": "tool",
            "tool_call_id": b["tool_use_id"],
            "content": ("Error: " if b.get("is_error") else "") + _text(b.get("content") or ""),
        }
        for b in content
        if b["type"] == "tool_result"
    ]
    parts = [
        {"type": "text", "text": b["text"]} if b["type"] == "text" else _image_part(b)
        for b in content
        if b["type"] in ("text", "image")
    ]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _tool_choice(choice: JSON) -> Any:
    kind = choice["type"]
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name") or ""}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def _policy(thinking: Any) -> str | None:
    if not isinstance(thinking, dict):
        return None
    if thinking.get("type") == "disabled":
        return "off"
    budget = thinking.get("budget_tokens")
    return f"budget:{budget}" if isinstance(budget, int) else None


def _has_image(message: JSON) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(p.get("type") == "image_url" for p in content)


STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}
