"""What an OpenAI-compatible upstream sends, checked before anything reads it: one place for the shape.

    completion(body)      a chat completion (non-streaming); returns its usage (None when absent or unusable)
    chunk(data)           one `chat.completion.chunk` of a stream
    forwarded(body, key)  a legacy completion (`choices`) or an embeddings result (`data`)

Each raises `ValueError` naming the first member of the wrong kind; the backend turns that into an
`UpstreamError` (502, counted against the backend by the breaker, an error event mid-stream). Why: the
converters (Anthropic, Responses), the audit record and the ledger read these members directly; a
`content` that was a number, `tool_calls` that was a string or a `choices` list holding a number were 500s
with a traceback, a stream cut without its error event, and token counts past 64 bits made the audit record
and the ledger's journal refuse to serialise (docs/reliability.md, hostile upstreams).

The usage an upstream reports is replaced in the body by what owstack read from it (or removed when it is
not usable: negative, fractional or past `MAX_TOKENS`), so a client sees the numbers the ledger records.
Members the checks do not name pass through untouched: servers add their own (`stop_reason`, `logprobs`).
"""

from __future__ import annotations

from typing import Any

from owstack.types import JSON, Usage

_TEXT = (str, type(None))


def completion(body: Any) -> Usage | None:
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("`choices` is not a non-empty list")
    for i, choice in enumerate(choices):
        where = f"choices[{i}]"
        if not isinstance(choice, dict):
            raise ValueError(f"`{where}` is not an object")
        _finish(choice, where)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise ValueError(f"`{where}.message` is not an object")
        _message(message, f"{where}.message", stream=False)
    return _usage(body)


def chunk(data: JSON) -> None:
    """`data` is a JSON object already (the backend skips anything else)."""
    choices = data.get("choices")
    if choices is not None and choices.__class__ is not list:
        raise ValueError("`choices` is not a list")
    for i, choice in enumerate(choices or ()):
        if choice.__class__ is dict:  # the usual chunk first (every chunk of every stream): one piece of text
            delta, reason = choice.get("delta"), choice.get("finish_reason")
            if (
                delta.__class__ is dict
                and len(delta) == 1
                and delta.get("content").__class__ is str
                and (reason is None or reason.__class__ is str)
            ):
                continue
        _choice_chunk(choice, f"choices[{i}]")
    if "usage" in data:
        _usage(data)


def _choice_chunk(choice: Any, where: str) -> None:
    if not isinstance(choice, dict):
        raise ValueError(f"`{where}` is not an object")
    _finish(choice, where)
    delta = choice.get("delta")
    if delta is None:
        return
    if not isinstance(delta, dict):
        raise ValueError(f"`{where}.delta` is not an object")
    _message(delta, f"{where}.delta", stream=True)


def forwarded(body: Any, key: str) -> Usage | None:
    """A legacy completion (`key` "choices": each with a `text`) or an embeddings result (`key` "data")."""
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")
    items = body.get(key)
    if not isinstance(items, list):
        raise ValueError(f"`{key}` is not a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"`{key}[{i}]` is not an object")
        if key == "choices":
            if not isinstance(item.get("text"), _TEXT):
                raise ValueError(f"`{key}[{i}].text` is not text")
            _finish(item, f"{key}[{i}]")
    return _usage(body)


def _finish(choice: JSON, where: str) -> None:
    reason = choice.get("finish_reason")
    if reason is not None and reason.__class__ is not str:
        raise ValueError(f"`{where}.finish_reason` is not text")


#: members of a message or delta that are text (or absent); `content` may also be a list of text parts
_TEXT_MEMBERS = ("role", "refusal", "reasoning_content", "reasoning")


def _message(message: JSON, where: str, *, stream: bool) -> None:
    content = message.get("content")
    if content is not None and content.__class__ is not str:
        if not isinstance(content, list):
            raise ValueError(f"`{where}.content` is not text")
        for j, part in enumerate(content):  # content parts: each with its text
            if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
                raise ValueError(f"`{where}.content[{j}]` is not a text part")
    for name in _TEXT_MEMBERS:
        value = message.get(name)
        if value is not None and value.__class__ is not str:
            raise ValueError(f"`{where}.{name}` is not text")
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise ValueError(f"`{where}.tool_calls` is not a list")
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise ValueError(f"`{at}` is not an object")
        if not isinstance(call.get("id"), _TEXT) or not isinstance(call.get("type"), _TEXT):
            raise ValueError(f"`{at}.id` or `.type` is not text")
        if stream:
            index = call.get("index")
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_TOOL_CALLS:
                raise ValueError(f"`{at}.index` is not a tool call's position")
        function = call.get("function")
        if function is None and stream:
            continue
        if not isinstance(function, dict):
            raise ValueError(f"`{at}.function` is not an object")
        if not isinstance(function.get("name"), _TEXT):
            raise ValueError(f"`{at}.function.name` is not text")
        arguments = function.get("arguments")
        if isinstance(arguments, dict) and not stream:  # some servers send the object itself: as OpenAI's text
            import orjson

            try:
                function["arguments"] = orjson.dumps(arguments).decode()
            except TypeError:
                raise ValueError(f"`{at}.function.arguments` cannot be written as JSON") from None
        elif not isinstance(arguments, _TEXT):
            raise ValueError(f"`{at}.function.arguments` is not text")


#: a stream's tool calls are addressed by `index`; more than this many in one message is not a real answer
MAX_TOOL_CALLS = 1024


_DETAILS = (("completion_tokens_details", "reasoning_tokens"), ("prompt_tokens_details", "cached_tokens"))


def _usage(body: JSON) -> Usage | None:
    """The usage the body reports, written back in OpenAI's shape (or removed when it is not usable)."""
    raw = body.get("usage")
    if raw is None:
        return None
    usage = Usage.from_openai(raw)
    if usage is None:
        del body["usage"]
        return None
    if (  # the usual case: the numbers as reported are the numbers read (details too: `from_openai` read them)
        raw.get("prompt_tokens") == usage.prompt_tokens
        and raw.get("completion_tokens") == usage.completion_tokens
        and raw.get("total_tokens", usage.total_tokens) == usage.total_tokens
    ):
        return usage
    if isinstance(raw, dict):  # keep what servers add (e.g. vLLM's prompt_tokens_details), numbers made sound
        body["usage"] = {**raw, **usage.to_openai()}
        for name, inner in _DETAILS:
            details = raw.get(name)
            if isinstance(details, dict) and inner in details:
                body["usage"][name] = {**details, inner: getattr(usage, inner)}
    return usage
