"""The harness and `owstack eval efficiency` against a real HTTP server speaking OpenAI chat completions.

The server is a small stand-in engine: it answers with a think span and the right answer for most
problems, a wrong one for every fourth, and no number for every seventh; under a concise system prompt
it answers in fewer tokens. It records what it received so the tests can check the policy's wire form.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from owstack.cli import app
from owstack.efficiency.problems import generate


class _Engine(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, Any], dict[str, str]]] = []
    answers: dict[str, int] = {p.question: p.answer for p in generate(40, seed=3)}

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).received.append((body, {k.lower(): v for k, v in self.headers.items()}))
        question = body["messages"][-1]["content"]
        index = list(self.answers).index(question) if question in self.answers else 0
        answer = self.answers.get(question, 0) + (1 if index % 4 == 3 else 0)
        concise = body["messages"][0]["role"] == "system" or body.get("reasoning_policy", "").startswith("concise")
        if index % 7 == 6:
            content, tokens = "I am not sure.", 5
        elif concise:
            content, tokens = f"Answer: {answer}", 4
        else:
            content, tokens = f"<think>step by step</think>It is {answer}.", 20
        finish = "length" if index % 10 == 9 else "stop"
        data = {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens},
        }
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def engine() -> Iterator[str]:
    _Engine.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_eval_json_against_the_gateway_protocol(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "efficiency",
            "--backend",
            engine,
            "--policy",
            "concise",
            "--n",
            "28",
            "--seed",
            "3",
            "--concurrency",
            "4",
            "--json",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # 28 problems: every 4th is wrong (7), every 7th unparseable (4, one of which overlaps a wrong one)
    assert report["n"] == 28 and report["policy"] == "concise:v1"
    assert report["parse_failures"] == 4
    assert report["correct"] == 28 - 7 - 4 + 1
    assert report["accuracy"] == pytest.approx(18 / 28)
    low, high = report["accuracy_ci"]
    assert low < 18 / 28 < high
    assert report["baseline"]["policy"] == "default"
    assert report["baseline"]["mean_completion_tokens"] > report["mean_completion_tokens"]
    assert 0 < report["compression"]["compression"] < 1 and report["compression"]["pairs"] == 28
    assert report["truncation_rate"] == pytest.approx(2 / 28)
    assert set(report["buckets"]) == {"easy", "medium", "hard"}
    # the policy travels as the request field and the header; the baseline asks for the engine's
    # default explicitly, so that a tenant's or layer's policy does not leak into it
    sent = [(b["reasoning_policy"], h["x-owstack-reasoning"]) for b, h in _Engine.received]
    assert sorted(set(sent)) == [("concise:v1", "concise:v1"), ("default", "default")]
    assert sent.count(("concise:v1", "concise:v1")) == 28
    assert all(b["messages"][0]["role"] == "user" for b, _ in _Engine.received)  # the gateway adds the system
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == 56 and {i["policy"] for i in items} == {"default", "concise:v1"}


def test_eval_translates_for_a_raw_engine(engine: str) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "efficiency",
            "--backend",
            engine,
            "--engine",
            "vllm",
            "--policy",
            "budget:64",
            "--baseline",
            "none",
            "--n",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    bodies = [b for b, _ in _Engine.received]
    assert len(bodies) == 3
    assert all(b["thinking_token_budget"] == 64 and "reasoning_policy" not in b for b in bodies)
    assert "baseline" not in json.loads(result.stdout)


def test_eval_table_shows_buckets_and_compression(engine: str) -> None:
    result = CliRunner().invoke(
        app, ["eval", "efficiency", "--backend", engine, "--policy", "concise:v2", "--n", "6"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for word in ("accuracy", "compression", "easy", "hard", "concise:v2", "default"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "fast"], "--policy: unknown reasoning policy 'fast'"),
        (["--policy", "budget:-2"], "--policy: the thinking budget must be >= 0"),
        (["--baseline", "sometimes"], "--baseline: unknown reasoning policy"),
        (["--backend", "gopher://x"], "--backend"),
        (["--engine", "triton", "--backend", "http://127.0.0.1:9"], "--engine: unknown engine 'triton'"),
        (["--api-key-env", "OWSTACK_TEST_UNSET_VAR"], "OWSTACK_TEST_UNSET_VAR is not set"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["eval", "efficiency", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_unreachable_backend_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["eval", "efficiency", "--backend", "http://127.0.0.1:9", "--n", "1"])
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9/v1" in result.output and "Traceback" not in result.output


def test_cli_as_a_real_process(engine: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "owstack"
    done = subprocess.run(
        [str(exe), "eval", "efficiency", "--backend", engine, "--policy", "off", "--n", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 3
    bad = subprocess.run(
        [str(exe), "distill", "--out", str(tmp_path / "d"), "--model", str(tmp_path / "missing.gguf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == f"error: --model: no GGUF file at {tmp_path / 'missing.gguf'}"


def test_compare_to_an_earlier_run(engine: str, tmp_path: Path) -> None:
    first = tmp_path / "base.jsonl"
    args = ["eval", "efficiency", "--backend", engine, "--n", "8", "--json"]
    assert CliRunner().invoke(app, [*args, "--out", str(first)]).exit_code == 0
    result = CliRunner().invoke(app, [*args, "--policy", "concise", "--baseline", "none", "--compare-to", str(first)])
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)["compared_to"]
    assert compared["policy"] == "default" and compared["n"] == 8
    assert compared["compression"]["pairs"] == 8 and compared["compression"]["compression"] > 0.5
    table = CliRunner().invoke(
        app, [*args[:-1], "--policy", "off", "--baseline", "none", "--compare-to", str(first)], env={"COLUMNS": "250"}
    )
    assert table.exit_code == 0 and "vs that file" in table.stdout
    missing = CliRunner().invoke(app, [*args, "--compare-to", str(first), "--compare-policy", "concise:v2"])
    assert missing.exit_code == 2 and "holds no items of policy 'concise:v2'" in missing.output
