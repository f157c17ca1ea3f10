"""The script a fake model follows: which tool to call, or what to say, given the conversation so far.

An agent loop needs a model that calls a tool, reads its result and answers; the embedded 135M model cannot, so
the fakes (scripted.py for chat completions, recorder.py for the Responses and Messages APIs) read a script:

    {"rules": [
        {"when": {"results": 0, "tool": "exec_command"}, "then": {"tool": "exec_command", "arguments": {"cmd": "..."}}},
        {"when": {"results": 1}, "then": {"text": "The file says: {result}"}},
        {"then": {"text": "hello"}}
    ]}

Rules are tried in order; the first whose `when` holds answers. Conditions (all optional, all must hold):
`tool` names a tool the request offers, `tool_choice` the tool the request forces, `results` is how many tool
results the conversation already carries, `user_contains` is a substring of the last user text, `model` is the
requested model, `format` the requested output format (`text`, `json_object`, `json_schema`) and `schema` its
schema's name. `then` is a tool call (`tool`, `arguments`) or a final `text`, optionally with the
`reasoning` that comes before it; in any string `{result}` is the last tool result and `{user}` the last user
text. Each wire format has its own reader below that turns a
request body into a `Conversation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One conversation, two tool turns (write a file, then read it back), then an answer quoting what was read:
# the smallest multi-step loop, with the names each CLI gives its shell tool.
FILE_NAME, FILE_TEXT = "scripted.txt", "owstack-scripted-ok"
WRITE = f"printf '{FILE_TEXT}\\n' > {FILE_NAME}"
READ = f"cat {FILE_NAME}"
FINAL = f"Done. The file {FILE_NAME} contains: {{result}}"
DEFAULT_RULES: list[dict[str, Any]] = [
    {"when": {"results": 2}, "then": {"text": FINAL}},
    *[
        {"when": {"results": n, "tool": name}, "then": {"tool": name, "arguments": args}}
        for n, command in enumerate((WRITE, READ))
        for name, args in (
            ("exec_command", {"cmd": command}),
            ("shell_command", {"command": command}),
            ("shell", {"command": ["bash", "-lc", command]}),
            ("Bash", {"command": command, "description": "Run a shell command"}),
        )
    ],
    {"then": {"text": "hello from the script"}},
]


@dataclass(frozen=True)
class Conversation:
    model: str
    tools: tuple[str, ...]
    tool_results: tuple[str, ...]
    last_user: str
    tool_choice: str = ""  # the name of a forced tool
    format: str = "text"
    schema: str = ""


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_name: str | None = None
    tool_arguments: dict[str, Any] = field(default_factory=dict)
    reasoning: str = ""  # the model's reasoning before the answer (vLLM's `reasoning_content`)


def load_rules(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return DEFAULT_RULES
    return list(json.loads(Path(path).read_text())["rules"])


def _holds(when: dict[str, Any], conv: Conversation) -> bool:
    if "tool" in when and when["tool"] not in conv.tools:
        return False
    if "results" in when and when["results"] != len(conv.tool_results):
        return False
    if "user_contains" in when and when["user_contains"] not in conv.last_user:
        return False
    wanted = {"model": conv.model, "tool_choice": conv.tool_choice, "format": conv.format, "schema": conv.schema}
    return all(when[key] == value for key, value in wanted.items() if key in when)


def _fill(value: Any, conv: Conversation) -> Any:
    if isinstance(value, str):
        result = conv.tool_results[-1].strip() if conv.tool_results else ""
        return value.replace("{result}", result).replace("{user}", conv.last_user)
    if isinstance(value, list):
        return [_fill(v, conv) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, conv) for k, v in value.items()}
    return value


def decide(conv: Conversation, rules: list[dict[str, Any]]) -> Reply:
    for rule in rules:
        if _holds(rule.get("when", {}), conv):
            then = _fill(rule["then"], conv)
            reasoning = str(then.get("reasoning", ""))
            if "tool" in then:
                return Reply(
                    tool_name=then["tool"], tool_arguments=dict(then.get("arguments", {})), reasoning=reasoning
                )
            return Reply(text=str(then.get("text", "")), reasoning=reasoning)
    return Reply(text="")


def _text(content: Any) -> str:
    """The text of a string or of a list of content parts/blocks, whatever the wire format calls them."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text(part.get("text", part.get("content", ""))) for part in content if isinstance(part, dict))
    return ""


def _forced(choice: Any) -> str:
    """The forced tool's name in any of the three wire formats' `tool_choice` shapes."""
    if not isinstance(choice, dict):
        return ""
    return str(choice.get("name") or (choice.get("function") or {}).get("name") or "")


def _format(spec: Any) -> tuple[str, str]:
    if not isinstance(spec, dict):
        return "text", ""
    schema = spec.get("json_schema") if isinstance(spec.get("json_schema"), dict) else spec
    return str(spec.get("type", "text")), str(schema.get("name", ""))


def from_chat(body: dict[str, Any]) -> Conversation:
    messages = body.get("messages") or []
    tools = tuple(t.get("function", {}).get("name", "") for t in body.get("tools") or [])
    results = tuple(_text(m.get("content")) for m in messages if m.get("role") == "tool")
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    fmt, schema = _format(body.get("response_format"))
    model, last = str(body.get("model")), users[-1] if users else ""
    return Conversation(model, tools, results, last, _forced(body.get("tool_choice")), fmt, schema)


RESULT_ITEMS = {"function_call_output", "custom_tool_call_output", "local_shell_call_output"}


def from_responses(body: dict[str, Any]) -> Conversation:
    items = body.get("input")
    items = [{"type": "message", "role": "user", "content": items}] if isinstance(items, str) else items or []
    tools = tuple(str(t.get("name", t.get("type", ""))) for t in body.get("tools") or [])
    results = tuple(_text(i.get("output")) for i in items if i.get("type") in RESULT_ITEMS)
    users = [_text(i.get("content")) for i in items if i.get("role") == "user"]
    fmt, schema = _format((body.get("text") or {}).get("format"))
    model, last = str(body.get("model")), users[-1] if users else ""
    return Conversation(model, tools, results, last, _forced(body.get("tool_choice")), fmt, schema)


def from_anthropic(body: dict[str, Any]) -> Conversation:
    messages = body.get("messages") or []
    tools = tuple(str(t.get("name", "")) for t in body.get("tools") or [])
    blocks = [b for m in messages if isinstance(m.get("content"), list) for b in m["content"] if isinstance(b, dict)]
    results = tuple(_text(b.get("content")) for b in blocks if b.get("type") == "tool_result")
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    fmt, schema = _format((body.get("output_config") or {}).get("format"))
    model, last = str(body.get("model")), users[-1] if users else ""
    return Conversation(model, tools, results, last, _forced(body.get("tool_choice")), fmt, schema)
