"""Anthropic Messages API request schema (pure pydantic; no engine imports).

Strict about the fields it names, open to the rest (`cache_control`, `citations`, beta fields), as the API
is: unknown betas must never turn into a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextBlock(_Open):
    type: Literal["text"]
    text: str


class ImageSource(_Open):
    type: Literal["base64", "url", "file"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ImageBlock(_Open):
    type: Literal["image"]
    source: ImageSource


class DocumentSource(_Open):
    type: Literal["base64", "text", "url", "content", "file"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    content: str | list[TextBlock | ImageBlock] | None = None


class DocumentBlock(_Open):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None
    context: str | None = None


class SearchResultBlock(_Open):
    type: Literal["search_result"]
    source: str
    title: str | None = None
    content: list[TextBlock]


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    input: dict[str, Any]


ResultPart = Annotated[TextBlock | ImageBlock | DocumentBlock | SearchResultBlock, Field(discriminator="type")]


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: Annotated[str, Field(min_length=1)]
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None


class ThinkingBlock(_Open):
    type: Literal["thinking", "redacted_thinking"]


class ServerToolBlock(_Open):
    """Blocks of Anthropic-run tools (web search, code execution ...): owstack runs none of them."""

    type: Literal["server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result"]


Block = Annotated[
    TextBlock
    | ImageBlock
    | DocumentBlock
    | SearchResultBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | ServerToolBlock,
    Field(discriminator="type"),
]


class Message(_Open):
    #: `system` inside `messages`: Claude Code's beta `mid-conversation-system-2026-04-07`
    role: Literal["user", "assistant", "system"]
    content: str | Annotated[list[Block], Field(min_length=1)]


class Tool(_Open):
    #: absent or `custom` for a client tool; any other type is a tool Anthropic runs (refused by name)
    type: str | None = None
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_Open):
    #: enabled (with a budget), disabled, or left to the model (adaptive, between_tools)
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: Annotated[int, Field(ge=0)] | None = None


class OutputFormat(_Open):
    type: Literal["json_schema"]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]


class OutputConfig(_Open):
    effort: str | None = None
    format: OutputFormat | None = None


class CountTokensRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: list[str] | None = None
    stream: bool | None = False
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    metadata: dict[str, Any] | None = None


#: pydantic's discriminator tags after a list index, for error locations (`messages[0].content[1]`)
TAGS = {
    "content": frozenset(
        {
            "text",
            "image",
            "document",
            "search_result",
            "tool_use",
            "tool_result",
            "thinking",
            "redacted_thinking",
            "server_tool_use",
            "web_search_tool_result",
            "web_fetch_tool_result",
            "code_execution_tool_result",
        }
    ),
}

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}
