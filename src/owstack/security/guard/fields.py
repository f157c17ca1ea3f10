"""Every text field of the internal request that reaches a prompt, with its field class for the policy.

The internal request is OpenAI's chat format; the protocol edges translate Anthropic messages (text,
`tool_use.input`, `tool_result`, system blocks) and Responses items (`input_text`, `function_call`
arguments, `function_call_output`, `instructions`) into it, so covering this one shape covers them all.
Field classes (what `security.guard.keep_control_tokens` may name):

    system, developer, user, assistant   message content of that role (assistant: also tool-call
                                         arguments and names, reasoning text); legacy `function`
    tool                                 tool and function results (`role: tool|function`)
    tools                                tool definitions: names, descriptions, JSON schemas (keys too),
                                         `tool_choice`, legacy `functions`
    params                               the other request fields a template or server renders into the
                                         prompt: `chat_template_kwargs` and `documents` (vLLM/SGLang pass
                                         them to the template), `response_format` schemas, `prediction`.
                                         Stop sequences, logit biases and the like never reach the prompt
                                         and are left alone (a stop string of `<|im_end|>` must still stop).

`neutralize_request` rewrites the request in place and returns the counts per class. Walking is
iterative and bounded (`MAX_DEPTH`), strings without `<` or `[` cost one scan of their characters.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from owstack.security.guard.token_sets import TokenSet
from owstack.types import ChatRequest

FIELD_CLASSES = ("system", "developer", "user", "assistant", "tool", "tools", "params")
MAX_DEPTH = 64
_ROLE_CLASS = {"function": "tool", "tool": "tool", "ipython": "tool"}
_SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id", "image_url", "input_audio", "file"})
_TOOL_PARAMS = ("tools", "functions", "tool_choice", "function_call")
_PROMPT_PARAMS = ("chat_template_kwargs", "documents", "response_format", "prediction")


def role_class(role: Any) -> str:
    role = str(role)
    if role in _ROLE_CLASS:
        return _ROLE_CLASS[role]
    return role if role in FIELD_CLASSES else "user"


def _walk(value: Any, tokens: TokenSet, keys: bool, depth: int = 0) -> tuple[Any, int]:
    """`value` with every string (and, if `keys`, every dict key) neutralised, and the count."""
    if isinstance(value, str):
        return tokens.neutralize(value)
    if depth >= MAX_DEPTH:
        return value, 0
    count = 0
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i], n = _walk(item, tokens, keys, depth + 1)
            count += n
        return value, count
    if isinstance(value, dict):
        changed: list[tuple[str, str]] = []
        for key, item in value.items():
            if key in _SKIP_KEYS and not keys:
                continue
            value[key], n = _walk(item, tokens, keys, depth + 1)
            count += n
            if keys and isinstance(key, str):
                new_key, k = tokens.neutralize(key)
                if k:
                    changed.append((key, new_key))
                    count += k
        for old, new in changed:
            value[new] = value.pop(old)
        return value, count
    return value, 0


def neutralize_request(request: ChatRequest, tokens: TokenSet, keep: frozenset[str] = frozenset()) -> Counter[str]:
    """Neutralise control tokens in every field class not in `keep`; counts per class."""
    counts: Counter[str] = Counter()
    for message in request.messages:
        cls = role_class(message.get("role"))
        if cls in keep or not isinstance(message, dict):
            continue
        _, n = _walk(message, tokens, keys=False)
        counts[cls] += n
    params = request.params
    if "tools" not in keep:
        for name in _TOOL_PARAMS:
            if name in params:
                params[name], n = _walk(params[name], tokens, keys=True)
                counts["tools"] += n
    if "params" not in keep:
        for name in _PROMPT_PARAMS:
            if name in params:
                params[name], n = _walk(params[name], tokens, keys=False)
                counts["params"] += n
    return +counts


def texts_for_scan(request: ChatRequest) -> list[tuple[str, str]]:
    """(field class, text) of the content an injection scanner should read: messages and tool descriptions."""
    out: list[tuple[str, str]] = []
    for message in request.messages:
        text = _text_of(message.get("content"))
        if text:
            out.append((role_class(message.get("role")), text))
    tools = request.params.get("tools")  # passed through unvalidated on the legacy endpoints: any JSON
    for tool in tools if isinstance(tools, list) else ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("description"), str):
            out.append(("tools", fn["description"]))
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
