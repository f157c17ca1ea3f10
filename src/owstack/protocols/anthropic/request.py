"""A validated Anthropic Messages body -> the internal (OpenAI-format) request. Pure: no engine imports.

system (string or text blocks)          -> a system message; `role: system` messages stay where they are
user text / image / document blocks     -> user content parts (images as data: or https: image_url,
                                           text documents as text, PDFs as OpenAI `file` parts)
user tool_result blocks                 -> tool messages (tool_call_id = tool_use_id), before the user's
                                           text; images a tool returned follow as a user message, so a
                                           vision backend sees them and a text-only one refuses (400)
assistant text / tool_use blocks        -> assistant content / tool_calls (input as JSON arguments)
tools[].input_schema                    -> tools[].function.parameters (server tools: 400 naming them)
tool_choice auto|any|tool|none          -> auto|required|{function}|none; disable_parallel_tool_use
stop_sequences, max_tokens, temperature, top_p, top_k, metadata.user_id -> their OpenAI counterparts
output_config.format (json_schema)      -> response_format json_schema (strict)
thinking disabled -> `off`; output_config.effort -> the effort table; thinking enabled -> `budget:N`;
adaptive / between_tools                -> the engine's own behaviour
"""

from __future__ import annotations

from typing import Any

import orjson

from owstack.efficiency.effort import policy_for_effort
from owstack.errors import InvalidRequest
from owstack.types import JSON, ChatRequest


def to_chat_request(data: JSON) -> tuple[ChatRequest, str | None]:
    """A validated Messages body -> (the internal request, the reasoning policy it asks for)."""
    messages: list[JSON] = []
    system = data.get("system")
    if system:
        messages.append({"role": "system", "content": text_of(system)})
    for index, message in enumerate(data["messages"]):
        messages.extend(_message(message, index))
    params: JSON = {}
    if data.get("max_tokens") is not None:
        params["max_tokens"] = data["max_tokens"]
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
        params["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    choice = data.get("tool_choice")
    if choice:
        params["tool_choice"] = _tool_choice(choice)
        if choice.get("disable_parallel_tool_use"):
            params["parallel_tool_calls"] = False
    output = data.get("output_config") or {}
    fmt = output.get("format")
    if fmt:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True},
        }
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
    return request, _policy(data.get("thinking"), output.get("effort"))


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def _tool(tool: JSON, index: int) -> JSON:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequest(
            f"tools[{index}]: {kind!r} ({tool.get('name')}) is a tool Anthropic runs on its own servers; owstack "
            "runs no server tools: define it as a client tool with an input_schema",
            param=f"tools[{index}].type",
            code="unsupported_tool",
        )
    if tool.get("input_schema") is None:
        raise InvalidRequest(f"tools[{index}].input_schema: field required", param=f"tools[{index}].input_schema")
    return {
        "type": "function",
        "function": {
            "name": tool["name"],
            "description": tool.get("description") or "",
            "parameters": tool["input_schema"],
        },
    }


def _image_part(block: JSON) -> JSON:
    source = block["source"]
    kind = source["type"]
    if kind == "url":
        url = source.get("url")
    elif kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    else:
        raise InvalidRequest(
            "image sources of type 'file' refer to Anthropic's Files API, which owstack does not host; "
            "send the image as base64 or a URL",
            code="unsupported_content",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: JSON) -> list[JSON]:
    source = block["source"]
    kind = source["type"]
    title = block.get("title")
    head = [{"type": "text", "text": f"Document: {title}"}] if title else []
    if kind == "text":
        return [*head, {"type": "text", "text": source.get("data") or ""}]
    if kind == "content":
        content = source.get("content") or ""
        if isinstance(content, str):
            return [*head, {"type": "text", "text": content}]
        return [*head, *(_part(b) for b in content)]
    if kind == "base64":
        media = source.get("media_type") or "application/pdf"
        data_url = f"data:{media};base64,{source.get('data')}"
        return [*head, {"type": "file", "file": {"file_data": data_url, "filename": title or "document.pdf"}}]
    if kind == "url":
        return [*head, {"type": "file", "file": {"file_url": source.get("url"), "filename": title or "document"}}]
    raise InvalidRequest(
        "document sources of type 'file' refer to Anthropic's Files API, which owstack does not host",
        code="unsupported_content",
    )


def _part(block: JSON) -> JSON:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return _image_part(block)
    if kind == "search_result":
        body = "\n".join(b.get("text", "") for b in block.get("content") or ())
        return {"type": "text", "text": f"{block.get('title') or ''} ({block.get('source')})\n{body}".strip()}
    raise InvalidRequest(f"a {kind} block cannot appear here", code="unsupported_content")


def _user_parts(blocks: list[JSON]) -> list[JSON]:
    parts: list[JSON] = []
    for block in blocks:
        if block["type"] == "document":
            parts.extend(_document_parts(block))
        elif block["type"] in ("text", "image", "search_result"):
            parts.append(_part(block))
    return parts


def _message(message: JSON, index: int) -> list[JSON]:
    content = message["content"]
    role = message["role"]
    if role == "system":
        return [{"role": "system", "content": text_of(content)}]
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    for block in content:
        if block["type"] in ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result"):
            raise InvalidRequest(
                f"messages[{index}]: {block['type']} blocks come from tools Anthropic runs; owstack runs none",
                param=f"messages[{index}].content",
                code="unsupported_content",
            )
    if role == "assistant":
        return [_assistant(content)]
    out: list[JSON] = []
    returned: list[JSON] = []  # non-text parts tools returned, shown to the model after the results
    for block in content:
        if block["type"] != "tool_result":
            continue
        text, extra = _tool_result(block)
        out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
        returned.extend(extra)
    if returned:
        out.append({"role": "user", "content": [{"type": "text", "text": "Content returned by the tools:"}, *returned]})
    parts = _user_parts(content)
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant(content: list[JSON]) -> JSON:
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
    return out


def _tool_result(block: JSON) -> tuple[str, list[JSON]]:
    """A tool_result's text, and the parts that are not text (images, PDFs) to show the model separately."""
    prefix = "Error: " if block.get("is_error") else ""
    content = block.get("content") or ""
    if isinstance(content, str):
        return prefix + content, []
    texts: list[str] = []
    extra: list[JSON] = []
    for part in _user_parts(content):
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            extra.append(part)
    return prefix + "\n".join(texts), extra


def _tool_choice(choice: JSON) -> Any:
    kind = choice["type"]
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name") or ""}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def _policy(thinking: Any, effort: Any) -> str | None:
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return "off"
    by_effort = policy_for_effort(effort, param="output_config.effort")
    if by_effort is not None:
        return by_effort
    budget = thinking.get("budget_tokens") if kind == "enabled" else None
    return f"budget:{budget}" if isinstance(budget, int) else None


def _has_image(message: JSON) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content)
