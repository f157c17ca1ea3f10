"""Tool calling on the embedded engine, for models whose chat template knows nothing of tools.

- `tool_choice: "auto"`: the tools are described in the system message in the common Hermes style and the
  model may answer `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; the tool-call reader
  (`backends.toolcalls`, format `hermes`) turns that into OpenAI `tool_calls` as it is generated. A small
  model may ignore the offer; that is its choice, not an error.
- `"required"` or a named function: the same markup, forced by a grammar built from the function's
  checked JSON schema (`embedded_grammar`), so the call always parses and its arguments match.
- `"none"` or no tools: plain generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from owstack.backends import structured
from owstack.backends.toolcalls import ToolCallReader
from owstack.catalog.toolcalls import tool_call_format
from owstack.types import JSON

#: the markup the embedded engine prompts for (and forces), whatever the model
FORMAT = "hermes"


@dataclass(frozen=True, slots=True)
class ToolPlan:
    functions: dict[str, structured.Function]
    #: the functions a grammar forces one call to (empty: the model may answer in text)
    forced: list[structured.Function]
    system_text: str

    def reader(self) -> ToolCallReader:
        return ToolCallReader(tool_call_format(FORMAT), {n: f.parameters for n, f in self.functions.items()})


def plan(params: JSON) -> ToolPlan | None:
    offered = structured.functions(params.get("tools"))
    if not offered or params.get("tool_choice") == "none":
        return None
    forced = structured.forced_tools(params, offered)
    described = [
        {"type": "function", "function": {"name": f.name, "description": f.description, "parameters": f.parameters}}
        for f in offered.values()
    ]
    system_text = (
        "You can call functions. The available tools, as JSON schemas:\n<tools>\n"
        + "\n".join(orjson.dumps(t).decode() for t in described)
        + "\n</tools>\nTo call one, answer with exactly:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <arguments-object>}\n</tool_call>'
    )
    return ToolPlan(functions=offered, forced=forced, system_text=system_text)


def with_tool_prompt(messages: list[JSON], tools: ToolPlan) -> list[JSON]:
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{tools.system_text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": tools.system_text}, *messages]


def render_calls(calls: Any) -> str:
    """An assistant message's earlier tool calls, as the text the model would have produced."""
    out = []
    for call in calls if isinstance(calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            args = fn.get("arguments", "{}")
            try:
                parsed = orjson.loads(args) if isinstance(args, str) else args
            except orjson.JSONDecodeError:
                parsed = args
            body = orjson.dumps({"name": fn.get("name"), "arguments": parsed}).decode()
            out.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(out)
