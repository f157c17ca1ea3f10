"""`conftest.py`: pytest imports it before it runs a single test, on every `pytest` an agent or a developer runs,
and VS Code's Python extension runs pytest's discovery (which imports every `conftest.py` it meets) as soon as a
folder whose settings turn pytest on (`"python.testing.pytestEnabled": true` in `.vscode/settings.json`) is
opened and trusted. A `conftest.py` that downloads and runs code, runs an encoded payload or posts the environment
is high (OWS-TEST-001); critical when the workspace settings above it turn on discovery, since then opening the
folder runs it. Fixtures that download test data or start containers are what test suites do and are not reported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from owstack.security.config_scan.classify import SKIP_DIRS
from owstack.security.config_scan.common import ScanFile
from owstack.security.config_scan.scripts import code_risk, module_risk
from owstack.security.findings import Finding, Severity, finding
from owstack.security.jsonc import JSONCError, parse

_DISCOVERY = ("python.testing.pytestEnabled",)
#: test discovery imports test modules too (pytest's and unittest's default patterns)
_MODULE_DISCOVERY = ("python.testing.pytestEnabled", "python.testing.unittestEnabled")
_TEST_MODULE = re.compile(r"^(?:test_.*|.*_test|test)\.py$")
MAX_MODULES = 5000


def check_conftest(src: ScanFile) -> list[Finding]:
    found = code_risk(src.text, python=True)
    if found is None:
        return []
    number, danger = found
    settings = _discovery_on(src.path.absolute().parent, src.root.absolute())
    severity: Severity = "critical" if settings else "high"
    message = f"pytest imports this file before any test runs: it {danger.why}"
    if settings:
        message += f"; {settings} turns on VS Code's test discovery, which imports it when the folder is opened"
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-TEST-001", src.rel, number, message, executes=line, severity=severity)]


def _discovery_on(folder: Path, root: Path) -> str | None:
    """The `.vscode/settings.json` (of this folder or one above it, up to the scan root) that turns pytest on."""
    current = folder
    while True:
        if _turns_on(current / ".vscode" / "settings.json"):
            return (current / ".vscode" / "settings.json").relative_to(root).as_posix()
        if current == root or current.parent == current or root not in current.parents:
            return None
        current = current.parent


def _turns_on(settings: Path) -> bool:
    try:
        data = parse(settings.read_text(encoding="utf-8")).value
    except (OSError, UnicodeDecodeError, JSONCError):
        return False
    return isinstance(data, dict) and any(data.get(key) is True for key in _DISCOVERY)


def check_discovery(src: ScanFile, settings: dict[str, object]) -> list[Finding]:
    """A workspace `.vscode/settings.json` that turns test discovery on: discovery imports every test module of the
    folder when it is opened, so a test module that runs downloaded or encoded code at import is critical
    (`conftest.py` files are reported by their own check)."""
    keys = [k for k in _MODULE_DISCOVERY if settings.get(k) is True]
    if not keys or src.path.parent.name != ".vscode":
        return []
    workspace = src.path.absolute().parent.parent
    root = src.root.absolute()
    out: list[Finding] = []
    count = 0
    for folder, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not _TEST_MODULE.match(name):
                continue
            count += 1
            if count > MAX_MODULES:
                return out
            path = Path(folder) / name
            try:
                if path.stat().st_size > 1_000_000:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            found = code_risk(text, python=True)
            if found is None:
                continue
            number, danger = found
            rel = path.relative_to(root).as_posix()
            message = (
                f"{src.rel} sets `{keys[0]}`: VS Code's test discovery imports this module when the folder is opened,"
                f" and it {danger.why}"
            )
            line = text.splitlines()[number - 1].strip()[:200]
            out.append(finding("OWS-TEST-001", rel, number, message, executes=line, severity="critical"))
    return out


_ADDOPTS = re.compile(r"^[ \t]*addopts[ \t]*[=:][ \t]*(.*)$", re.M)


def check_pytest_plugins(src: ScanFile) -> list[Finding]:
    """`addopts = -p NAME` (pytest.ini, tox.ini, setup.cfg, pyproject.toml): pytest imports the plugin module NAME at
    every start, before conftest.py; a module of the repository whose code is dangerous is high (critical when the
    workspace settings turn pytest discovery on)."""
    out: list[Finding] = []
    for m in _ADDOPTS.finditer(src.text):
        value = m.group(1)
        rest = src.text[m.end() :].split("\n")[1:]
        for more in rest:  # continued on indented lines (INI), or a TOML list over lines
            if (more[:1] in (" ", "\t") and more.strip()) or (value.count("[") > value.count("]")):
                value += " " + more.strip()
            else:
                break
        words = re.findall(r"[^\s\"',\[\]]+", value)
        modules = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-p"]
        modules += [w[2:] for w in words if w.startswith("-p") and len(w) > 2 and w[2] != "-"]
        for module in modules:
            found = module_risk(src, module)
            if found is None:
                continue
            rel, number, danger = found
            settings = _discovery_on(src.path.absolute().parent, src.root.absolute())
            severity: Severity = "critical" if settings else "high"
            message = f"pytest imports the plugin {module!r} ({rel}) at every start: line {number} {danger.why}"
            line = src.text.count("\n", 0, m.start()) + 1
            out.append(finding("OWS-TEST-001", src.rel, line, message, executes=rel, severity=severity))
    return out
