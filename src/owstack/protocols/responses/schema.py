"""OpenAI Responses API request schema (pure pydantic; no engine imports).

Strict about the fields owstack reads, open to the rest: clients such as Codex CLI send fields of their own
(`client_metadata`, `prompt_cache_key`) that must never turn into a 400. Item and tool types owstack does
not know are refused by the translation (`request.py`), naming them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextFormat(_Open):
    type: Literal["text", "json_schema", "json_object"]
    name: str | None = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class TextConfig(_Open):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(_Open):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    stream: bool | None = False
    store: bool | None = True
    background: bool | None = False
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    include: list[str] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    #: owstack's own field, as on chat completions
    reasoning_policy: str | None = None
