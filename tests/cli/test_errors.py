"""No command prints a traceback for a user's mistake: every command, walked from the Typer app itself,
answers bad options, bad values and bad config files with one `error:` line naming what to fix, exit 2.

The walk finds commands added later too; `test_the_walk_sees_every_command` fails if it stops seeing them.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import UnionType
from typing import Any

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from owstack.cli import app

runner = CliRunner()
ROOT = get_command(app)
#: names of required arguments and options -> a value that passes their own checks
FILLERS = {
    "prompt": "hi",
    "model": "smollm2-135m-instruct",
    "engine": "llamacpp",
    "key_id": "0123456789ab",
    "tenant": "acme",
    "urls": "https://example.com/",
    "since": "2026-01-01",
    "until": "2026-02-01",
    "tool": "files.read_file",
}


def leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield path, command
        return
    for name, sub in sorted(subcommands.items()):
        yield from leaves(sub, (*path, name))


COMMANDS = list(leaves(ROOT))


def python_type(param: Any) -> Any:
    """The parameter's annotation with Optional and list stripped (Typer keeps it on `type_descriptor`)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    while typing.get_origin(annotation) in (typing.Union, UnionType, list):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def required(command: Any, files: Path) -> list[str]:
    """Arguments and options the command cannot run without, filled with values that pass."""
    out: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        value = FILLERS.get(param.name) or (str(files / "input.txt") if python_type(param) is Path else "x")
        out += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return out


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture(autouse=True)
def _no_gateway_no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWSTACK_URL", "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    for name in ("OWSTACK_CONFIG", "OWSTACK_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "input.txt").write_text("hello\n")
    return tmp_path


def test_the_walk_sees_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"serve", "chat", "config check", "recipe", "plan", "usage", "keys create", "tenants erase"} <= names
    assert {"audit verify", "eval efficiency", "distill", "scan", "egress check", "bom", "init"} <= names
    typed = [p for _, c in COMMANDS for p in c.params if python_type(p) in (int, float)]
    assert len(typed) > 20  # the Typer internals this walk reads are still there


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=" ".join)
def test_an_unknown_option_is_a_usage_error(path: tuple[str, ...], files: Path) -> None:
    command = dict(COMMANDS)[path]
    result = invoke(*path, *required(command, files), "--no-such-option")
    assert result.exit_code == 2 and "No such option" in result.output


def typed_cases() -> Iterator[Any]:
    for path, command in COMMANDS:
        for param in command.params:
            kind = python_type(param)
            if param.param_type_name != "option" or param.name == "help":
                continue
            flag = param.opts[0]
            if kind in (int, float):
                yield pytest.param(path, flag, "not-a-number", id=f"{' '.join(path)} {flag} not-a-number")
                if getattr(param, "max", None) is not None:
                    yield pytest.param(path, flag, str(param.max + 1), id=f"{' '.join(path)} {flag} above max")
                if getattr(param, "min", None) is not None:
                    yield pytest.param(path, flag, str(param.min - 1), id=f"{' '.join(path)} {flag} below min")
            elif typing.get_origin(kind) is typing.Literal:
                yield pytest.param(path, flag, "bogus", id=f"{' '.join(path)} {flag} bogus")


@pytest.mark.parametrize(("path", "flag", "value"), list(typed_cases()))
def test_every_typed_option_rejects_a_bad_value(path: tuple[str, ...], flag: str, value: str, files: Path) -> None:
    command = dict(COMMANDS)[path]
    result = invoke(*path, *required(command, files), flag, value)
    assert result.exit_code == 2, result.output
    assert flag in result.output and "Invalid value" in result.output


CONFIG_COMMANDS = [path for path, c in COMMANDS if any("--config" in p.opts for p in c.params)]


@pytest.mark.parametrize("path", CONFIG_COMMANDS, ids=" ".join)
def test_every_config_option_reports_a_bad_file_by_its_field(path: tuple[str, ...], files: Path) -> None:
    command = dict(COMMANDS)[path]
    missing = invoke(*path, *required(command, files), "--config", str(files / "missing.yaml"))
    assert missing.exit_code == 2 and "cannot read config file" in missing.output
    bad = files / "bad.yaml"
    bad.write_text(yaml.safe_dump({"bogus_section": 1, "economics": {"bogus_field": 1}}))
    result = invoke(*path, *required(command, files), "--config", str(bad))
    assert result.exit_code == 2, result.output
    assert "bogus_" in result.output and "unknown field" in result.output


def tenants_config(files: Path) -> str:
    path = files / "tenants.yaml"
    audit = {"directory": str(files / "audit"), "keys_directory": str(files / "keys")}
    path.write_text(yaml.safe_dump({"tenants": {"acme": {}}, "audit": audit, "storage": {"url": "sqlite:///x.db"}}))
    return str(path)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["chat", "hi", "--url", "localhost:8000"], "--url:"),
        (["plan", "--tokens-per-day", "lots"], "--tokens-per-day:"),
        (["usage", "--since", "last tuesday"], "--since:"),
        (["usage", "--by", "week"], "--by:"),
        (["audit", "export", "--since", "x", "--until", "2026-01-01"], "--since:"),
        (["audit", "verify", "--dir", "{files}/nowhere"], "--dir:"),
        (["audit", "verify", "--anchor", "{files}/nowhere.json"], "--anchor:"),
        (["audit", "prune", "--now", "someday"], "--now:"),
        (["keys", "create", "--tenant", "ghost", "--config", "{tenants}"], "--tenant:"),
        (["keys", "create", "--tenant", "acme", "--expires", "soonish", "--config", "{tenants}"], "--expires:"),
        (["keys", "revoke", "not-hex"], "KEY_ID:"),
        (["tenants", "erase", "ghost", "--config", "{tenants}", "--yes"], "unknown tenant 'ghost'"),
        (["egress", "check", "https://example.com/", "--resolve", "nonsense"], "--resolve"),
        (["egress", "check", "https://example.com/", "--allow-network", "10.0.0.0/99"], "--allow-network"),
        (["scan", "{files}/nowhere"], "does not exist"),
        (["scan", "{files}", "--format", "xml"], "--format"),
        (["guard", "scan", "{files}/nowhere"], "FILE"),
        (["guard", "neutralize", "{files}/input.txt", "--family", "nope"], "--family"),
        (["recipe", "gpt-9", "--engine", "vllm"], "unknown model 'gpt-9'"),
        (["recipe", "qwen3.5-9b", "--engine", "vllm", "--gateway", "nowhere"], "--gateway:"),
        (["models", "gpt-9"], "unknown model 'gpt-9'"),
        (["eval", "efficiency", "--model", "gpt-9"], "--model:"),
        (["eval", "efficiency", "--compare-to", "{files}/nowhere.jsonl"], "--compare-to:"),
        (["eval", "efficiency", "--out", "{files}/input.txt/items.jsonl"], "--out:"),
        (["distill", "--out", "{files}/input.txt"], "--out:"),
        (["docs", "annex-iv", "--results", "{files}/nowhere.json"], "--results:"),
        (["bom", "--out", "{files}/input.txt/bom.json"], "--out:"),
        (["config", "check", "{files}/nowhere.yaml"], "cannot read config file"),
        (["config", "show", "{files}/input.txt"], "top level must be a mapping"),
        (["init", "{files}/input.txt"], "already exists"),
    ],
    ids=lambda v: " ".join(v[:3]) if isinstance(v, list) else None,
)
def test_string_options_name_themselves_and_exit_2(args: list[str], fragment: str, files: Path) -> None:
    filled = [a.format(files=files, tenants=tenants_config(files)) for a in args]
    result = invoke(*filled)
    assert result.exit_code == 2, result.output
    assert fragment in result.output and result.output.count("error:") == 1, result.output


def run_owstack(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "owstack", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


BROKEN = {
    "hardware": {
        "backends": {"a": {"engine": "vllm", "url": "http://gpu:8001/v1", "model": "m", "hardware": "2xA100"}}
    },
    "counterfactual": {"counterfactual": {"edge": "gpt-4o"}},
    "secret": {
        "backends": {"a": {"engine": "openai", "url": "https://x/v1", "model": "m", "api_key": "env.OWS_NOT_SET"}}
    },
    "itself": {"backends": {"a": {"engine": "vllm", "url": "http://localhost:8000/v1", "model": "m"}}},
}


@pytest.mark.parametrize("name", BROKEN)
def test_serve_refuses_exactly_what_config_check_refuses(name: str, tmp_path: Path) -> None:
    """The issue's cases: accepted by `config check`, then a 70-line traceback from `serve`."""
    config = tmp_path / "owstack.yaml"
    config.write_text(yaml.safe_dump(BROKEN[name]))
    checked = run_owstack("config", "check", str(config), cwd=tmp_path)
    served = run_owstack("serve", "--config", str(config), cwd=tmp_path)
    assert checked.returncode == served.returncode == 2
    assert "Traceback" not in checked.stderr + served.stderr
    assert checked.stderr == served.stderr and checked.stderr.startswith(f"error: invalid config ({config}):\n  ")
    field = {"hardware": "backends.a.hardware", "counterfactual": "counterfactual.edge"}.get(name, "backends.a.")
    assert field in served.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--log-level", "loud"], "'--log-level'"),
        (["--port", "80000"], "'--port'"),
        (["--workers", "0"], "'--workers'"),
    ],
)
def test_serve_options_are_validated(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = run_owstack("serve", *args, cwd=tmp_path)
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


def test_version() -> None:
    from owstack import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"owstack {__version__}"


def test_help_shows_the_defaults() -> None:
    serve = invoke("serve", "--help").output
    assert "[default: server.port, else 8000]" in " ".join(serve.split())
    assert "[0<=x<=65535]" in serve and "<debug|info|warning|error>" in serve
    chat = " ".join(invoke("chat", "--help").output.split())
    assert "[default: 256;" in chat and "default: http://127.0.0.1:8000/v1]" in chat


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
)
#: config files a user may hand over by mistake (or an attacker on purpose): name -> (bytes, what the error says)
HOSTILE_CONFIGS = {
    "binary": (bytes(range(256)) * 4, "not UTF-8"),
    "latin-1": ("caf\u00e9: 1\n".encode("latin-1"), "not UTF-8"),
    "deep": (("a: " + "[" * 200 + "]" * 200).encode(), "nests deeper"),
    "self-referential": (b"a: &a [*a]\n", "refers to itself"),
    "billion-laughs": (LAUGHS.encode(), "expands to more than"),
}


@pytest.mark.parametrize("path", CONFIG_COMMANDS, ids=" ".join)
def test_every_config_option_refuses_a_hostile_file_in_one_line(path: tuple[str, ...], files: Path) -> None:
    """Not UTF-8, nested past the parser's stack, aliases that expand to billions of values: one `error:` line
    naming the file, exit 2 (they were "unexpected UnicodeDecodeError/RecursionError ... this is a bug")."""
    command = dict(COMMANDS)[path]
    for name, (content, fragment) in HOSTILE_CONFIGS.items():
        config = files / f"{name}.yaml"
        config.write_bytes(content)
        result = invoke(*path, *required(command, files), "--config", str(config))
        assert result.exit_code == 2, (name, result.output)
        assert fragment in result.output and str(config) in result.output, (name, result.output)
        assert "this is a bug" not in result.output and result.output.count("error:") == 1, result.output


def test_a_config_nested_past_pythons_stack_is_refused(files: Path) -> None:
    config = files / "deeper.yaml"
    config.write_text("a: " + "[" * 5000 + "]" * 5000)
    result = invoke("config", "check", str(config))
    assert result.exit_code == 2 and "nests deeper" in result.output, result.output


def path_options() -> Iterator[Any]:
    for path, command in COMMANDS:
        if path in (("serve",), ("console",)):
            continue
        for param in command.params:
            if param.param_type_name == "option" and python_type(param) is Path and param.name != "help":
                yield pytest.param(path, param.opts[0], id=f"{' '.join(path)} {param.opts[0]}")


@pytest.mark.parametrize(("path", "flag"), list(path_options()))
def test_every_path_option_answers_an_unusable_path_in_one_line(path: tuple[str, ...], flag: str, files: Path) -> None:
    """A name too long for the file system, a file where a directory is expected, a binary file: an `error:`
    line (exit 1 or 2), never "unexpected OSError ... this is a bug"."""
    command = dict(COMMANDS)[path]
    (files / "binary").write_bytes(bytes(range(256)) * 4)
    values = [str(files / ("x" * 300)), str(files / "input.txt" / "below")]
    if flag != "--out":  # an existing file is a fine place to write: the command would run in full
        values.append(str(files / "binary"))
    for value in values:
        result = invoke(*path, *required(command, files), flag, value)
        assert "this is a bug" not in result.output, (flag, value[-40:], result.output)
        assert result.exit_code in (0, 1, 2), result.output


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "hi", "--url", "http://[::1"],
        ["chat", "hi", "--url", "http://127.0.0.1:99999/v1"],
        ["chat", "hi", "--url", "http://:8000/v1"],
        ["chat", "hi", "--api-key", "cl\u00e9"],
        ["chat", "hi", "--api-key", "a\nb"],
        ["redteam", "run", "--url", "http://[::1", "--no-garak"],
        ["eval", "efficiency", "--backend", "http://[::1"],
        ["eval", "efficiency", "--backend", "ftp://example.com/v1"],
    ],
    ids=lambda v: " ".join(v),
)
def test_a_bad_url_or_header_value_is_a_usage_error(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and "this is a bug" not in result.output, result.output
    assert result.output.count("error:") == 1, result.output
