"""Langflow: flows whose node code runs commands, and Langflow versions with known RCE advisories.

Node code is Python that Langflow `exec()`s when a flow is built (CVE-2026-33017 ran an attacker's
flow this way). It is parsed with `ast`, so aliases (`import os as o; o.system(...)`, `from subprocess
import run as r`), `__import__`, `importlib` and `getattr` tricks are seen for what they call; code is
looked for everywhere in the flow, including the nested flows of group nodes. Calls that run commands
or code are critical; decoding and file-deletion calls are medium (network calls are what API
components do, and are not reported). Code that does not parse is searched
with patterns instead.

Version pins are read from requirements files, `pyproject.toml` (PEP 621 and Poetry), `Pipfile`, lock
files (`uv.lock`, `poetry.lock`, `Pipfile.lock`), Dockerfiles, compose and Kubernetes YAML and conda
environments; the advisories and their fixed versions are in `security/data/langflow.yaml`.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterator
from typing import Any

from owstack.security.config_scan.common import ScanFile
from owstack.security.data_files import load
from owstack.security.findings import Finding, Severity, finding

_CRITICAL_CALLS = {
    "os": {
        "system",
        "popen",
        "execv",
        "execve",
        "execl",
        "execlp",
        "execvp",
        "execvpe",
        "spawnl",
        "spawnv",
        "spawnve",
        "spawnlp",
        "spawnvp",
        "posix_spawn",
        "posix_spawnp",
        "startfile",
        "fork",
        "forkpty",
    },
    "subprocess": {"*"},
    "pty": {"spawn", "fork"},
    "commands": {"*"},
    "builtins": {"exec", "eval", "compile", "__import__"},
    "importlib": {"import_module", "__import__"},
    "ctypes": {"*"},
    "runpy": {"*"},
    "code": {"*"},
    "marshal": {"loads"},
    "pickle": {"loads", "load"},
    "socket": {"*"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
    "multiprocessing": {"*"},
}
_MEDIUM_CALLS = {"shutil": {"rmtree", "move", "copytree"}, "base64": {"b64decode"}}
_BUILTIN_CRITICAL = {"exec", "eval", "compile", "__import__", "breakpoint"}
_FALLBACK = re.compile(
    r"\b(?:os\.(?:system|popen|exec\w*|spawn\w*)|subprocess\.|pty\.spawn|socket\.socket|__import__\s*\("
    r"|(?<![.\w])(?:exec|eval|compile)\s*\(|importlib\.import_module|marshal\.loads|pickle\.loads|ctypes\.)"
)


class _Calls(ast.NodeVisitor):
    """Resolve names to the modules they alias and record dangerous calls and imports."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> "module" or "module.attr"
        self.hits: list[tuple[Severity, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            full = f"{node.module}.{a.name}"
            self.aliases[a.asname or a.name] = full
            self._judge(full, "from-import")

    def visit_Call(self, node: ast.Call) -> None:
        name = self._dotted(node.func)
        if name:
            self._judge(name, "call")
        if isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) > 1:
            if not isinstance(node.args[1], ast.Constant):
                self.hits.append(("critical", "getattr with a computed name"))
            else:
                target = self._dotted(node.args[0])
                if target:
                    self._judge(f"{target}.{node.args[1].value!s}", "call")
        self.generic_visit(node)

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, f"builtins.{node.id}" if node.id in _BUILTIN_CRITICAL else node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return str(node.args[0].value)
        return None

    def _judge(self, dotted: str, how: str) -> None:
        module, _, attr = dotted.rpartition(".")
        for table, severity in ((_CRITICAL_CALLS, "critical"), (_MEDIUM_CALLS, "medium")):
            names = table.get(module)
            if names and ("*" in names or attr in names):
                self.hits.append((severity, dotted))  # type: ignore[arg-type]
                return


def code_hits(code: str) -> list[tuple[Severity, str]]:
    """(severity, what) for each dangerous call in Python source."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [("critical", m.group()) for m in _FALLBACK.finditer(code)]
    visitor = _Calls()
    visitor.visit(tree)
    return visitor.hits


def is_langflow_flow(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("data"), dict) and isinstance(data["data"].get("nodes"), list)


def _code_fields(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """(path, node id, code) of every code field anywhere below `node` (group nodes nest whole flows)."""
    stack: list[tuple[Any, tuple[str | int, ...], str]] = [(node, path, "")]
    while stack:
        item, where, owner = stack.pop()
        if isinstance(item, dict):
            owner = str(item.get("id", owner)) if "id" in item and isinstance(item.get("data"), dict) else owner
            code = item.get("code")
            if isinstance(code, dict) and isinstance(code.get("value"), str):
                yield (*where, "code", "value"), owner, code["value"]
            elif item.get("type") == "code" and isinstance(item.get("value"), str):
                yield (*where, "value"), owner, item["value"]
            for key, value in item.items():
                if isinstance(value, dict | list):
                    stack.append((value, (*where, key), owner))
        elif isinstance(item, list):
            for i, value in enumerate(item):
                if isinstance(value, dict | list):
                    stack.append((value, (*where, i), owner))


def check_langflow(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc else None
    if not is_langflow_flow(data):
        return []
    out: list[Finding] = []
    seen: set[tuple[str | int, ...]] = set()
    for path, owner, code in _code_fields(data, ()):
        if path in seen:
            continue
        seen.add(path)
        hits = code_hits(code)
        if not hits:
            continue
        severity: Severity = "critical" if any(s == "critical" for s, _ in hits) else "medium"
        names = sorted({what for _, what in hits})
        nested = " (inside a group node)" if path.count("flow") else ""
        message = f"node {owner or path[-3]!r}{nested} runs Python that calls {', '.join(names[:5])}"
        out.append(
            finding("OWS-LF-001", src.rel, src.line(*path), message, executes="; ".join(names[:5]), severity=severity)
        )
    return out


# -- version pins --------------------------------------------------------------------------------------

_PIN = re.compile(
    r"""(?imx)
    (?:^|[\s"'\[,(])(?P<name>langflow)(?:\[[^\]]*\])?\s*(?:["']\s*)?
    (?: (?P<op>===|==|<=|<|~=|=|\^|~)\s*["']?\s*v?(?P<v1>\d+(?:\.\d+){0,2})   # langflow==1.2.0, = "^1.2"
      | =\s*\{[^}\n]*version\s*=\s*["'](?P<op2>==|<=|<|~=|=|\^|~)?\s*v?(?P<v2>\d+(?:\.\d+){0,2}) # {version = "1.2.0"}
      | =\s*["'](?P<v3>\d+(?:\.\d+){0,2})["']                                     # poetry exact: = "1.2.0"
    )"""
)
_LOCK = re.compile(r'(?im)^\s*name\s*=\s*"langflow"\s*\n\s*version\s*=\s*"(?P<v>\d+(?:\.\d+){0,2})"')
_PIPFILE_LOCK = re.compile(r'(?is)"langflow"\s*:\s*\{[^}]*?"version"\s*:\s*"==(?P<v>\d+(?:\.\d+){0,2})"')
_IMAGE = re.compile(r"(?im)\blangflow(?:ai)?/langflow(?:-[\w]+)?:v?(?P<v>\d+(?:\.\d+){0,2})")
_UPPER_RANGE = re.compile(r"(?i)\blangflow(?:\[[^\]]*\])?[\s\d.,>=~!^*]*?<\s*=?\s*v?(?P<v>\d+(?:\.\d+){0,2})")


def _version(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def _highest_allowed(op: str, version: tuple[int, ...]) -> tuple[int, ...] | None:
    """The highest version a constraint lets a resolver pick (None: no upper bound)."""
    if op in ("==", "===", "=", ""):
        return version
    if op == "<=":
        return version
    if op == "<":
        return (version[0], version[1], version[2] - 1) if version[2] else (version[0], version[1] - 1, 999)
    if op in ("~=", "~"):
        return (version[0], version[1], 999)
    return None


def _vulnerable(highest: tuple[int, ...]) -> list[dict[str, Any]]:
    return [a for a in load("langflow")["advisories"] if highest < _version(str(a["fixed"]))]


def check_langflow_pins(src: ScanFile) -> list[Finding]:
    starts = [0] + [m.end() for m in re.finditer("\n", src.text)]
    found: dict[int, tuple[str, list[dict[str, Any]]]] = {}

    def note(offset: int, shown: str, highest: tuple[int, ...] | None) -> None:
        advisories = _vulnerable(highest) if highest is not None else []
        if advisories:
            found.setdefault(bisect.bisect_right(starts, offset), (shown.strip(), advisories))

    for m in _PIN.finditer(src.text):
        op = m.group("op") or m.group("op2") or ""
        raw = m.group("v1") or m.group("v2") or m.group("v3")
        note(m.start("name"), m.group(), _highest_allowed(op, _version(raw)))
    for pattern in (_LOCK, _PIPFILE_LOCK, _IMAGE):
        for m in pattern.finditer(src.text):
            note(m.start(), m.group(), _version(m.group("v")))
    for m in _UPPER_RANGE.finditer(src.text):
        note(m.start(), m.group(), _highest_allowed("<" if "<=" not in m.group() else "<=", _version(m.group("v"))))
    out = []
    for line, (shown, advisories) in sorted(found.items()):
        ids = ", ".join(str(a["id"]) for a in advisories)
        message = f"{shown[:80]} allows Langflow versions affected by {ids}: {advisories[0]['what']}"
        ids_found = [str(a["id"]) for a in advisories]
        out.append(finding("OWS-LF-002", src.rel, line, message, executes=shown[:120], advisories_found=ids_found))
    return out
