"""Capture what the real agent CLIs send, as fixtures: `python tests/clients/capture.py [OUT_DIR]`.

Starts tests/fakes/recorder.py, runs each pinned CLI once through a scripted two-tool-call conversation
(write a file, read it back, answer), and writes each run's requests, scrubbed of credentials and of this
machine's paths, to OUT_DIR (default tests/fixtures/clients):

    codex_exec_default.json    Codex CLI as below but without `web_search = "disabled"` (Codex's default tools)
    codex_exec.json            Codex CLI with the configuration docs/clients.md gives (web_search disabled)
    claude_print.json          Claude Code `claude -p`
    codex_exec_reasoning.json  as codex_exec.json, the recorder answering with encrypted reasoning items first
    claude_print_thinking.json as claude_print.json, the recorder answering with signed thinking blocks first

docs/clients-captured.md is the reading of these files. Run it again after bumping a CLI in package.json.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from agent_clis import CLAUDE, CODEX, Run, run_claude, run_codex  # noqa: E402

from procs import Proc, free_port, spawn, wait_http  # noqa: E402

MODEL = "scripted"
PROMPT = "Write owstack-scripted-ok into scripted.txt, read it back and tell me what it says."


def _version(cli: Path) -> str:
    done = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=False, timeout=120)
    return done.stdout.strip().splitlines()[-1]


def _scrub(value: Any, paths: dict[str, str]) -> Any:
    if isinstance(value, str):
        for real, placeholder in paths.items():
            value = value.replace(real, placeholder)
        return value
    if isinstance(value, list):
        return [_scrub(v, paths) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, paths) for k, v in value.items()}
    return value


def _save(out: Path, name: str, client: str, how: str, log: Path, run: Run, tmp: Path) -> None:
    requests = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    log.write_text("")
    fixture = {
        "client": client,
        "captured": datetime.date.today().isoformat(),
        "how": how,
        "exit_code": run.returncode,
        "final_answer": run.final,
        "requests": requests,
    }
    (out / name).write_text(json.dumps(_scrub(fixture, {str(tmp): "<tmp>"}), indent=1, ensure_ascii=False) + "\n")
    print(f"{name}: {len(requests)} requests, exit {run.returncode}, answer {run.final[:60]!r}")


@contextlib.contextmanager
def _recorder(tmp: Path, *flags: str) -> Iterator[tuple[Proc, Path]]:
    port, log = free_port(), tmp / f"requests-{free_port()}.jsonl"
    argv = [sys.executable, str(HERE.parent / "fakes" / "recorder.py"), str(port), str(log), *flags]
    proc = spawn(argv, tmp / f"rec-{port}.log")
    recorder = Proc(proc, port, tmp / f"rec-{port}.log")
    try:
        wait_http(recorder.url + "/health", proc, recorder.log_path)
        yield recorder, log
    finally:
        recorder.stop()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="owstack-capture-") as name:
        tmp = Path(name)
        codex, claude = _version(CODEX), _version(CLAUDE)
        with _recorder(tmp) as (rec, log):
            run = run_codex(tmp / "a", rec.base_url, "sk-capture", MODEL, PROMPT, web_search=True)
            _save(
                out,
                "codex_exec_default.json",
                codex,
                'codex exec, the docs/clients.md config without web_search = "disabled"',
                log,
                run,
                tmp,
            )
            run = run_codex(tmp / "b", rec.base_url, "sk-capture", MODEL, PROMPT)
            _save(out, "codex_exec.json", codex, "codex exec, docs/clients.md config", log, run, tmp)
            run = run_claude(tmp / "c", rec.url, "sk-capture", MODEL, PROMPT)
            _save(out, "claude_print.json", claude, "claude -p --model scripted --allowedTools Bash", log, run, tmp)
        with _recorder(tmp, "--reasoning") as (rec, log):
            how = "codex exec, docs/clients.md config; every answer starts with an encrypted reasoning item"
            run = run_codex(tmp / "d", rec.base_url, "sk-capture", MODEL, PROMPT)
            _save(out, "codex_exec_reasoning.json", codex, how, log, run, tmp)
            how = "claude -p as above; every answer starts with a signed thinking block"
            run = run_claude(tmp / "e", rec.url, "sk-capture", MODEL, PROMPT)
            _save(out, "claude_print_thinking.json", claude, how, log, run, tmp)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "fixtures" / "clients")
