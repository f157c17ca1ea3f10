"""Dev container definitions (`.devcontainer.json`, `.devcontainer/**/devcontainer.json`).

`initializeCommand` runs on the host when the container is built: critical if it runs inline or
downloaded code, high otherwise. Lifecycle commands run inside the container: low for an ordinary
install step, high for download-and-execute, critical when the container also reaches the host (a
host mount of `/`, a home folder, `~/.ssh`/`~/.aws`-style credentials or the Docker socket, privileged
mode, `SYS_ADMIN`), since code in such a container is code on the host; for a compose-based dev container
the same is read from the services of its `dockerComposeFile`. VS Code settings under
`customizations.vscode.settings` are judged as `.vscode/settings.json` is (capped at high unless the
container reaches the host). Capabilities and security
options that loosen the sandbox are high (`SYS_PTRACE` with `seccomp=unconfined`, which debuggers need
and VS Code's own Go and C++ templates set, is low). Capabilities that act only inside the container's own
namespaces are low: `SYS_PTRACE` (debuggers) and `NET_ADMIN`/`NET_RAW` (the container's own interfaces
and firewall: sandboxes that lock down their egress with iptables, as Claude Code's reference dev container
does, need them); they reach the host's network only with `--network=host`, which is reported on its own.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

from owstack.security.config_scan import vscode
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, env_data, env_risk, index_variable
from owstack.security.config_scan.scripts import local_risk
from owstack.security.config_scan.textfiles import installer_prefixes
from owstack.security.findings import Finding, Severity, finding

_LIFECYCLE = ("onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand", "postAttachCommand")
_SECRET_DIRS = (
    r"\.ssh|\.aws|\.azure|\.kube|\.gnupg|\.docker|\.config/gcloud|\.config/gh|\.netrc|\.git-credentials|\.npmrc"
    r"|\.pypirc|\.claude|\.codex"
)
_HOST_SOURCE = re.compile(
    r"^(?:/|/etc(?:/.*)?|/root(?:/.*)?|/home(?:/[^/]+)?/?|/Users(?:/[^/]+)?/?|/var/run/docker\.sock|/run/docker\.sock"
    r"|//\./pipe/docker_engine|/proc(?:/.*)?|/sys(?:/.*)?|/dev(?:/.*)?|/var/lib/docker(?:/.*)?|/boot(?:/.*)?"
    r"|~/?|\$\{localEnv:(?:HOME|USERPROFILE)\}(?:\$\{localEnv:(?:HOME|USERPROFILE)\})?/?|\$HOME/?|\$\{HOME\}/?"
    r"|%USERPROFILE%\\?|[A-Za-z]:[\\/]?|[A-Za-z]:[\\/]Users(?:[\\/][^\\/]*)?[\\/]?)$"
    r"|(?:^|[/\\])(?:" + _SECRET_DIRS + r")(?:[/\\].*)?$",
)
_DANGEROUS_CAPS = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "SYS_BOOT"})
#: capabilities scoped to the container's own namespaces: debuggers, and a container's own firewall and routes
_CONTAINED_CAPS = frozenset({"SYS_PTRACE", "NET_ADMIN", "NET_RAW"})
_HOST_NAMESPACES = re.compile(r"^--(?:pid|ipc|network|net|uts|userns|cgroupns)=host$", re.I)


def check_devcontainer(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc else None
    if not isinstance(data, dict):
        return []
    host = _host_access(src, data) + _compose_access(src, data)
    reaches_host = any(f.severity == "critical" for f in host)
    out = list(host)
    if data.get("initializeCommand"):
        danger = _worst_risk(data["initializeCommand"], src=src)
        out.append(
            finding(
                "OWS-DC-001",
                src.rel,
                src.line("initializeCommand"),
                "`initializeCommand` runs on the host machine",
                executes=_lifecycle(data["initializeCommand"]),
                severity="critical" if danger == "critical" else "high",
            )
        )
    for key in _LIFECYCLE:
        if data.get(key):
            danger = _worst_risk(data[key], installers_ok=True, src=src)
            severity: Severity = "critical" if reaches_host else "high" if danger == "critical" else "info"
            where = "in a container that reaches the host" if reaches_host else "in the container"
            message = f"`{key}` runs automatically {where}"
            executes = _lifecycle(data[key])
            out.append(finding("OWS-DC-002", src.rel, src.line(key), message, executes=executes, severity=severity))
    for f in vscode.check_settings(src, ("customizations", "vscode", "settings")):
        # VS Code settings the dev container applies: the same settings, run inside the container
        severity = f.severity if reaches_host or f.severity != "critical" else "high"
        out.append(dataclasses.replace(f, severity=severity, message=f"{f.message} (in the dev container)"))
    out += vscode.check_extensions(src, ("customizations", "vscode"), "extensions")
    out += _features(src, data.get("features"), reaches_host)
    for section in ("containerEnv", "remoteEnv"):
        env = data.get(section)
        for key, value in env.items() if isinstance(env, dict) else []:
            why = _container_env(key, value)
            if why is not None:  # ordinary env inside a container is fine
                line = src.line(section, key)
                message = f"`{section}.{key}`: {why}"
                out.append(finding("OWS-DC-003", src.rel, line, message, executes=f"{key}={value}", severity="high"))
    return out


#: libraries of the image itself: `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2` is an allocator, not a payload
_SYSTEM_PATH = re.compile(r"^(?:/usr/|/lib|/opt/conda/|/opt/homebrew/)")


def _container_env(key: str, value: Any) -> str | None:
    """Why a `containerEnv`/`remoteEnv` variable matters, or None: one that runs code whatever its value (critical
    by `env_risk`: `NODE_OPTIONS=--require ...`), one that loads code into every process of the container
    (`LD_PRELOAD`, `BASH_ENV`, `PYTHONSTARTUP`: `preload` in `env_vars.yaml`) from outside the image's system
    folders, or a package index over plain http (`PIP_INDEX_URL`: every install in the container fetches from it)."""
    found = env_risk(key, value)
    if found is not None and found.severity == "critical":
        return found.message
    text = "" if value is None else str(value).strip()
    preload = {str(v).upper() for v in env_data()["preload"]}
    if key.upper() in preload and text and not all(_SYSTEM_PATH.match(p) for p in re.split(r"[:\s]+", text) if p):
        return f"`{key}` loads {text!r} into every process of the container"
    index = index_variable(key, value)
    if index is not None and index[0] == "high":
        return f"every pip, uv or npm install in the container: {index[1]}"
    return None


#: publishers of the features the dev container spec and its community index list (containers.dev/features)
_FEATURE_PUBLISHERS = re.compile(
    r"^(?:ghcr\.io/devcontainers(?:-extra|-contrib|-community)?/|mcr\.microsoft\.com/devcontainers/)", re.I
)


def _features(src: ScanFile, features: Any, reaches_host: bool) -> list[Finding]:
    """`features`: each one's `install.sh` runs as root in the container while it is built. A feature fetched as a
    tarball from a URL (high: code from wherever the URL points, at whatever it serves today; critical when the
    container reaches the host), a local feature folder whose `install.sh` downloads and runs code (high), one from
    an OCI registry or GitHub release of another publisher (low: a published artifact, pinned or not)."""
    out: list[Finding] = []
    for ref in features if isinstance(features, dict) else []:
        ref = str(ref)
        line = src.line("features", ref)
        hot: Severity = "critical" if reaches_host else "high"
        if re.match(r"^https?://", ref, re.I):
            message = f"feature {ref!r} is a tarball fetched from a URL: its install.sh runs as root at build"
            out.append(finding("OWS-DC-004", src.rel, line, message, executes=ref, severity=hot))
        elif ref.startswith(("./", "../")):
            script = _local_feature_script(src, ref)
            if script is not None:
                rel, number, why = script
                message = f"the local feature {ref!r} runs {rel} as root at build, whose line {number} {why}"
                out.append(finding("OWS-DC-004", src.rel, line, message, executes=rel, severity=hot))
        elif not _FEATURE_PUBLISHERS.match(ref):
            message = f"feature {ref!r} of a third-party publisher: its install.sh runs as root at build"
            out.append(finding("OWS-DC-004", src.rel, line, message, executes=ref, severity="low"))
    return out


def _local_feature_script(src: ScanFile, ref: str) -> tuple[str, int, str] | None:
    root = src.root.resolve()
    folder = (src.path.parent / ref).resolve()
    script = folder / "install.sh"
    if not folder.is_relative_to(root) or not script.is_file() or script.stat().st_size > 1_000_000:
        return None
    text = script.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        danger = risk(stripped)
        if danger.severity != "critical" or not danger.why.startswith(("downloads", "sends", "installs")):
            continue
        urls = re.findall(r"https?://[^\s'\"|;&)]+", stripped)
        if danger.why.startswith("downloads") and urls and all(_known_installer(u) for u in urls):
            continue  # a tool's official installer, as dev container lifecycle commands use them
        return script.relative_to(root).as_posix(), number, danger.why
    return None


def check_gitpod(src: ScanFile) -> list[Finding]:
    """`.gitpod.yml`: each task's `before`, `init` and `command` run when a workspace opens on the repository (in
    Gitpod's machine, with the user's git credentials): judged as dev container lifecycle commands (OWS-DC-002:
    info; high for download-and-run from anywhere but a tool's official installer)."""
    try:
        data = yaml.safe_load(src.text)
    except yaml.YAMLError as exc:
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed YAML ({exc})")]
    tasks = data.get("tasks") if isinstance(data, dict) else None
    out: list[Finding] = []
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        for key in ("before", "init", "command"):
            command = task.get(key) if isinstance(task, dict) else None
            if not isinstance(command, str) or not command.strip():
                continue
            lines = {str(n): text for n, text in enumerate(command.splitlines()) if text.strip()}
            danger = _worst_risk(lines or command, True, src)
            severity: Severity = "high" if danger == "critical" else "info"
            message = f"task {i} `{key}` runs when a Gitpod workspace opens on the repository"
            line = src.line("tasks", key) if i == 0 else src.line("tasks", f"{key}:")
            out.append(finding("OWS-DC-002", src.rel, line, message, executes=command_line(command), severity=severity))
    return out


def check_openhands(src: ScanFile) -> list[Finding]:
    """`.openhands/setup.sh` (run at the start of every OpenHands session, in its sandbox with the repository and
    the user's tokens) and `.openhands/pre-commit.sh`: judged as dev container lifecycle commands (info; high for a
    line that downloads and runs code from anywhere but a tool's official installer, or sends credentials)."""
    name = src.rel.rsplit("/", 1)[-1]
    when = (
        "at the start of every OpenHands session" if name == "setup.sh" else "as the pre-commit hook OpenHands installs"
    )
    out: list[Finding] = []
    for number, line in enumerate(src.text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        danger = risk(stripped)
        if danger.severity != "critical" or not danger.why.startswith(("downloads", "sends", "installs")):
            continue
        urls = re.findall(r"https?://[^\s'\"|;&)]+", stripped)
        if danger.why.startswith("downloads") and urls and all(_known_installer(u) for u in urls):
            continue
        message = f"OpenHands runs this {when}: line {number} {danger.why}"
        out.append(finding("OWS-DC-002", src.rel, number, message, executes=command_line(stripped), severity="high"))
    if not out:
        message = f"OpenHands runs this script {when}, in its sandbox"
        out.append(finding("OWS-DC-002", src.rel, 1, message, executes=src.rel, severity="info"))
    return out


def _host_access(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []

    def add(path: tuple[str | int, ...], message: str, severity: Severity) -> None:
        out.append(finding("OWS-DC-003", src.rel, src.line(*path), message, severity=severity))

    if data.get("privileged") is True:
        add(("privileged",), "the container is privileged (it can take over the host)", "critical")
    caps = [str(c).upper().removeprefix("CAP_") for c in data.get("capAdd") or [] if isinstance(c, str)]
    opts = [str(o) for o in data.get("securityOpt") or [] if isinstance(o, str)]
    run_args = [str(a) for a in data.get("runArgs") or [] if isinstance(a, str | int)]
    caps += _flag_values(run_args, "--cap-add")
    opts += _flag_values(run_args, "--security-opt")
    bad_caps = sorted({c for c in caps if c in _DANGEROUS_CAPS})
    caps_at = ("capAdd",) if "capAdd" in data else ("runArgs",)
    if bad_caps:
        add(caps_at, f"adds the capabilities {', '.join(bad_caps)}", "critical" if "ALL" in bad_caps else "high")
    elif caps:
        contained = set(caps) <= _CONTAINED_CAPS  # debuggers; a container's own network namespace
        add(caps_at, f"adds the capabilities {', '.join(sorted(set(caps)))}", "low" if contained else "medium")
    for opt in opts:
        if "unconfined" in opt or "label=disable" in opt or "no-new-privileges=false" in opt:
            severity: Severity = "low" if set(caps) <= {"SYS_PTRACE"} and "seccomp" in opt else "high"
            add(("securityOpt",), f"security option {opt!r} removes a sandbox layer", severity)
    for i, arg in enumerate(run_args):
        if arg == "--privileged" or re.fullmatch(r"--privileged=(?:true|1|yes)", arg, re.I):
            add(("runArgs", i), "`runArgs` makes the container privileged", "critical")
        elif _HOST_NAMESPACES.match(arg):
            add(("runArgs", i), f"`runArgs` shares a host namespace: {arg}", "high")
        elif arg.startswith(("--device", "--gpus")) and "/dev/" in arg and "dri" not in arg:
            add(("runArgs", i), f"`runArgs` passes a host device: {arg}", "medium")
    for i, source in _run_arg_mounts(run_args):
        if _HOST_SOURCE.search(source):
            add(("runArgs", i), f"`runArgs` mounts the host's {source!r}", "critical")
    for i, mount in enumerate(data.get("mounts") or []):
        source = _mount_source(mount)
        if source and _HOST_SOURCE.search(source):
            add(("mounts", i), f"mounts the host's {source!r} into the container", "critical")
    workspace = _mount_source(data.get("workspaceMount"))
    if workspace and _HOST_SOURCE.search(workspace):
        add(("workspaceMount",), f"`workspaceMount` mounts the host's {workspace!r}", "critical")
    return out


def _compose_access(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    """The same host access, in the Docker Compose files a compose-based dev container starts
    (`dockerComposeFile`, relative to the devcontainer.json; files outside the repository are not read)."""
    files = data.get("dockerComposeFile")
    names = (
        [files]
        if isinstance(files, str)
        else [f for f in files if isinstance(f, str)]
        if isinstance(files, list)
        else []
    )
    root = src.root
    out: list[Finding] = []
    for name in names:
        path = (src.path.parent / name).resolve()
        if not path.is_file() or not path.is_relative_to(root.resolve()):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            compose = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        services = compose.get("services") if isinstance(compose, dict) else None
        rel = path.relative_to(root.resolve()).as_posix()
        for service, spec in services.items() if isinstance(services, dict) else []:
            if isinstance(spec, dict):
                out += _service_access(ScanFile(rel, path, text), str(service), spec)
    return out


def _service_access(src: ScanFile, service: str, spec: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []

    def add(key: str, message: str, severity: Severity) -> None:
        line = src.line("services", service, key)
        out.append(finding("OWS-DC-003", src.rel, line, f"service {service!r}: {message}", severity=severity))

    if spec.get("privileged") is True:
        add("privileged", "the container is privileged (it can take over the host)", "critical")
    caps = {str(c).upper().removeprefix("CAP_") for c in spec.get("cap_add") or [] if isinstance(c, str)}
    if caps & _DANGEROUS_CAPS:
        bad = ", ".join(sorted(caps & _DANGEROUS_CAPS))
        add("cap_add", f"adds the capabilities {bad}", "critical" if "ALL" in caps else "high")
    for key in ("pid", "ipc", "network_mode", "userns_mode", "cgroup"):
        if str(spec.get(key, "")).lower() == "host":
            add(key, f"shares the host's {key.removesuffix('_mode')} namespace", "high")
    for opt in spec.get("security_opt") or []:
        if isinstance(opt, str) and ("unconfined" in opt or "label=disable" in opt or "label:disable" in opt):
            add("security_opt", f"security option {opt!r} removes a sandbox layer", "high")
    for volume in spec.get("volumes") or []:
        source = volume.get("source") if isinstance(volume, dict) else _volume_source(str(volume))
        if isinstance(source, str) and source and _HOST_SOURCE.search(source):
            add("volumes", f"mounts the host's {source!r} into the container", "critical")
    return out


def _flag_values(args: list[str], flag: str) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            out.append(args[i + 1].upper() if flag == "--cap-add" else args[i + 1])
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
            out.append(value.upper() if flag == "--cap-add" else value)
    return out


def _run_arg_mounts(args: list[str]) -> list[tuple[int, str]]:
    out = []
    for i, arg in enumerate(args):
        value = None
        if arg in ("-v", "--volume", "--mount") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(("-v", "--volume=", "--mount=")) and arg not in ("-v", "--volume"):
            value = arg.split("=", 1)[1] if "=" in arg and not arg.startswith("-v") else arg[2:]
        if value:
            source = _mount_source(value) if "source=" in value or "src=" in value else _volume_source(value)
            if source:
                out.append((i, source))
    return out


def _volume_source(volume: str) -> str:
    """The host side of `-v SOURCE:TARGET[:OPTIONS]`: a `${localEnv:HOME}` or a Windows drive (`C:\\`) holds a colon
    that is no separator."""
    m = re.match(r"^((?:[A-Za-z]:[\\/])?(?:\$\{[^}]*\}|\$(?!\{)|[^:$])*)", volume)
    return m.group(1) if m else volume.split(":")[0]


def _mount_source(mount: Any) -> str:
    if isinstance(mount, dict):
        return str(mount.get("source") or "")
    if isinstance(mount, str):
        m = re.search(r"(?:^|,)\s*(?:source|src)\s*=\s*([^,]+)", mount)
        return m.group(1).strip() if m else ""
    return ""


def _worst_risk(value: Any, installers_ok: bool = False, src: ScanFile | None = None) -> Severity:
    """The worst risk of a lifecycle command (a string, a list, or named parallel commands). With `installers_ok`
    (commands inside the container), a download piped into a shell from a tool's official install script
    (`curl -fsSL https://astral.sh/uv/install.sh | sh`, `commands.yaml` `installer_prefixes`) is how dev containers
    install tools, not a payload: low. With `src`, a command that runs a script of the repository is judged by the
    script's lines (`scripts.local_risk`: `"initializeCommand": "./.devcontainer/init.sh"` runs it on the host)."""
    commands = list(value.values()) if isinstance(value, dict) else [value]
    ranks = {"info": 0, "low": 0, "medium": 1, "high": 2, "critical": 3}

    def severity(command: Any) -> Severity:
        danger = risk(command)
        if danger.severity != "critical" and src is not None:
            danger = local_risk(src, command) or danger
        if installers_ok and danger.severity == "critical" and danger.why.startswith("downloads"):
            urls = re.findall(r"https?://[^\s'\"|;&)]+", command_line(command))
            if urls and all(_known_installer(u) for u in urls):
                return "low"
        return danger.severity

    return max((severity(c) for c in commands), key=ranks.__getitem__, default="low")


def _known_installer(url: str) -> bool:
    bare = re.sub(r"^https?://", "", url, flags=re.I).lower()
    return any(bare.startswith(str(prefix).lower()) for prefix in installer_prefixes())


def _lifecycle(value: Any) -> str:
    if isinstance(value, dict):  # parallel commands: {"name": "cmd" | [argv]}
        return "; ".join(f"{k}: {command_line(v)}" for k, v in value.items())
    return command_line(value)


def check_cursor_environment(src: ScanFile) -> list[Finding]:
    """Cursor's background-agent environment (`.cursor/environment.json`): `install` and `start` run, and each of
    `terminals` starts, in the remote machine an agent works in, with the repository and its secrets; judged as
    lifecycle commands of a dev container (info; high for download-and-run)."""
    data = src.doc.value if src.doc else None
    if not isinstance(data, dict):
        return []
    commands: list[tuple[tuple[str | int, ...], Any]] = [
        (("install",), data.get("install")),
        (("start",), data.get("start")),
    ]
    terminals = data.get("terminals")
    for i, terminal in enumerate(terminals if isinstance(terminals, list) else []):
        if isinstance(terminal, dict):
            commands.append((("terminals", i, "command"), terminal.get("command")))
    out: list[Finding] = []
    for path, command in commands:
        if isinstance(command, str) and command.strip():
            severity: Severity = "high" if risk(command).severity == "critical" else "info"
            message = f"`{'.'.join(map(str, path))}` runs when a Cursor background agent starts on the repository"
            out.append(
                finding(
                    "OWS-DC-002", src.rel, src.line(*path), message, executes=command_line(command), severity=severity
                )
            )
    return out
