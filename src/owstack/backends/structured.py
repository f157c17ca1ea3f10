"""What a request asks the output to be: `response_format`, and the schemas of forced tool calls.

Every protocol edge puts structured-output requests into OpenAI's `response_format` (Anthropic's
`output_config.format` and the Responses API's `text.format` are translated there), so the backends read
one shape. `forced_tools` names the functions a `tool_choice` forces ("required": any offered one; a named
function: that one). Each schema that will constrain decoding goes through `schema_check.check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from owstack.backends import schema_check
from owstack.errors import InvalidRequest
from owstack.types import JSON


@dataclass(frozen=True, slots=True)
class OutputFormat:
    kind: Literal["json_object", "json_schema"]
    schema: Any = None
    strict: bool = False
    name: str = ""


def output_format(params: JSON) -> OutputFormat | None:
    value = params.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("response_format must be an object with a `type`", param="response_format")
    kind = value.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind != "json_schema":
        raise InvalidRequest(
            f"response_format type {kind!r} is not supported (text, json_object, json_schema)",
            param="response_format.type",
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidRequest("response_format json_schema needs a `json_schema` object", param="response_format")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict | bool):
        raise InvalidRequest("json_schema.schema must be a JSON schema object", param="response_format.json_schema")
    return OutputFormat("json_schema", schema, spec.get("strict") is True, str(spec.get("name") or ""))


def check_format(fmt: OutputFormat, profile: str) -> schema_check.Checked | None:
    if fmt.kind != "json_schema":
        return None
    return schema_check.check(
        fmt.schema, param="response_format.json_schema.schema", profile=profile, strict=fmt.strict
    )


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    description: str
    parameters: Any
    strict: bool
    index: int


def functions(tools: Any) -> dict[str, Function]:
    """The request's function tools by name (400 on anything that is not one)."""
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be a list of function tools", param="tools")
    out: dict[str, Function] = {}
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequest("each tool needs a function with a name", param=f"tools[{i}].function")
        parameters = fn.get("parameters")
        if parameters is None:
            parameters = {"type": "object"}
        if not isinstance(parameters, dict):
            raise InvalidRequest("function parameters must be a JSON schema", param=f"tools[{i}].function.parameters")
        if parameters.get("type", "object") != "object":
            raise InvalidRequest(
                "function parameters must describe an object (type: object)", param=f"tools[{i}].function.parameters"
            )
        out[fn["name"]] = Function(
            fn["name"], str(fn.get("description") or ""), parameters, fn.get("strict") is True, i
        )
    return out


def forced_tools(params: JSON, offered: dict[str, Function]) -> list[Function]:
    """The functions `tool_choice` forces a call to (empty: none forced)."""
    choice = params.get("tool_choice")
    if not offered or choice in (None, "auto", "none"):
        return []
    if choice == "required":
        return list(offered.values())
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        if name not in offered:
            raise InvalidRequest(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
        return [offered[name]]
    raise InvalidRequest(
        f"tool_choice {choice!r} is not one of none, auto, required or a function", param="tool_choice"
    )


def check_tools(forced: list[Function], profile: str) -> list[schema_check.Checked]:
    return [
        schema_check.check(
            fn.parameters, param=f"tools[{fn.index}].function.parameters", profile=profile, strict=fn.strict
        )
        for fn in forced
    ]
