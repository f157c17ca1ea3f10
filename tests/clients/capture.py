"""Capture what the real agent CLIs send, as fixtures: `python tests/clients/capture.py [OUT_DIR]`.

Starts tests/fakes/recorder.py, runs each pinned CLI once through a scripted two-tool-call conversation
(write a file, read it back, answer), and writes each run's requests, scrubbed of credentials and of this
machine's paths, to OUT_DIR (default tests/fixtures/clients):

    codex_exec_default.json    Codex CLI with only the provider configured (what a new user's config sends)
    codex_exec.json            Codex CLI with the configuration docs/clients.md gives (web_search disabled)
    claude_print.json          Claude Code `claude -p`

docs/clients-captured.md is the reading of these files. Run it again after bumping a CLI in package.json.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tempfile
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


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="owstack-capture-") as name:
        tmp = Path(name)
        port, log = free_port(), tmp / "requests.jsonl"
        proc = spawn([sys.executable, str(HERE.parent / "fakes" / "recorder.py"), str(port), str(log)], tmp / "rec.log")
        recorder = Proc(proc, port, tmp / "rec.log")
        try:
            wait_http(recorder.url + "/health", proc, recorder.log_path)
            codex, claude = _version(CODEX), _version(CLAUDE)
            run = run_codex(tmp / "a", recorder.base_url, "sk-capture", MODEL, PROMPT, web_search=True)
            _save(out, "codex_exec_default.json", codex, "codex exec, provider only", log, run, tmp)
            run = run_codex(tmp / "b", recorder.base_url, "sk-capture", MODEL, PROMPT)
            _save(out, "codex_exec.json", codex, "codex exec, docs/clients.md config", log, run, tmp)
            run = run_claude(tmp / "c", recorder.url, "sk-capture", MODEL, PROMPT)
            _save(out, "claude_print.json", claude, "claude -p --model scripted --allowedTools Bash", log, run, tmp)
        finally:
            recorder.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "fixtures" / "clients")
