"""Git files a repository carries that make git run programs or leak credentials.

    .git/config, and the `config` of a bare repository committed inside the tree (a folder with `HEAD`,
    `config` and `objects/` or `refs/`): `core.fsmonitor` runs on every `git status` (which editors, agents
    and shell prompts run when a folder is opened or entered: critical); `core.sshCommand`, `core.pager`,
    `core.editor`, `diff.external`, `filter.*.smudge`/`clean`/`process`, `credential.helper = !...` and the
    like run on ordinary git commands (high; critical for inline or downloaded code). A cloned repository's
    `.git/config` is git's own, but a repository handed over as a folder or an archive carries its `.git`,
    and a bare repository inside the tree needs no `.git` at all (git's `safe.bareRepository` exists for it).
    .gitmodules: `update = !command` (CVE-2019-19604), a URL or path that starts with `-` (CVE-2018-17456),
    `..` in a submodule name or path (CVE-2018-11235), a carriage return or newline in a value
    (CVE-2025-48384: hooks written on a recursive clone; CVE-2020-5260: credentials for another host),
    `ext::` URLs (a command as transport).
    .lfsconfig: a URL with an encoded newline or control character (CVE-2024-53263: git-lfs handed the
    credential of another host to it).

Parsed with a small reader of git's config syntax (`[section "sub"]`, `key = value`, quotes, `#`/`;`
comments, `\\` continuations); the severities are data in `security/data/git.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.data_files import load
from owstack.security.findings import Finding, Severity, finding

_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$')
_ENTRY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")
_BOOL = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", ""})
_FALSE = frozenset({"false", "no", "off", "0"})
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|%0[0-9a-f]|%1[0-9a-f]|%7f", re.I)


@dataclass(frozen=True, slots=True)
class Entry:
    """One `key = value` of a git config file: `section.subsection.key` as git names it, lower-cased but for
    the subsection."""

    section: str
    subsection: str | None
    key: str
    value: str
    line: int

    @property
    def name(self) -> str:
        middle = f".{self.subsection}" if self.subsection is not None else ""
        return f"{self.section}{middle}.{self.key}"


def entries(text: str) -> Iterator[Entry]:
    """Every entry of a git config text (a lenient reader: malformed lines are skipped)."""
    section: str | None = None
    subsection: str | None = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        number, raw = i + 1, lines[i].removesuffix("\r")  # a CRLF file's line end, not a value's CR
        i += 1
        m = _SECTION.match(raw)
        if m is not None:
            name = m.group(1).lower()
            section, subsection = name, m.group(2)
            if subsection is None and "." in name:  # the old [section.subsection] form
                section, _, subsection = name.partition(".")
            raw = m.group(3)
            if not raw.strip():
                continue
        if section is None:
            continue
        while raw.endswith("\\") and i < len(lines):  # a value continued on the next line
            raw = raw[:-1] + lines[i].removesuffix("\r")
            i += 1
        e = _ENTRY.match(raw.rstrip("\n"))
        if e is not None and not raw.lstrip().startswith(("#", ";")):
            value = _value(e.group(2)) if e.group(2) is not None else "true"
            yield Entry(section, subsection, e.group(1).lower(), value, number)


def _value(raw: str) -> str:
    """A value with its quotes removed and a trailing comment cut (git's rules, simplified). A carriage
    return inside quotes is kept: that is what CVE-2025-48384 hides."""
    out: list[str] = []
    quoted = False
    j = 0
    while j < len(raw):
        c = raw[j]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and j + 1 < len(raw):
            nxt = raw[j + 1]
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(nxt, nxt))
            j += 1
        elif c in "#;" and not quoted:
            break
        else:
            out.append(c)
        j += 1
    text = "".join(out)
    return text.strip(" \t") if not quoted else text


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = load("git")
    return data


def _match(entry: Entry, patterns: dict[str, Any]) -> Any:
    for pattern, spec in patterns.items():
        if re.fullmatch(pattern, entry.name, re.I):
            return spec
    return None


def is_repository(folder: Path) -> bool:
    """A folder with `HEAD` and `objects/` or `refs/`: a git repository, bare or a `.git` folder."""
    return (folder / "HEAD").is_file() and ((folder / "objects").is_dir() or (folder / "refs").is_dir())


def check_config(src: ScanFile) -> list[Finding]:
    """`.git/config` or the config of a bare repository inside the tree."""
    if src.path.parent.name.lower() != ".git" and not is_repository(src.path.parent):
        return []  # some other file called `config`
    where = "this checkout's" if src.path.parent.name.lower() == ".git" else "a repository committed in the tree:"
    return _check_entries(src, where, set())


def _check_entries(src: ScanFile, where: str, seen: set[Path]) -> list[Finding]:
    out: list[Finding] = []
    root = src.root
    for entry in entries(src.text):
        if any(re.fullmatch(p, entry.name, re.I) for p in _data()["includes"]):
            message = f"{where} `{entry.name}` adds the config file {entry.value!r}: its keys apply too"
            out.append(finding("OWS-GIT-001", src.rel, entry.line, message, executes=entry.value, severity="medium"))
            out += _included(src, root, entry.value, seen)
            continue
        if entry.section == "remote" and entry.key in ("url", "pushurl") and re.match(r"^\s*(?:ext|fd)::", entry.value):
            command = entry.value.split("::", 1)[1].replace("%20", " ").replace("% ", " ")
            severity: Severity = "critical" if risk(command).severity == "critical" else "high"
            message = f"{where} `{entry.name}` is an `ext::` URL: git runs {command[:60]!r} as the transport on fetch"
            out.append(finding("OWS-GIT-001", src.rel, entry.line, message, executes=entry.value, severity=severity))
            continue
        if entry.name == "core.hookspath":
            out += _hooks_folder(src, root, entry)
        network = _match(entry, _data()["config_network"])
        if network is not None:
            value = entry.value.strip().lower()
            if network.get("when_false") and value not in _FALSE:
                continue
            if value in network.get("unless", ()):
                continue
            message = f"{where} `{entry.name} = {entry.value.strip()[:80]}` {network['what']}"
            out.append(finding("OWS-GIT-005", src.rel, entry.line, message, severity=network["severity"]))
            continue
        spec = _match(entry, _data()["config_programs"])
        if spec is None or (spec.get("unless_bool") and entry.value.strip().lower() in _BOOL):
            continue
        found_severity = _severity(entry.value.strip(), spec)
        if found_severity is None:
            continue
        danger = risk(entry.value.strip().removeprefix("!"))
        message = f"{where} `{entry.name}` makes git run a program {spec['when']} ({danger.why})"
        executes = command_line(entry.value.strip())
        out.append(finding("OWS-GIT-001", src.rel, entry.line, message, executes=executes, severity=found_severity))
    return out


def _inside(path: Path, root: Path) -> Path | None:
    try:
        real = path.resolve()
        real.relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    return real


def _included(src: ScanFile, root: Path, value: str, seen: set[Path]) -> list[Finding]:
    """The keys of a config file an `include.path` adds, when the repository holds it (`../.gitconfig`): a
    `.gitconfig` in the tree is inert until the checkout's config includes it, and then it is git's own."""
    target = _inside(src.path.parent / value.strip(), root)
    if target is None or target in seen or not target.is_file() or target.stat().st_size > 1_000_000:
        return []
    seen.add(target)
    try:
        text = target.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rel = target.relative_to(root.resolve()).as_posix()
    return _check_entries(ScanFile(rel, target, text), f"{src.rel} includes {rel}:", seen)


def check_hook(src: ScanFile) -> list[Finding]:
    """A hook script git runs by itself (`.git/hooks/*` handed over with the checkout, husky's `.husky/*`, the folder
    `core.hooksPath` names): high when a line downloads and runs code or runs an inline script that fetches."""
    out = []
    for number, line in enumerate(src.text.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        danger = risk(text)
        if danger.severity == "critical" and (
            danger.why.startswith(("downloads", "sends", "installs")) or _FETCH.search(text)
        ):
            message = f"the git hook {PurePosixPath(src.rel).name!r} runs at every commit or checkout: {danger.why}"
            out.append(finding("OWS-GIT-004", src.rel, number, message, executes=command_line(text)))
    return out


_FETCH = re.compile(
    r"\b(?:curl|wget|iwr|irm|invoke-webrequest|invoke-restmethod|fetch|nc|ncat|socat)\b|https?://", re.I
)


def _hooks_folder(src: ScanFile, root: Path, entry: Entry) -> list[Finding]:
    """The hooks in the folder `core.hooksPath` names, when it is a folder of the repository (husky's `.husky/_`,
    a `.githooks`): checked as hooks."""
    value = entry.value.strip()
    if not value or value.startswith(("/", "~", "$")):
        return []
    base = src.path.parent.parent if src.path.parent.name.lower() == ".git" else src.path.parent
    folder = _inside(base / value, root)
    if folder is None or not folder.is_dir() or "/.husky" in "/" + folder.relative_to(root.resolve()).as_posix():
        return []  # husky's folders are read on their own (classify: `git-hook`)
    out: list[Finding] = []
    for hook in sorted(folder.iterdir())[:100]:
        if hook.is_file() and not hook.name.endswith(".sample") and hook.stat().st_size < 1_000_000:
            text = hook.read_text(encoding="utf-8", errors="replace")
            rel = hook.resolve().relative_to(root.resolve()).as_posix()
            out += check_hook(ScanFile(rel, hook, text))
    return out


def _severity(value: str, spec: dict[str, Any]) -> Severity | None:
    """Inline or downloaded code: critical; a program by a relative path (one the repository can ship): the
    key's severity; a program by name or by a system path (`less`, `vim`, `!gh auth git-credential`,
    `/usr/lib/git-core/...`, a credential helper called `store`): nothing, or high for the keys that run on
    every `git status` (`core.fsmonitor`)."""
    body = value.removeprefix("!")
    if risk(body).severity == "critical":
        return "critical"
    first = body.split()[0] if body.split() else ""
    installed = ("/" not in first and "\\" not in first) or bool(_SYSTEM_PATH.match(first))
    if installed:
        return "high" if spec["severity"] == "critical" else None
    severity: Severity = spec["severity"]
    return severity


_SYSTEM_PATH = re.compile(r"^(?:/|~|\$|[A-Za-z]:[\\/])")


def check_gitmodules(src: ScanFile) -> list[Finding]:
    out: list[Finding] = []
    for entry in entries(src.text):
        if entry.section != "submodule":
            continue
        problem = _submodule_problem(entry)
        if problem is not None:
            message, severity, advisory = problem
            executes = entry.value.replace("\r", "\\r").replace("\n", "\\n")
            out.append(
                finding(
                    "OWS-GIT-002",
                    src.rel,
                    entry.line,
                    f"submodule {entry.subsection!r}: {message} ({advisory})",
                    executes=executes[:200],
                    severity=severity,
                )
            )
    for m in re.finditer(r'\[\s*submodule\s+"([^"]*)"', src.text):
        if ".." in re.split(r"[/\\]", m.group(1)):
            line = src.text.count("\n", 0, m.start()) + 1
            message = f"submodule name {m.group(1)!r} climbs out of .git/modules (CVE-2018-11235)"
            out.append(finding("OWS-GIT-002", src.rel, line, message, executes=m.group(1), severity="high"))
    return out


def _submodule_problem(entry: Entry) -> tuple[str, Severity, str] | None:
    value = entry.value
    if "\r" in value or "\n" in value:
        return "a carriage return or newline in the value writes outside the submodule", "critical", "CVE-2025-48384"
    if entry.key == "url" and _CONTROL.search(value):
        return "an encoded newline in the URL asks for another host's credentials", "critical", "CVE-2020-5260"
    if entry.key == "update" and value.lstrip().startswith("!"):
        return f"`update = {value}` runs a shell command on `git submodule update`", "high", "CVE-2019-19604"
    if entry.key in ("url", "path") and value.lstrip().startswith("-"):
        return f"a {entry.key} starting with `-` is read as an option by git", "high", "CVE-2018-17456"
    if entry.key == "path" and ".." in re.split(r"[/\\]", value):
        return "the path leaves the working tree", "high", "CVE-2018-11235"
    if entry.key == "url" and re.match(r"^\s*(?:ext|fd)::", value, re.I):
        return "an `ext::` URL runs a command as the transport", "high", "git-remote-ext(1)"
    return None


def check_lfsconfig(src: ScanFile) -> list[Finding]:
    out: list[Finding] = []
    for entry in entries(src.text):
        if entry.key in ("url", "pushurl", "lfsurl") and _CONTROL.search(entry.value):
            message = f"`{entry.name}` holds an encoded newline or control character: git-lfs sends it the credential"
            message += " of another host"
            executes = entry.value.replace("\n", "\\n")[:200]
            out.append(finding("OWS-GIT-002", src.rel, entry.line, message, executes=executes, severity="critical"))
    return out
