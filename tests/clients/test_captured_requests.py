"""Every request the real CLIs sent (tests/fixtures/clients, captured by capture.py) replayed against owstack.

These run without node: the exact bodies and headers Codex CLI and Claude Code produced, credentials aside,
go to the gateway as they are, and each must get the answer the CLI needs: a 200 stream that ends the way
the protocol says, in the protocol's own event shapes. docs/clients-captured.md describes the requests.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from procs import ROOT, Proc

FIXTURES = ROOT / "tests" / "fixtures" / "clients"
DROP = {"host", "content-length", "authorization", "x-api-key", "accept-encoding", "connection"}


def _requests(name: str) -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / name).read_text())["requests"])


def _send(gateway: Proc, captured: dict[str, Any]) -> httpx.Response:
    headers = {k: v for k, v in captured["headers"].items() if k not in DROP}
    headers["authorization"] = "Bearer sk-replay"
    url = gateway.url + captured["path"] + (f"?{captured['query']}" if captured["query"] else "")
    return httpx.request(captured["method"], url, headers=headers, content=json.dumps(captured["body"]), timeout=120)


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) per SSE frame; the name falls back to the data's `type`."""
    out = []
    for frame in response.text.split("\n\n"):
        lines = frame.strip().splitlines()
        data = [line[5:].strip() for line in lines if line.startswith("data:")]
        if not data or data == ["[DONE]"]:
            continue
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), "")
        payload = json.loads("\n".join(data))
        out.append((name or str(payload.get("type")), payload))
    return out


def _turns(*names: str) -> list[Any]:
    """(fixture, index) for every request in the fixtures, with readable ids."""
    return [pytest.param(n, i, id=f"{n}[{i}]") for n in names for i in range(len(_requests(n)))]


# codex_exec_reasoning.json: turns 2 and 3 carry back reasoning items (summary, `content: null`,
# `encrypted_content` that owstack did not issue); claude_print_thinking.json: assistant turns with signed
# thinking blocks from another server. Both must be accepted.
@pytest.mark.parametrize(("fixture", "index"), _turns("codex_exec.json", "codex_exec_reasoning.json"))
def test_codex_turns_stream_a_completed_response(gateway: Proc, fixture: str, index: int) -> None:
    response = _send(gateway, _requests(fixture)[index])
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response)
    names = [n for n, _ in events]
    assert names[0] == "response.created" and names[-1] == "response.completed", names
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["output"], final
    done = [d["item"] for n, d in events if n == "response.output_item.done"]
    assert [item["id"] for item in done] == [item["id"] for item in final["output"]]
    # the first two turns are the scripted tool calls to Codex's own shell tool, the third its answer
    kinds = [item["type"] for item in final["output"] if item["type"] != "reasoning"]
    assert kinds == (["function_call"] if index < 2 else ["message"]), kinds


def test_codex_default_config_names_the_hosted_tool_it_cannot_run(gateway: Proc) -> None:
    """Codex's default tools include `{"type": "web_search"}`: a clear 400 naming it (docs/clients.md)."""
    response = _send(gateway, _requests("codex_exec_default.json")[0])
    assert response.status_code == 400, response.text[:2000]
    assert "web_search" in response.json()["error"]["message"]


@pytest.mark.parametrize(("fixture", "index"), _turns("claude_print.json", "claude_print_thinking.json"))
def test_claude_turns_stream_a_complete_message(gateway: Proc, fixture: str, index: int) -> None:
    response = _send(gateway, _requests(fixture)[index])
    assert response.status_code == 200, response.text[:2000]
    assert response.headers.get("request-id")
    events = _events(response)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    assert events[0][1]["message"]["usage"]["input_tokens"] > 0
    blocks = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    stop = next(d["delta"]["stop_reason"] for n, d in events if n == "message_delta")
    if index < 2:
        assert "tool_use" in blocks and stop == "tool_use", (blocks, stop)
    else:
        assert blocks[-1] == "text" and stop == "end_turn", (blocks, stop)


def test_claude_count_tokens_requests_are_answered_in_proportion(gateway: Proc) -> None:
    counted = []
    for captured in _requests("claude_count_tokens.json"):
        response = _send(gateway, captured)
        assert response.status_code == 200, response.text[:2000]
        tokens = response.json()["input_tokens"]
        assert isinstance(tokens, int) and tokens > 0
        counted.append((len(json.dumps(captured["body"])), tokens))
    counted.sort()
    assert [t for _, t in counted] == sorted(t for _, t in counted), counted
    assert counted[-1][1] > counted[-1][0] // 10, counted  # the tools' schemas are counted, not skipped
