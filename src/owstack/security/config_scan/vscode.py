"""VS Code workspace files (`.vscode/tasks.json`, `.vscode/settings.json`, `*.code-workspace`) and dev
container definitions (`.devcontainer.json`, `.devcontainer/**/devcontainer.json`)."""

from __future__ import annotations

import re
from typing import Any

from owstack.security.config_scan import mcp
from owstack.security.config_scan.common import EXEC_ENV, ScanFile, command_line
from owstack.security.findings import Finding, finding

#: settings whose value is a program, its arguments or its environment (VS Code "restricted settings")
_EXEC_SETTING = re.compile(
    r"^(?:terminal\.integrated\.(?:shell|shellArgs|profiles|automationProfile|defaultProfile|env)\..+"
    r"|terminal\.integrated\.(?:shell|shellArgs)"
    r"|python\.(?:defaultInterpreterPath|pythonPath|condaPath|poetryPath|pipenvPath|interpreterPath)"
    r"|git\.path|npm\.binPath|eslint\.(?:runtime|nodePath|execArgv)|typescript\.(?:tsdk|tsserver\.nodePath)"
    r"|go\.(?:goroot|alternateTools|toolsGopath)|rust-analyzer\.(?:server\.path|.*overrideCommand)"
    r"|clangd\.path|php\.validate\.executablePath|deno\.path|ruff\.(?:path|interpreter)|prettier\.prettierPath"
    r"|jest\.jestCommandLine|cmake\.cmakePath|C_Cpp\.default\.compilerPath|java\.jdt\.ls\.java\.home"
    r"|.+\.(?:executablePath|exePath|serverPath|binaryPath|commandLine|runtimeExecutable))$"
)
_LIFECYCLE = ("onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand", "postAttachCommand")
_HOST_ARGS = re.compile(
    r"^(?:--privileged|--pid=host|--ipc=host|--network=host|--net=host|--uts=host|--userns=host"
    r"|--cap-add=(?:ALL|SYS_ADMIN|SYS_PTRACE))$",
    re.I,
)
_HOST_MOUNT = re.compile(
    r"(?:^|[\s,=])(?:/|/etc|/root|/home|/var/run/docker\.sock|/run/docker\.sock|"
    r"//\./pipe/docker_engine)(?:[\s,:]|$)"
)


def check_tasks(src: ScanFile, base: tuple[str | int, ...] = ()) -> list[Finding]:
    node: Any = src.doc.value if src.doc else None
    for key in base:
        node = node.get(key) if isinstance(node, dict) else None
    tasks = node.get("tasks") if isinstance(node, dict) else None
    out: list[Finding] = []
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(task, dict):
            continue
        run_on = (task.get("runOptions") or {}).get("runOn") if isinstance(task.get("runOptions"), dict) else None
        if run_on == "folderOpen":
            label = task.get("label", f"#{i}")
            out.append(
                finding(
                    "OWS-VSC-001",
                    src.rel,
                    src.line(*base, "tasks", i, "runOptions", "runOn"),
                    f"task {label!r} runs when the folder is opened",
                    executes=command_line(task.get("command"), task.get("args")),
                )
            )
    return out


def check_settings(src: ScanFile, base: tuple[str | int, ...] = ()) -> list[Finding]:
    node: Any = src.doc.value if src.doc else None
    for key in base:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return []
    out: list[Finding] = []
    for key, value in node.items():
        line = src.line(*base, key)
        if key.startswith("chat.tools.") and key.endswith("autoApprove") and value not in (False, None, {}, []):
            out.append(
                finding(
                    "OWS-VSC-003",
                    src.rel,
                    line,
                    f"`{key}` lets the agent run tools without asking",
                    executes=f"{key}: {value}",
                )
            )
        elif (key == "task.allowAutomaticTasks" and value == "on") or (
            key == "security.workspace.trust.enabled" and value is False
        ):
            out.append(finding("OWS-VSC-003", src.rel, line, f"`{key}: {value}` removes a prompt"))
        elif _EXEC_SETTING.match(key) and value not in (None, "", {}, []):
            out += _exec_setting(src, line, key, value)
    if isinstance(node.get("mcp"), dict):
        out += mcp.check(ScanFile(src.rel, src.path, src.text, src.doc))
    return out


def _exec_setting(src: ScanFile, line: int, key: str, value: Any) -> list[Finding]:
    if key.startswith("terminal.integrated.env.") and isinstance(value, dict):
        risky = {k: v for k, v in value.items() if k.upper() in EXEC_ENV}
        if not risky:
            return []
        return [
            finding(
                "OWS-VSC-002",
                src.rel,
                line,
                f"`{key}` sets {', '.join(risky)} for every terminal",
                executes=", ".join(f"{k}={v}" for k, v in risky.items()),
            )
        ]
    shown = value if isinstance(value, str) else str(value)
    return [
        finding(
            "OWS-VSC-002",
            src.rel,
            line,
            f"`{key}` makes VS Code or an extension run a program the repository chooses",
            executes=command_line(shown),
        )
    ]


def check_devcontainer(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc else None
    if not isinstance(data, dict):
        return []
    out: list[Finding] = []
    if data.get("initializeCommand"):
        out.append(
            finding(
                "OWS-DC-001",
                src.rel,
                src.line("initializeCommand"),
                "`initializeCommand` runs on the host machine",
                executes=_lifecycle(data["initializeCommand"]),
            )
        )
    for key in _LIFECYCLE:
        if data.get(key):
            out.append(
                finding(
                    "OWS-DC-002",
                    src.rel,
                    src.line(key),
                    f"`{key}` runs automatically in the container",
                    executes=_lifecycle(data[key]),
                )
            )
    if data.get("privileged") is True:
        out.append(finding("OWS-DC-003", src.rel, src.line("privileged"), "the container is privileged"))
    run_args = data.get("runArgs")
    for i, arg in enumerate(run_args if isinstance(run_args, list) else []):
        if isinstance(arg, str) and (
            _HOST_ARGS.match(arg) or (_HOST_MOUNT.search(arg) and arg.startswith(("-v", "--")))
        ):
            out.append(finding("OWS-DC-003", src.rel, src.line("runArgs", i), f"`runArgs` gives the host away: {arg}"))
    mounts = data.get("mounts")
    for i, m in enumerate(mounts if isinstance(mounts, list) else []):
        text = m if isinstance(m, str) else f"source={m.get('source', '')}" if isinstance(m, dict) else ""
        if "docker.sock" in text or "docker_engine" in text or re.search(r"source=/(?:,|$)", text):
            out.append(finding("OWS-DC-003", src.rel, src.line("mounts", i), f"mount gives the host away: {text}"))
    return out


def _lifecycle(value: Any) -> str:
    if isinstance(value, dict):  # parallel commands: {"name": "cmd" | [argv]}
        return "; ".join(f"{k}: {command_line(v)}" for k, v in value.items())
    return command_line(value)
