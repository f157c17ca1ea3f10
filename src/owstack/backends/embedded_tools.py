"""Tool calling on the embedded engine, for models whose chat template knows nothing of tools.

- `tool_choice: "auto"`: the tools are described in the system message in the common Hermes style and the
  model may answer `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, which is parsed back into
  OpenAI `tool_calls`. A small model may ignore the offer; that is its choice, not an error.
- `"required"` or a named function: the output is constrained by a llama.cpp grammar built from the
  function's JSON schema, so the call always parses and its arguments match the schema.
- `"none"` or no tools: plain generation.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from owstack.errors import InvalidRequest
from owstack.types import JSON

_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ToolPlan:
    functions: dict[str, JSON]  # name -> {"description", "parameters"}
    #: the one function the output must call (a grammar forces it), or None
    forced_name: str | None
    required: bool
    system_text: str

    @property
    def forced(self) -> bool:
        return self.required or self.forced_name is not None

    def grammar(self) -> Any:
        from llama_cpp import LlamaGrammar

        names = [self.forced_name] if self.forced_name else list(self.functions)
        variants = [
            {
                "type": "object",
                "properties": {
                    "name": {"const": name},
                    "arguments": self.functions[name].get("parameters") or {"type": "object"},
                },
                "required": ["name", "arguments"],
            }
            for name in names
        ]
        schema = variants[0] if len(variants) == 1 else {"oneOf": variants}
        return LlamaGrammar.from_json_schema(orjson.dumps(schema).decode(), verbose=False)

    def extract(self, content: str) -> tuple[str, list[JSON]]:
        """Split generated text into the remaining content and OpenAI `tool_calls`."""
        if self.forced:
            found = [content.strip()]
            rest = ""
        else:
            found = _CALL.findall(content)
            rest = _CALL.sub("", content).strip()
        calls: list[JSON] = []
        for raw in found:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            name = obj.get("name") if isinstance(obj, dict) else None
            if name not in self.functions:
                continue
            arguments = obj.get("arguments", {})
            calls.append(
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
                }
            )
        if not calls:
            return content, []
        return rest, calls


def plan(tools: Any, tool_choice: Any) -> ToolPlan | None:
    if not tools or tool_choice == "none":
        return None
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be a list of function tools", param="tools")
    functions: dict[str, JSON] = {}
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequest("each tool needs a function with a name", param=f"tools[{i}].function")
        functions[fn["name"]] = {"description": fn.get("description", ""), "parameters": fn.get("parameters")}
    forced_name = None
    if isinstance(tool_choice, dict):
        forced_name = (tool_choice.get("function") or {}).get("name")
        if forced_name not in functions:
            raise InvalidRequest(f"tool_choice names {forced_name!r}, which is not in tools", param="tool_choice")
    required = tool_choice == "required"
    described = [{"type": "function", "function": {"name": n, **f}} for n, f in functions.items()]
    system_text = (
        "You can call functions. The available tools, as JSON schemas:\n<tools>\n"
        + "\n".join(orjson.dumps(t).decode() for t in described)
        + "\n</tools>\nTo call one, answer with exactly:\n"
        '<tool_call>{"name": <function-name>, "arguments": <arguments-object>}</tool_call>'
    )
    return ToolPlan(functions=functions, forced_name=forced_name, required=required, system_text=system_text)


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
            out.append(
                "<tool_call>" + orjson.dumps({"name": fn.get("name"), "arguments": parsed}).decode() + "</tool_call>"
            )
    return "\n".join(out)
