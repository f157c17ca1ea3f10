"""Claude Code (`@anthropic-ai/claude-code` from npm, tests/clients/package.json) with owstack's `/mcp` as its
only MCP server lists owstack's tools and calls one through it.

Everything is real and local: `owstack serve` with one tenant, the scripted model (tests/fakes/scripted.py) as
its `engine: vllm` backend for Claude Code's own requests, and the test's MCP server (upstream_server.py, over
Streamable HTTP) as the upstream of `/mcp`. Claude Code runs in an isolated HOME: `claude mcp add --transport
http` with the tenant's key, `claude mcp list` checks the connection, then `claude -p` runs a turn in which the
scripted model calls `mcp__owstack__remote_echo` and answers with what the tool returned. A pass means the
tool call went Claude Code -> owstack /mcp (key, allowlist, pins, checks, records) -> the upstream MCP server
and back into the model's next turn.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from mcp_stack import http_upstream, owstack

from clients.agent_clis import CLAUDE
from procs import ROOT, Proc, free_port, run_gateway, spawn, wait_http

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: Claude Code needs it"),
]
TOOL = "mcp__owstack__remote_echo"  # Claude Code's name for owstack's `remote.echo` (server `owstack`)
WORD = "owstack-mcp-claude-ok"
ANSWER = "The owstack tool answered: {result}"
SCRIPT = [
    {"when": {"results": 0, "tool": TOOL}, "then": {"tool": TOOL, "arguments": {"text": WORD}}},
    {"when": {"results": 1}, "then": {"text": ANSWER}},
    {"then": {"text": f"no {TOOL} tool was offered"}},
]


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Proc]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": SCRIPT}))
    port = free_port()
    log = tmp_path / "scripted.log"
    proc = spawn([sys.executable, str(ROOT / "tests" / "fakes" / "scripted.py"), str(port), str(script)], log)
    p = Proc(proc, port, log)
    try:
        wait_http(p.url + "/health", proc, log, timeout=60)
        yield p
    finally:
        p.stop()


def claude(argv: list[str], home: Path, cwd: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Claude Code with nothing of this machine's: its own HOME, no other traffic, no prompts."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        # MCP tools in the request itself, not behind its tool-search tool (which the scripted model cannot use)
        "ENABLE_TOOL_SEARCH": "false",
        **extra,
    }  # fmt: skip
    proc = subprocess.Popen([str(CLAUDE), *argv], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_claude_code_lists_and_calls_an_owstack_mcp_tool(tmp_path: Path, scripted: Proc) -> None:
    assert CLAUDE.exists(), f"Claude Code is not installed: run `make install` (npm ci in {CLAUDE.parents[2]})"
    with http_upstream(tmp_path, "remote") as remote:
        config = {
            "backends": {"scripted": {"engine": "vllm", "url": scripted.base_url, "model": "scripted",
                                      "jurisdiction": "local"}},
            "tenants": {"acme": {}},
            "storage": {"url": f"sqlite:///{tmp_path / 'owstack.db'}"},
            "audit": {"directory": str(tmp_path / "audit"), "keys_directory": str(tmp_path / "audit-keys")},
            "mcp": {"servers": {"remote": {"url": remote.url, "allow_networks": ["127.0.0.1/32"]}},
                    "tenants": {"acme": {"allow": ["remote.echo", "remote.fetch"]}}},
        }  # fmt: skip
        config_path = tmp_path / "owstack.yaml"
        config_path.write_text(yaml.safe_dump(config))
        created = owstack("keys", "create", "--tenant", "acme", "--config", str(config_path), "--json")
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)["key"]
        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir()
        work.mkdir()
        with run_gateway(tmp_path, config) as gw:
            url = gw.url + "/mcp"
            added = claude(["mcp", "add", "--scope", "user", "--transport", "http", "owstack", url,
                            "--header", f"Authorization: Bearer {key}"], home, work, {})  # fmt: skip
            assert added.returncode == 0, added.stderr
            listed = claude(["mcp", "list"], home, work, {})
            assert "owstack" in listed.stdout and "Connected" in listed.stdout, listed.stdout + listed.stderr
            (home / ".claude").mkdir(exist_ok=True)  # its tools may run without asking (claude -p cannot ask)
            (home / ".claude" / "settings.json").write_text(json.dumps({"permissions": {"allow": ["mcp__owstack"]}}))
            model = {"ANTHROPIC_BASE_URL": gw.url, "ANTHROPIC_AUTH_TOKEN": key}
            model["ANTHROPIC_DEFAULT_HAIKU_MODEL"] = "scripted"  # its side tasks use the same model
            run = claude(["-p", "--model", "scripted", "--", "Use the owstack echo tool."], home, work, model)
            forwarded = httpx.get(scripted.url + "/requests", timeout=30).json()
            metrics = httpx.get(gw.url + "/metrics", timeout=30).text
            log = gw.log()
        context = f"exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}\n--- log\n{log[-2000:]}"
        assert run.returncode == 0, context
        offered = [t["function"]["name"] for t in forwarded[0].get("tools", [])]
        # the tenant's allowlist decides what Claude Code saw: echo and fetch, not the rest of the server
        assert TOOL in offered and "mcp__owstack__remote_fetch" in offered, offered
        assert "mcp__owstack__remote_leak" not in offered, offered
        assert remote.calls() == ["echo"], context  # the upstream MCP server ran the call, once
        assert ANSWER.format(result=WORD) in run.stdout, context
        tool_results = [m for m in forwarded[-1]["messages"] if m.get("role") == "tool"]
        assert tool_results and WORD in str(tool_results[-1]["content"])
        assert 'owstack_mcp_tool_calls_total{outcome="ok",server="remote",tenant="acme"} 1.0' in metrics
