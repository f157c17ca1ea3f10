"""Tool-call markup in a model's text, read incrementally into OpenAI `tool_calls` deltas.

A model without a server-side parser writes its calls as text (`<tool_call>{...}</tool_call>`,
`[TOOL_CALLS]name[ARGS]{...}`, ...; the formats are data, `catalog/data/tool_calls.yaml`). `ToolCallReader`
is fed the text as it is generated and returns what may go to the client now:

    ("content", text)              text that is certainly not markup
    ("call", index, id, name)      a call has begun: its function is known
    ("args", index, text)          a piece of that call's JSON arguments

Text that could still turn out to be the start of a marker is held back, so no markup ever reaches
content. JSON-bodied calls whose name comes first stream their arguments as they are generated; other
bodies are emitted whole when the call closes. A call to a function the request did not offer is dropped.
A stream that ends inside a call (max_tokens) emits the call with the arguments it has, if its name is
known, and sets `truncated`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from owstack.catalog.toolcalls import ToolCallFormat

Delta = tuple[Any, ...]
JSONDelta = dict[str, Any]
_JSON_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*')
_XML_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)(?:</function>|$)", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?(?:</parameter>|(?=<parameter=)|$)", re.DOTALL)


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class ToolCallReader:
    def __init__(self, fmt: ToolCallFormat, tools: dict[str, Any] | None = None) -> None:
        self.fmt = fmt
        #: function name -> its parameters schema (None: accept any name)
        self.tools = tools
        self.calls: list[dict[str, Any]] = []
        self.truncated = False
        self._text = ""  # held-back text outside a call
        self._body = ""  # the current call's text
        self._in_call = False
        self._started = False  # any non-space text seen (for `leading`)
        self._stream: dict[str, Any] | None = None  # the call whose arguments are streaming

    # feeding -------------------------------------------------------------------------------------------
    def feed(self, piece: str) -> list[Delta]:
        out: list[Delta] = []
        if self._in_call:
            self._body += piece
        else:
            self._text += piece
        while True:
            if self._in_call:
                if not self._advance_call(out):
                    break
            elif not self._advance_text(out):
                break
        return out

    def finish(self) -> list[Delta]:
        """The text has ended: flush held text, close or cut the open call."""
        out: list[Delta] = []
        if self._in_call:
            if self.fmt.end is None:
                self._close(self._body, out)
            else:
                self._cut(out)
            self._in_call = False
        elif self._text:
            out.append(("content", self._text))
            self._text = ""
        return out

    def _advance_text(self, out: list[Delta]) -> bool:
        start = self.fmt.start
        text = self._text
        if not self._started and self.fmt.leading:
            stripped = text.lstrip()
            if not stripped:
                return False
            self._started = True
            if stripped.startswith(self.fmt.leading):
                self._open(stripped)
                return True
        self._started = self._started or bool(text.strip())
        at = text.find(start)
        if at >= 0:
            if at:
                out.append(("content", text[:at]))
            self._open(text[at + len(start) :])
            return True
        keep = _partial_suffix(text, start)
        if len(text) > keep:
            out.append(("content", text[: len(text) - keep]))
            self._text = text[len(text) - keep :]
        return False

    def _open(self, rest: str) -> None:
        self._in_call = True
        self._text = ""
        self._body = rest
        self._stream = None

    def _advance_call(self, out: list[Delta]) -> bool:
        end = self.fmt.end
        boundary = end if end is not None else self.fmt.start
        at = self._body.find(boundary)
        if at < 0:
            if self.fmt.body == "json":
                self._stream_json(out, final=False)
            return False
        body, rest = self._body[:at], self._body[at + len(boundary) :]
        self._close(body, out)
        if end is None:
            self._open(rest)  # the next call of the list
            return True
        self._in_call = False
        self._text = rest
        return True

    # JSON bodies stream their arguments --------------------------------------------------------------
    def _stream_json(self, out: list[Delta], final: bool) -> None:
        if self._stream is None:
            head = _JSON_HEAD.match(self._body)
            if head is None or len(self._body) == head.end():
                return
            if self._body[head.end()] != "{":
                return  # arguments as a JSON string: read whole at the end
            name = _unescape(head.group(1))
            if not self._offered(name):
                return
            self._stream = self._begin(name, out)
            self._stream["sent"] = head.end()
        call = self._stream
        if final:
            return
        last = self._body.rfind("}")
        if last > call["sent"]:
            piece = self._body[call["sent"] : last]
            call["sent"] = last
            call["arguments"] += piece
            out.append(("args", call["index"], piece))

    def _close(self, body: str, out: list[Delta]) -> None:
        if self._stream is not None:
            call = self._stream
            tail = body[call["sent"] :].rstrip()
            piece = tail[:-1].rstrip() if tail.endswith("}") else tail
            if piece:
                call["arguments"] += piece
                out.append(("args", call["index"], piece))
            self._stream = None
            return
        for name, arguments in _parse(self.fmt, body, self.tools):
            if self._offered(name):
                call = self._begin(name, out)
                call["arguments"] = arguments
                out.append(("args", call["index"], arguments))

    def _cut(self, out: list[Delta]) -> None:
        """Generation stopped inside a call: close it if its body is whole, else keep what is known."""
        body = self._body
        assert self.fmt.end is not None
        body = body[: len(body) - _partial_suffix(body, self.fmt.end)]
        if self.fmt.body == "json" and _whole_json(body):
            self._close(body, out)
            return
        self.truncated = True
        if self._stream is not None:
            call = self._stream
            piece = body[call["sent"] :]
            if piece:
                call["arguments"] += piece
                out.append(("args", call["index"], piece))
            self._stream = None
            return
        head = _JSON_HEAD.match(body) if self.fmt.body == "json" else None
        name = _unescape(head.group(1)) if head else _partial_name(self.fmt, body)
        if name and self._offered(name):
            call = self._begin(name, out)
            arguments = body[head.end() :] if head else ""
            call["arguments"] = arguments
            if arguments:
                out.append(("args", call["index"], arguments))

    def _offered(self, name: str) -> bool:
        return self.tools is None or name in self.tools

    def _begin(self, name: str, out: list[Delta]) -> dict[str, Any]:
        call = {"index": len(self.calls), "id": call_id(), "name": name, "arguments": "", "sent": 0}
        self.calls.append(call)
        out.append(("call", call["index"], call["id"], name))
        return call

    def tool_calls(self) -> list[dict[str, Any]]:
        """The calls read so far, as OpenAI `message.tool_calls`."""
        return [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in self.calls
        ]


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


def _whole_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _unescape(raw: str) -> str:
    try:
        value = orjson.loads(f'"{raw}"')
    except orjson.JSONDecodeError:
        return raw
    return value if isinstance(value, str) else raw


def _partial_name(fmt: ToolCallFormat, body: str) -> str | None:
    if fmt.body == "xml_function":
        m = re.match(r"\s*<function=([^>\n]+)>", body)
        return m.group(1).strip() if m else None
    if fmt.body == "mistral":
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\[(?:ARGS|CALL_ID)\]", body)
        return m.group(1) if m else None
    return None


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value if value is not None else {}).decode()


def _parse(fmt: ToolCallFormat, body: str, tools: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Whole call bodies -> (name, arguments JSON text); unreadable bodies give nothing."""
    text = body.strip()
    if fmt.body == "xml_function":
        return [_xml_call(m.group(1).strip(), m.group(2), tools) for m in _XML_FUNCTION.finditer(text)]
    if fmt.body == "mistral" and not text.startswith("["):
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[CALL_ID\][A-Za-z0-9]*)?\[ARGS\](.*)$", text, re.DOTALL)
        return [(m.group(1), m.group(2).strip() or "{}")] if m else []
    objects: list[Any] = []
    for part in text.split(";") if fmt.body == "json_list" else [text]:
        try:
            value = orjson.loads(part.strip() or "null")
        except orjson.JSONDecodeError:
            continue
        objects += value if isinstance(value, list) else [value]
    out = []
    for obj in objects:
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            out.append((obj["name"], _arguments(obj.get("arguments", obj.get("parameters")))))
    return out


def _xml_call(name: str, body: str, tools: dict[str, Any] | None) -> tuple[str, str]:
    schema = (tools or {}).get(name) or {}
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    arguments: dict[str, Any] = {}
    for m in _XML_PARAMETER.finditer(body):
        key, raw = m.group(1).strip(), m.group(2)
        kind = props.get(key, {}).get("type") if isinstance(props.get(key), dict) else None
        arguments[key] = raw if kind == "string" else _loose(raw)
    return name, orjson.dumps(arguments).decode()


def _loose(raw: str) -> Any:
    try:
        return orjson.loads(raw.strip())
    except orjson.JSONDecodeError:
        return raw


def delta_fields(deltas: list[Delta]) -> JSONDelta:
    """Reader output as the fields of one OpenAI stream delta (`content`, `tool_calls`)."""
    out: JSONDelta = {}
    text = "".join(d[1] for d in deltas if d[0] == "content")
    if text:
        out["content"] = text
    calls = []
    for d in deltas:
        if d[0] == "call":
            calls.append({"index": d[1], "id": d[2], "type": "function", "function": {"name": d[3], "arguments": ""}})
        elif d[0] == "args":
            calls.append({"index": d[1], "function": {"arguments": d[2]}})
    if calls:
        out["tool_calls"] = calls
    return out


def read_message(reader: ToolCallReader, message: JSONDelta) -> bool:
    """Move markup out of a whole message's content into `tool_calls`, in place. True when calls were found."""
    content = message.get("content")
    if not isinstance(content, str) or message.get("tool_calls"):
        return False
    fields = delta_fields(reader.feed(content) + reader.finish())
    calls = reader.tool_calls()
    if not calls:
        return False
    message["content"] = fields.get("content", "").strip() or None
    message["tool_calls"] = calls
    return True


def read_chunk(reader: ToolCallReader, chunk: JSONDelta) -> None:
    """Rewrite one stream chunk's delta in place: markup becomes `tool_calls` deltas, never content."""
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
            continue
        delta = choice["delta"]
        deltas = reader.feed(delta.pop("content")) if isinstance(delta.get("content"), str) else []
        if choice.get("finish_reason"):
            deltas += reader.finish()
            if reader.calls and choice["finish_reason"] == "stop":
                choice["finish_reason"] = "tool_calls"
        delta.update(delta_fields(deltas))
