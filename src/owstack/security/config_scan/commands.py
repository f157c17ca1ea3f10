"""How much a command line in an agent config can do, as a severity and a reason.

- `critical`: it runs code written into the config (a shell `-c`, `python -Ic`, `node -pe`, `perl -e`,
  PowerShell `-EncodedCommand`, flags clustered or not, behind `env`/`sudo`/`nohup` wrappers too), or
  code fetched from a URL or a git repository (`curl ... | sh`, `npx -y https://.../x.tgz`,
  `npx github:user/repo`, `uvx --from git+https://...`, `pip install git+...`, `deno run https://...`);
- `medium`: it fetches and runs a package whose version is not pinned (`npx -y pkg`, `pkg@latest`,
  `uvx pkg`, `docker run image` without a digest or a version tag);
- `low`: it runs a local program;
- `info`: it runs a package pinned to a version (or an image pinned to a digest or version tag).

Data (shells, interpreters and their code flags, wrappers, package runners) is in
`security/data/commands.yaml`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from owstack.security.data_files import load
from owstack.security.findings import Severity

_DOWNLOAD_EXEC = re.compile(
    r"(?:curl|wget|iwr|invoke-webrequest|irm|invoke-restmethod|fetch)\b[^|;&]{0,300}\|\s*"
    r"(?:sudo\s+)?(?:\w+/)*(?:ba|z|da|k|fi)?sh\b|\|\s*iex\b|base64\s+(?:-d|--decode)[^|]*\|\s*\w*sh\b"
    r"|\b(?:iex|invoke-expression)\b|\beval\s+\"?\$\(",
    re.I,
)
_REMOTE_SPEC = re.compile(
    r"^(?:https?://|git\+|git://|github:|gitlab:|bitbucket:|gist:|ssh://|file:|\.{0,2}/.*\.(?:tgz|tar\.gz|whl)$)"
    r"|\.(?:tgz|tar\.gz)$|^[\w.-]+/[\w.-]+(?:#.*)?$",
    re.I,
)
_PINNED = re.compile(r"(?:@|==)v?\d+(?:\.\d+)+(?:[-+.\w]*)$|@sha256:[0-9a-f]{64}$|:v?\d+(?:\.\d+)+[-\w.]*$")


@dataclass(frozen=True, slots=True)
class Risk:
    severity: Severity
    why: str


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = load("commands")
    return data


def argv(command: Any, args: Any = None) -> list[str]:
    """A config's command (string or list) plus args as one argv; a single string is split like a shell."""
    parts = [str(c) for c in command] if isinstance(command, list) else [str(command or "")]
    extra = [str(a) for a in args] if isinstance(args, list) else []
    if len(parts) == 1 and not extra and (" " in parts[0] or "\t" in parts[0]):
        try:
            parts = shlex.split(parts[0])
        except ValueError:
            parts = parts[0].split()
    return [p for p in parts + extra if p != ""]


def _program(word: str) -> str:
    name = PurePosixPath(word.replace("\\", "/")).name.lower().removesuffix(".exe")
    return re.sub(r"[\d.]+$", "", name) or name


def _strip_wrappers(words: list[str]) -> list[str]:
    wrappers = set(_data()["wrappers"])
    while words and _program(words[0]) in wrappers:
        words = words[1:]
        while words and (words[0].startswith("-") or re.match(r"^\w+=", words[0]) or words[0].isdigit()):
            words = words[1:]  # the wrapper's own options, env assignments, timeout's duration
    return words


def _inline(program: str, rest: list[str]) -> str | None:
    data = _data()
    long_flags = {f.lower() for f in data["long_inline_flags"]}
    short = set(data["inline_flags"].get(program, ()))
    if program in data["shells"]:
        short |= {"c"}
    for word in rest:
        lower = word.lower()
        if lower in long_flags or lower.split("=", 1)[0] in long_flags:
            return f"{program} runs code given on its command line ({word})"
        if word.startswith("-") and not word.startswith("--") and short & set(word[1:]) and len(word) <= 6:
            return f"{program} runs code given on its command line ({word})"
        if not word.startswith("-"):
            return (
                f"{program} {word} runs code given on its command line"
                if word in data["inline_subcommands"].get(program, ())
                else None
            )
    return None


def _package(program: str, rest: list[str]) -> Risk | None:
    if program not in _data()["package_runners"]:
        return None
    words = [w for w in rest if not w.startswith("-")]
    if program in ("npm", "pnpm", "yarn") and words[:1] in (["exec"], ["dlx"], ["x"]):
        words = words[1:]
    elif program in ("npm", "pnpm", "yarn"):
        return None
    if program in ("docker", "podman"):
        if not words or words[0] != "run":
            return None
        images = [w for w in words[1:] if "/" in w or ":" in w or "@" in w]
        words = images[:1]
    if program == "deno" and words[:1] == ["run"]:
        words = words[1:]
    for flag_value in _flag_values(rest, ("--from", "--with", "--package", "-p", "--spec")):
        if _REMOTE_SPEC.search(flag_value):
            return Risk("critical", f"{program} fetches and runs code from {flag_value}")
    spec = words[0] if words else ""
    if not spec:
        return None
    if _REMOTE_SPEC.search(spec) and not spec.startswith("@"):
        return Risk("critical", f"{program} fetches and runs code from {spec}")
    if _PINNED.search(spec):
        return Risk("info", f"{program} runs the pinned package {spec}")
    return Risk("medium", f"{program} fetches and runs {spec} at whatever version is current")


def _flag_values(words: list[str], flags: tuple[str, ...]) -> list[str]:
    out = []
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name in flags:
            out.append(value if eq else (words[i + 1] if i + 1 < len(words) else ""))
    return out


def risk(command: Any, args: Any = None) -> Risk:
    """The severity of running this command from a config (see the module docstring)."""
    words = argv(command, args)
    joined = " ".join(words)
    if _DOWNLOAD_EXEC.search(joined):
        return Risk("critical", "downloads and runs code")
    if re.search(r"\bpip3?\s+install\b[^;&|]*(?:git\+|https?://)", joined):
        return Risk("critical", "installs and runs a package from a URL")
    words = _strip_wrappers(words)
    if not words:
        return Risk("low", "runs a program")
    program = _program(words[0])
    why = _inline(program, words[1:])
    if why:
        return Risk("critical", why)
    package = _package(program, words[1:])
    if package:
        return package
    return Risk("low", f"runs {' '.join(words[:2])}")
