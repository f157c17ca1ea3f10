"""JetBrains IDEs' startup tasks: run configurations the IDE runs when the project is opened.

    .idea/startup.xml        <component name="ProjectStartupSharedConfiguration"> (shared with the project)
    .idea/workspace.xml      <component name="ProjectStartupLocalConfiguration"> (when committed)

Each task names a run configuration (`<configuration id=... name=...>`, or `<task name=...>` in older IDEs), kept
in `.idea/runConfigurations/*.xml`, `.run/*.run.xml` or `workspace.xml`; a shell one holds its script text
(`SCRIPT_TEXT`) or path (`SCRIPT_PATH`). Like a VS Code task on folder open, a startup task is critical: it runs
as soon as the project is opened in a trusted IDE, with whatever the configuration runs. The files are read
with regular expressions, not an XML parser: nothing in them is expanded.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.config_scan.vscode import program_severity
from owstack.security.findings import Finding, finding

_COMPONENT = re.compile(
    r'<component\s+name="(ProjectStartup(?:Shared|Local)Configuration)"[^>]*>(.*?)</component>', re.S
)
_TASK = re.compile(r'<(?:configuration|task)\b[^>]*?\bname="([^"]*)"', re.S)
_RUN_CONFIG = re.compile(r'<configuration\b[^>]*?\bname="([^"]*)"[^>]*>(.*?)</configuration>', re.S)
_OPTION = re.compile(
    r'<option\s+name="(SCRIPT_TEXT|SCRIPT_PATH|INDEPENDENT_SCRIPT_PATH|SCRIPT_OPTIONS)"\s+value="([^"]*)"'
)


_WATCHER = re.compile(r"<TaskOptions\b[^>]*\bisEnabled=\"true\"[^>]*>(.*?)</TaskOptions>", re.S)
_WATCHER_OPTION = re.compile(r'<option\s+name="(program|arguments)"\s+value="([^"]*)"')


def check_watchers(src: ScanFile) -> list[Finding]:
    """`.idea/watcherTasks.xml`: File Watchers run their program by themselves whenever a matching file changes
    (on save, on a checkout); judged as VS Code's program settings are (`vscode.program_severity`)."""
    out: list[Finding] = []
    for task in _WATCHER.finditer(src.text):
        options = {k: html.unescape(v) for k, v in _WATCHER_OPTION.findall(task.group(1))}
        program = options.get("program", "").strip()
        if not program:
            continue
        line_text = f"{program} {options.get('arguments', '')}".strip()
        severity, why = program_severity(src, line_text)
        if severity == "low":
            continue
        line = src.text.count("\n", 0, task.start()) + 1
        message = f"a File Watcher runs by itself whenever a watched file changes: {why}"
        out.append(finding("OWS-IDEA-001", src.rel, line, message, executes=command_line(line_text), severity=severity))
    return out


def check_startup(src: ScanFile) -> list[Finding]:
    if src.rel.lower().endswith("watchertasks.xml"):
        return check_watchers(src)
    out: list[Finding] = []
    for component in _COMPONENT.finditer(src.text):
        for task in _TASK.finditer(component.group(2)):
            name = html.unescape(task.group(1))
            line = src.text.count("\n", 0, component.start(2) + task.start()) + 1
            runs = _what_runs(src, name)
            message = f"the run configuration {name!r} runs when the project is opened"
            out.append(finding("OWS-IDEA-001", src.rel, line, message, executes=runs))
    return out


def _what_runs(src: ScanFile, name: str) -> str | None:
    """What the named run configuration runs (its script text or path), if the repository holds it."""
    idea = src.path.parent
    files = [*sorted(idea.glob("runConfigurations/*.xml")), *sorted((idea.parent / ".run").glob("*.run.xml"))]
    files.append(idea / "workspace.xml")
    for file in files:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")[:5_000_000]
        except OSError:
            continue
        for config in _RUN_CONFIG.finditer(text):
            if html.unescape(config.group(1)) == name:
                options = dict(_OPTION.findall(config.group(2)))
                script = (
                    options.get("SCRIPT_TEXT") or options.get("SCRIPT_PATH") or options.get("INDEPENDENT_SCRIPT_PATH")
                )
                return command_line(html.unescape(script)) if script else f"{_relative(file, idea)}: {name}"
    return None


def _relative(file: Path, idea: Path) -> str:
    try:
        return file.relative_to(idea.parent).as_posix()
    except ValueError:
        return file.name
