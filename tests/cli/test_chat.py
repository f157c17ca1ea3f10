"""`owstack chat`: a bounded default answer, the bare text on a pipe, a live status line on a terminal.

The fake upstream (tests/fakes/upstream.py, a real HTTP server) stands in for the gateway: its `echo` model
answers with the request body it received, so the test sees exactly what the CLI sent.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

from rich.console import Console

from owstack.cli.chat import DEFAULT_MAX_TOKENS
from owstack.cli.livetext import LiveText
from procs import Proc

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def chat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "owstack", "chat", *args], capture_output=True, text=True, timeout=120)


def test_a_default_max_tokens_is_sent(fake_upstream: Proc) -> None:
    sent = json.loads(chat("hi", "--url", fake_upstream.base_url, "-m", "echo", "--no-stream").stdout)
    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS == 256
    sent = json.loads(
        chat("hi", "--url", fake_upstream.base_url, "-m", "echo", "--no-stream", "--max-tokens", "9").stdout
    )
    assert sent["max_tokens"] == 9


def test_a_pipe_gets_the_bare_answer(fake_upstream: Proc) -> None:
    streamed = chat("hi", "--url", fake_upstream.base_url, "-m", "greeter")
    assert streamed.returncode == 0 and streamed.stdout.rstrip(" \n") == "hello from greeter"
    assert streamed.stdout.endswith("\n") and streamed.stderr == ""  # no spinner, no status line on a pipe
    whole = chat("hi", "--url", fake_upstream.base_url, "-m", "greeter", "--no-stream")
    assert whole.stdout == "hello from greeter\n"


def test_a_truncated_answer_says_how_to_get_more(embedded_gateway: Proc) -> None:
    result = chat("Write a long story about a lighthouse.", "--url", embedded_gateway.base_url, "--max-tokens", "3")
    assert result.returncode == 0 and result.stdout.strip()
    assert "[stopped at --max-tokens 3; raise it for a longer answer]" in result.stderr


def test_on_a_terminal_finished_lines_stay_and_the_status_line_goes() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=60, highlight=False)
    with LiveText(console) as out:
        out.status("waiting for the first token")
        out.write("Paris is the capital")
        out.status("edge / edge-local: 4 tokens, 40 tok/s")
        out.write(" of France.\nIt is on the Seine")
    raw = screen.getvalue()
    assert "4 tokens, 40 tok/s" in raw  # redrawn under the text each time a line is printed
    lines = ANSI.sub("", raw).replace("\r", "\n").splitlines()
    assert "Paris is the capital of France." in lines  # printed for good once complete
    assert lines[-1] == "It is on the Seine"  # the last thing drawn: the text, not the status line
    assert raw.count("[") > 0 and "[bold]" not in raw  # rich markup in the model's text is not interpreted


def test_off_a_terminal_the_text_is_written_as_it_comes(capsys: object) -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with LiveText(console) as out:
        out.status("hidden")
        out.write("[bold]as is[/bold]\n")
    assert capsys.readouterr().out == "[bold]as is[/bold]\n"  # type: ignore[attr-defined]
