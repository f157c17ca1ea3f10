"""The real agent CLIs from npm complete a multi-step tool loop through `owstack serve`.

Codex CLI speaks only the Responses API (`POST /v1/responses`, streamed); Claude Code speaks Anthropic Messages
(`POST /v1/messages?beta=true`, streamed, with a `role: "system"` message inside `messages`). Behind the gateway
is the scripted upstream as a normal vLLM backend; its script makes the model call the CLI's own shell tool
twice (write scripted.txt, then read it back) and then answer quoting what it read. So a pass means: the CLI's
request was accepted, translated to chat completions, the tool calls came back in the CLI's protocol, the CLI
ran them on this machine, sent their output back, and printed the final answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_clis import CLAUDE, CODEX, Run, missing, run_claude, run_codex
from scripted_world import FILE_NAME, FILE_TEXT, FINAL, MODEL, Seen, observing

from procs import Proc

# generous: a CLI's cold start on a busy 2-core machine is slow, and nothing here is timed
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
CLI_TIMEOUT = 600

PROMPT = "Write owstack-scripted-ok into scripted.txt, read the file back, and tell me what it says."


def _tool_outputs(bodies: list[dict[str, Any]]) -> list[str]:
    """The tool results the gateway forwarded upstream, as chat `tool` messages."""
    last = bodies[-1]["messages"] if bodies else []
    return [str(m.get("content")) for m in last if m.get("role") == "tool"]


def _assert_loop(run: Run, seen: Seen, gateway: Proc) -> None:
    context = f"{run.describe()}\n--- gateway log (tail)\n{gateway.log()[-3000:]}"
    assert run.returncode == 0, context
    # not one request refused, not even one the CLI recovered from by retrying in another shape
    assert seen.refused() == [], context
    forwarded = seen.forwarded
    written = run.workdir / FILE_NAME
    assert written.exists(), f"the CLI never ran the scripted write command\n{context}"
    assert written.read_text().strip() == FILE_TEXT
    # three model turns went through the gateway: two tool calls and the answer
    assert len(forwarded) == 3, [b.get("messages", [])[-1:] for b in forwarded]
    outputs = _tool_outputs(forwarded)
    assert len(outputs) == 2 and FILE_TEXT in outputs[1], outputs
    assert FINAL.split("{result}")[0] in run.final, context
    assert FILE_TEXT in run.final, context


@pytest.mark.skipif(missing(CODEX) is not None, reason=str(missing(CODEX)))
def test_codex_exec_runs_a_shell_tool_loop_through_the_responses_api(
    gateway: Proc, scripted: Proc, tmp_path: Path
) -> None:
    with observing(scripted, gateway) as seen:
        run = run_codex(tmp_path, gateway.base_url, "sk-codex", MODEL, PROMPT, timeout=CLI_TIMEOUT)
    _assert_loop(run, seen, gateway)
    first = seen.forwarded[0]
    names = [t["function"]["name"] for t in first.get("tools", [])]
    assert "exec_command" in names  # Codex's shell tool reached the model as a chat function tool
    assert any(m["role"] in ("system", "developer") for m in first["messages"])  # its instructions too


@pytest.mark.skipif(missing(CLAUDE) is not None, reason=str(missing(CLAUDE)))
def test_claude_p_runs_its_bash_tool_loop_through_anthropic_messages(
    gateway: Proc, scripted: Proc, tmp_path: Path
) -> None:
    with observing(scripted, gateway) as seen:
        run = run_claude(tmp_path, gateway.url, "sk-claude", MODEL, PROMPT, timeout=CLI_TIMEOUT)
    _assert_loop(run, seen, gateway)
    first = seen.forwarded[0]
    names = [t["function"]["name"] for t in first.get("tools", [])]
    assert "Bash" in names
    # Claude Code's mid-conversation system message (its environment) reached the model as a system message;
    # after a 400 Claude Code folds it into the user turn instead, which the refusal check above also catches
    systems = [str(m["content"]) for m in first["messages"] if m["role"] == "system"]
    assert any("Primary working directory" in s for s in systems), [m["role"] for m in first["messages"]]
