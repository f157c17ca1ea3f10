"""Run the real agent CLIs (Codex CLI, Claude Code) against a local base URL, offline and without a prompt.

Both come from npm, pinned in tests/clients/package-lock.json (`make install` runs `npm ci` there). Each run
gets its own home directory, configuration and working directory under the test's temp dir, and an environment
built from nothing but PATH and what is set here, so no key, config or login of the machine leaks in and
nothing blocks on a login screen, an update check, a trust dialog or an approval prompt:

- Codex CLI (`codex exec`): CODEX_HOME holds a config.toml with one provider (`wire_api = "responses"`, the
  only wire Codex still speaks), `approval_policy = "never"` and `sandbox_mode = "danger-full-access"` (the
  test's temp dir is the sandbox; Codex's own Linux sandbox needs kernel features a container may lack),
  update checks, analytics and plugins off (the plugin sync looks up api.github.com and chatgpt.com), and
  `web_search = "disabled"`: otherwise every request carries a `{"type": "web_search"}` tool that a
  self-hosted model cannot run.
- Claude Code (`claude -p`): ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN point it at the gateway,
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 (with the narrower DISABLE_* switches) keeps it from calling
  anywhere else, `--allowedTools Bash` lets its Bash tool run without asking, and the small/fast model
  (used for side tasks) is the same model as the main one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_BIN = HERE / "node_modules" / ".bin"
CODEX = NODE_BIN / "codex"
CLAUDE = NODE_BIN / "claude"
KEY_ENV = "OWSTACK_API_KEY"


@dataclass(frozen=True)
class Run:
    """One finished CLI run: what it printed and where it worked."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    final: str  # the final answer as the CLI reports it

    def describe(self) -> str:
        return f"{self.argv[0]} exited {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def missing(cli: Path) -> str | None:
    """Why `cli` cannot run here, or None: the tests skip with this reason (and only for this reason)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm are not installed: the agent-CLI tests need them (`make install` runs `npm ci`)"
    if not cli.exists():
        return f"{cli.name} is not installed: run `make install` (npm ci in {HERE})"
    return None


def _base_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb"}


def codex_config(base_url: str, model: str, *, web_search: bool = False) -> str:
    """The config.toml for `codex exec` against owstack (also the one docs/clients.md shows)."""
    lines = [
        f'model = "{model}"',
        'model_provider = "owstack"',
        'approval_policy = "never"',
        'sandbox_mode = "danger-full-access"',
        "check_for_update_on_startup = false",
    ]
    if not web_search:
        lines.append('web_search = "disabled"')
    lines += [
        "",
        "[model_providers.owstack]",
        'name = "owstack"',
        f'base_url = "{base_url}"',
        f'env_key = "{KEY_ENV}"',
        'wire_api = "responses"',
        "request_max_retries = 0",
        "stream_max_retries = 0",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[features]",
        "plugins = false",
    ]
    return "\n".join(lines) + "\n"


def run_codex(
    tmp: Path, base_url: str, key: str, model: str, prompt: str, *, timeout: float = 600, web_search: bool = False
) -> Run:
    """`codex exec PROMPT` in a fresh working directory; base_url ends in /v1."""
    home, workdir = tmp / "codex-home", tmp / "codex-work"
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(codex_config(base_url, model, web_search=web_search))
    last = tmp / "codex-last-message.txt"
    argv = [str(CODEX), "exec", "--skip-git-repo-check", "--color", "never", "-C", str(workdir), "-o", str(last)]
    env = {**_base_env(home), "CODEX_HOME": str(home), KEY_ENV: key}
    done = _run([*argv, "--", prompt], env, workdir, timeout)
    final = last.read_text() if last.exists() else ""
    return Run(argv, done.returncode, done.stdout, done.stderr, workdir, final)


def run_claude(tmp: Path, base_url: str, key: str, model: str, prompt: str, *, timeout: float = 600) -> Run:
    """`claude -p PROMPT` in a fresh working directory; base_url is the gateway's root (Claude Code adds /v1)."""
    home, workdir = tmp / "claude-home", tmp / "claude-work"
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **_base_env(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": key,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    argv = [str(CLAUDE), "-p", "--model", model, "--allowedTools", "Bash"]
    done = _run([*argv, "--", prompt], env, workdir, timeout)
    return Run(argv, done.returncode, done.stdout, done.stderr, workdir, done.stdout.strip())


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run in its own process group, so a run that hangs is ended with everything it started (the npm shims
    start the native binaries as children)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n[killed after {timeout:.0f}s]"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
