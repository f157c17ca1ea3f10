"""The tool-call reader: markup never reaches content, however the text is cut into pieces."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owstack.backends.toolcalls import ToolCallReader, read_chunk, read_message
from owstack.catalog.toolcalls import formats, tool_call_format

CASES = [
    (
        "hermes",
        'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "n": {"a": 1}}}\n</tool_call>',
        "Sure. ",
        {"city": "Paris", "n": {"a": 1}},
    ),
    ("hermes", '<tool_call>{"arguments": {"city": "Paris"}, "name": "get_weather"}</tool_call>', "", {"city": "Paris"}),
    (
        "qwen3_coder",
        "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
        "Checking.\n",
        {"city": "Paris", "days": 3},
    ),
    ("mistral", 'Ok[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', "Ok", {"city": "Paris"}),
    ("mistral", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]', "", {"city": "Paris"}),
    ("llama3_json", '{"name": "get_weather", "parameters": {"city": "Paris"}}', "", {"city": "Paris"}),
    ("llama3_json", '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}', "", {"city": "Paris"}),
]
TOOLS = {"get_weather": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}
MARKERS = ["<tool_call>", "</tool_call>", "<function=", "[TOOL_CALLS]", "[ARGS]", "<|python_tag|>", '"name"']


def _run(fmt: str, text: str, cuts: list[int]) -> tuple[str, ToolCallReader, list[Any]]:
    reader = ToolCallReader(tool_call_format(fmt), TOOLS)
    deltas: list[Any] = []
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    for a, b in itertools.pairwise(points):
        deltas += reader.feed(text[a:b])
    deltas += reader.finish()
    return "".join(d[1] for d in deltas if d[0] == "content"), reader, deltas


@pytest.mark.parametrize(("fmt", "text", "content", "arguments"), CASES)
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=12))
def test_each_family_reads_into_calls_whatever_the_chunking(
    fmt: str, text: str, content: str, arguments: dict[str, Any], cuts: list[int]
) -> None:
    got, reader, deltas = _run(fmt, text, cuts)
    assert got == content
    assert not any(m in got for m in MARKERS)
    calls = reader.tool_calls()
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather"
    assert orjson.loads(calls[0]["function"]["arguments"]) == arguments
    # the deltas are in OpenAI order: the call (index, id, name), then its arguments
    kinds = [d[0] for d in deltas if d[0] != "content"]
    assert kinds[0] == "call" and set(kinds[1:]) == {"args"}
    assert "".join(d[2] for d in deltas if d[0] == "args") == calls[0]["function"]["arguments"]


def test_a_call_cut_by_max_tokens_keeps_its_name_and_is_marked_truncated() -> None:
    got, reader, _ = _run("hermes", '<tool_call>{"name": "get_weather", "arguments": {"city": "Par', [5, 17, 30])
    assert got == "" and reader.truncated
    assert reader.tool_calls()[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Par'}


def test_unoffered_functions_are_dropped_and_lookalike_text_is_kept() -> None:
    got, reader, _ = _run("hermes", 'a < b <tool_call>{"name": "rm_rf", "arguments": {}}</tool_call> and <tool', [3, 9])
    assert reader.tool_calls() == [] and got == "a < b  and <tool"


def test_every_format_in_the_catalog_has_a_reader() -> None:
    for fmt in formats().values():
        reader = ToolCallReader(fmt, None)
        reader.feed("plain text")
        assert reader.finish() or True


def test_http_messages_and_chunks_are_rewritten() -> None:
    fmt = tool_call_format("hermes")
    message = {"role": "assistant", "content": 'Hi <tool_call>{"name": "get_weather", "arguments": {}}</tool_call>'}
    assert read_message(ToolCallReader(fmt, TOOLS), message)
    assert message["content"] == "Hi" and message["tool_calls"][0]["function"]["name"] == "get_weather"
    reader = ToolCallReader(fmt, TOOLS)
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": 'x <tool_call>{"name": "get_'}, "finish_reason": None}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": 'weather", "arguments": {"a": 1}}</tool_call>'},
                    "finish_reason": None,
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    for chunk in chunks:
        read_chunk(reader, chunk)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "x " and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["index"] == 0
