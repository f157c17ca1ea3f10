"""A validated Responses API body -> the internal (OpenAI chat) request, and the `Turn` that maps back.

instructions + leading system/developer messages -> one system message (chat templates want one, first)
message items (input_text, input_image, input_file, output_text, refusal) -> chat messages and parts
function_call / custom_tool_call items          -> assistant tool_calls (consecutive calls grouped)
function_call_output / custom_tool_call_output  -> tool messages; images a tool returned follow as a
                                                    user message (vision backends see them, others 400)
reasoning items                                 -> `reasoning_content` of the next assistant message
                                                    (owstack's own encrypted_content is decoded)
tools: function, custom (one string `input`), namespace (flattened as `ns__name`); built-in tools that
    the provider runs (web_search, file_search, computer use, code interpreter, image generation, remote
    MCP ...) -> 400 naming the tool
tool_choice, parallel_tool_calls, text.format -> response_format, max_output_tokens -> max_tokens,
reasoning.effort -> the effort table, top_logprobs -> logprobs
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from owstack.efficiency.effort import policy_for_effort
from owstack.errors import InvalidRequest
from owstack.types import JSON, ChatRequest

#: opaque `encrypted_content` of owstack's reasoning items: not a secret (the tenant's own model's reasoning),
#: only a way to hand it back next turn without storing it
REASONING_PREFIX = "owstack-r1."
NAMESPACE_SEP = "__"
CLIENT_TOOLS = ("function", "custom", "namespace")


@dataclass(slots=True)
class ToolName:
    name: str
    kind: str  # "function" or "custom"
    namespace: str | None = None


@dataclass(slots=True)
class Turn:
    """What the encoder needs to answer in the Responses API's terms (kept on `ctx.wire_state`)."""

    body: JSON
    #: internal function name -> the client's tool (for namespaced and custom tools)
    tools: dict[str, ToolName] = field(default_factory=dict)
    #: the whole conversation so far, as Responses items (stored for `previous_response_id`)
    input_items: list[JSON] = field(default_factory=list)
    encrypted_reasoning: bool = False
    store: bool = True
    background: bool = False
    #: the response as sent last (whole, or at the end of its stream), for the store
    final: JSON | None = None


#: the largest reasoning text an `encrypted_content` may inflate to (far above a turn's reasoning)
MAX_REASONING_BYTES = 8 * 1024 * 1024


def encode_reasoning(text: str) -> str:
    return REASONING_PREFIX + base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"))).decode()


def decode_reasoning(value: Any, where: str = "encrypted_content") -> str | None:
    """The reasoning text owstack packed into `encrypted_content` (None for another provider's ciphertext or
    a damaged value). Inflated to at most `MAX_REASONING_BYTES`: zlib expands up to ~1,000 times, so a body
    within the size limit could otherwise ask for gigabytes of memory (400)."""
    if not isinstance(value, str) or not value.startswith(REASONING_PREFIX):
        return None  # another provider's ciphertext: nothing owstack can read
    try:
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.urlsafe_b64decode(value[len(REASONING_PREFIX) :]), MAX_REASONING_BYTES + 1)
        if len(data) > MAX_REASONING_BYTES or inflate.unconsumed_tail:
            raise InvalidRequest(
                f"{where}: the reasoning it holds is larger than {MAX_REASONING_BYTES // (1024 * 1024)} MiB",
                param=where,
            )
        return data.decode("utf-8")
    except (ValueError, zlib.error, UnicodeDecodeError):
        return None


def to_chat_request(data: JSON, history: list[JSON]) -> tuple[ChatRequest, Turn]:
    """`data` validated; `history` the items of `previous_response_id`'s conversation (or [])."""
    turn = Turn(body=data, store=data.get("store") is not False, background=bool(data.get("background")))
    tools = _tools(data.get("tools") or [], turn)
    raw = data.get("input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    turn.input_items = [*history, *items]
    turn.encrypted_reasoning = "reasoning.encrypted_content" in (data.get("include") or ())
    messages = _messages(turn.input_items, data.get("instructions"), turn)
    if not messages:
        raise InvalidRequest("input: send at least one message", param="input")
    params: JSON = {}
    if data.get("max_output_tokens") is not None:
        params["max_tokens"] = data["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if data.get(name) is not None:
            params[name] = data[name]
    if tools:
        params["tools"] = tools
        params["tool_choice"] = _tool_choice(data.get("tool_choice"), turn)
    top = data.get("top_logprobs")
    if top or "message.output_text.logprobs" in (data.get("include") or ()):
        params["logprobs"] = True
        params["top_logprobs"] = top or 0
    fmt = _response_format((data.get("text") or {}).get("format"))
    if fmt is not None:
        params["response_format"] = fmt
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
    return request, turn


def reasoning_policy(data: JSON) -> str | None:
    if data.get("reasoning_policy") is not None:
        return str(data["reasoning_policy"])
    return policy_for_effort((data.get("reasoning") or {}).get("effort"), param="reasoning.effort")


# tools ------------------------------------------------------------------------------------------------
def _tools(tools: list[JSON], turn: Turn) -> list[JSON]:
    out: list[JSON] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "namespace":
            space = _name(tool, f"tools[{i}]")
            for j, inner in enumerate(_list(tool.get("tools"), f"tools[{i}].tools")):
                out.append(_tool(inner, f"tools[{i}].tools[{j}]", turn, space))
        else:
            out.append(_tool(tool, f"tools[{i}]", turn, None))
    return out


def _name(tool: JSON, where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name: a tool needs a name", param=f"{where}.name")
    return name


def _list(value: Any, where: str) -> list[Any]:
    """An optional list field of a nested object (the schema types the top level only)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{where} must be a list", param=where)
    return value


def _object(value: Any, where: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    return value


def _tool(tool: Any, where: str, turn: Turn, namespace: str | None) -> JSON:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    kind = tool.get("type")
    if kind not in ("function", "custom"):
        raise InvalidRequest(
            f"{where}: owstack does not run the built-in tool {kind!r}; the model's provider would run it, and "
            "here the provider is your own backend. Define it as a function tool that your agent executes",
            param=f"{where}.type",
            code="unsupported_tool",
        )
    name = _name(tool, where)
    internal = f"{namespace}{NAMESPACE_SEP}{name}" if namespace else name
    turn.tools[internal] = ToolName(name=name, kind=kind, namespace=namespace)
    description = tool.get("description") or ""
    if kind == "custom":
        fmt = _object(tool.get("format"), f"{where}.format")
        if fmt.get("type") == "grammar":
            description += f"\nThe input must follow this {fmt.get('syntax')} grammar:\n{fmt.get('definition')}"
        parameters: JSON = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
            "required": ["input"],
        }
    else:
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
    function: JSON = {"name": internal, "description": description, "parameters": parameters}
    if tool.get("strict") is not None and kind == "function":
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, turn: Turn) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice or "auto"
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            name = str(choice.get("name") or "")
            space = choice.get("namespace")
            internal = f"{space}{NAMESPACE_SEP}{name}" if space else name
            if internal not in turn.tools:
                raise InvalidRequest(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
            return {"type": "function", "function": {"name": internal}}
        if kind == "allowed_tools":
            return "required" if choice.get("mode") == "required" else "auto"
        raise InvalidRequest(
            f"tool_choice: owstack does not run the built-in tool {kind!r}",
            param="tool_choice",
            code="unsupported_tool",
        )
    raise InvalidRequest("tool_choice must be auto, none, required or a tool", param="tool_choice")


def _response_format(fmt: Any) -> JSON | None:
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest("text.format.schema: a json_schema format needs a schema", param="text.format.schema")
    spec: JSON = {"name": fmt.get("name") or "output", "schema": schema}
    if fmt.get("strict") is not None:
        spec["strict"] = fmt["strict"]
    return {"type": "json_schema", "json_schema": spec}


# items -> messages -----------------------------------------------------------------------------------
def _messages(items: list[JSON], instructions: Any, turn: Turn) -> list[JSON]:
    system: list[str] = [instructions] if isinstance(instructions, str) and instructions else []
    out: list[JSON] = []
    reasoning: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input[{index}] must be an object", param=f"input[{index}]")
        kind = item.get("type") or ("message" if "role" in item else None)
        where = f"input[{index}]"
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                text = _text(item.get("content"), where)
                if not out:
                    system.append(text)
                else:
                    out.append({"role": "system", "content": text})
            elif role == "user":
                out.append({"role": "user", "content": _parts(item.get("content"), where)})
            elif role == "assistant":
                message: JSON = {"role": "assistant", "content": _text(item.get("content"), where)}
                if reasoning:
                    message["reasoning_content"] = "\n".join(reasoning)
                    reasoning = []
                out.append(message)
            else:
                raise InvalidRequest(f"{where}.role: unknown role {role!r}", param=f"{where}.role")
        elif kind in ("function_call", "custom_tool_call"):
            _call(out, item, where, reasoning)
            reasoning = []
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _output(out, item, where)
        elif kind == "reasoning":
            text = decode_reasoning(item.get("encrypted_content"), f"{where}.encrypted_content") or _reasoning_text(
                item, where
            )
            if text:
                reasoning.append(text)
        else:
            raise InvalidRequest(
                f"{where}: owstack does not take {kind!r} items (they belong to tools the provider runs, or to "
                "stored items; send their content as messages)",
                param=f"{where}.type",
                code="unsupported_item",
            )
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return out


def _call(out: list[JSON], item: JSON, where: str, reasoning: list[str]) -> None:
    name = item.get("name")
    call_id = item.get("call_id")
    if not isinstance(name, str) or not isinstance(call_id, str):
        raise InvalidRequest(f"{where}: a tool call needs name and call_id", param=where)
    space = item.get("namespace")
    internal = f"{space}{NAMESPACE_SEP}{name}" if space else name
    if item.get("type") == "custom_tool_call":
        arguments = orjson.dumps({"input": item.get("input") or ""}).decode()
    else:
        given = item.get("arguments")
        arguments = given if isinstance(given, str) else "{}"
    call = {"id": call_id, "type": "function", "function": {"name": internal, "arguments": arguments}}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant" and not reasoning:
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
        return
    message: JSON = {"role": "assistant", "content": None, "tool_calls": [call]}
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    out.append(message)


def _output(out: list[JSON], item: JSON, where: str) -> None:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"{where}.call_id: required", param=f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, str) or output is None:
        out.append({"role": "tool", "tool_call_id": call_id, "content": output or ""})
        return
    parts = _parts(output, f"{where}.output")
    assert isinstance(parts, list)  # a string output was handled above
    texts = [p["text"] for p in parts if p["type"] == "text"]
    others = [p for p in parts if p["type"] != "text"]
    out.append({"role": "tool", "tool_call_id": call_id, "content": "\n".join(texts)})
    if others:
        out.append({"role": "user", "content": [{"type": "text", "text": "Content returned by the tool:"}, *others]})


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            texts.append(str(part.get("text", "")))
        elif kind == "refusal":
            texts.append(str(part.get("refusal", "")))
        else:
            raise InvalidRequest(
                f"{where}.content[{j}]: a {kind} part cannot appear in this message", param=f"{where}.content[{j}]"
            )
    return "".join(texts)


def _parts(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    parts: list[JSON] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}.content[{j}]"
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise InvalidRequest(
                    f"{at}: images are taken by URL or data: URL (`image_url`); owstack hosts no Files API",
                    param=at,
                    code="unsupported_content",
                )
            image: JSON = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            if not (part.get("file_data") or part.get("file_url")):
                raise InvalidRequest(
                    f"{at}: files are taken inline (`file_data`) or by `file_url`; owstack hosts no Files API",
                    param=at,
                    code="unsupported_content",
                )
            file = {k: part[k] for k in ("file_data", "file_url", "filename") if part.get(k)}
            parts.append({"type": "file", "file": file})
        else:
            raise InvalidRequest(f"{at}: unknown content part {kind!r}", param=f"{at}.type")
    return parts


def _reasoning_text(item: JSON, where: str) -> str:
    texts = [p.get("text", "") for p in _list(item.get("content"), f"{where}.content") if isinstance(p, dict)]
    if not any(texts):
        texts = [p.get("text", "") for p in _list(item.get("summary"), f"{where}.summary") if isinstance(p, dict)]
    return "\n".join(t for t in texts if isinstance(t, str) and t)


def _has_image(message: JSON) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content)
