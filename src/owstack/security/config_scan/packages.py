"""Package-manager and pre-commit files that agents set off with an ordinary command (`npm install`,
`yarn`, `git commit`), judged by what they fetch and run rather than by whether they run:

    package.json          lifecycle scripts run by `npm install`/`yarn`/`pnpm install` in the checkout
                          (preinstall, install, postinstall, prepare, ...): high when they download and run
                          code or run an encoded payload; a local build step (`node scripts/build.js`,
                          `husky`) is what packages do and is not reported
    .npmrc                `script-shell`, `node-options` with `--require`, `git`, `onload-script`: a program
                          every npm script or git dependency goes through (high)
    .yarnrc.yml, .yarnrc  `yarnPath`/`yarn-path` other than a release under `.yarn/releases/`: the file every
                          `yarn` command runs instead of yarn (high); plugins from outside `.yarn/plugins/`
    .pre-commit-config.yaml  `repo: local` hooks whose entry downloads and runs code (high, once
                          `pre-commit install` was run: every commit runs them); remote hooks at a branch
                          rather than a tag or commit (low)

    .pnpmfile.cjs          loaded by every `pnpm install`: high when it downloads and runs code (OWS-PKG-001)

Registries and indexes these files set (`.npmrc` `registry`, `.yarnrc.yml` `npmRegistryServer`, `uv.toml` and
`[tool.uv]` `index-url`/`[[index]]`) choose where the next install an agent runs fetches code from (OWS-PKG-004):
plain http high, another https host low (private registries are common: the finding says where code comes from);
this machine and the public registries are not reported. TLS checks turned off are medium.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import yaml

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, index_problem
from owstack.security.config_scan.envfiles import check_pixi
from owstack.security.config_scan.scripts import code_risk, local_risk
from owstack.security.findings import Finding, Severity, finding

#: scripts the package manager runs by itself on `install` in the project (npm docs, "Life Cycle Operation
#: Order"; yarn and pnpm run the same project scripts)
_LIFECYCLE = (
    "preinstall",
    "install",
    "postinstall",
    "preprepare",
    "prepare",
    "postprepare",
    "prepublish",
    "dependencies",
)
_FETCH = re.compile(r"\b(?:curl|wget|iwr|irm|invoke-webrequest|invoke-restmethod|certutil|bitsadmin)\b|https?://", re.I)
#: an encoded payload evaluated in place (`eval(atob(...))`, `Function(Buffer.from(..., 'base64'))`)
_ENCODED_EVAL = re.compile(
    r"\b(?:eval|Function|exec|execSync|spawnSync)\s*\([^)]{0,200}(?:atob|base64|fromCharCode|\\x[0-9a-f]{2})", re.I
)
#: PowerShell given its script base64-encoded (`-EncodedCommand`, `-enc`, `-e`: any prefix)
_PS_ENCODED = re.compile(
    r"\b(?:powershell|pwsh)(?:\.exe)?\b[^|;&]*\s[-/](?:e|ec|en[a-z]*)\s+['\"]?[A-Za-z0-9+/=]{8,}", re.I
)
_SUBSTITUTED_DOWNLOAD = re.compile(r"\$\(\s*(?:curl|wget|iwr|irm)\b|`\s*(?:curl|wget)\b", re.I)
_RUNS = re.compile(r"child_process|\b(?:exec|execSync|spawn|spawnSync|eval|system|popen)\b|Function\(|\.pipe\(", re.I)
_NPMRC_EXEC = {"script-shell", "git", "onload-script", "shell"}
_HOT_OPTIONS = re.compile(r"(?:^|\s)(?:--require|-r|--import|--loader|--experimental-loader)\b")
_YARN_RELEASE = re.compile(r"^(?:\./)?\.yarn/releases/yarn-[\w.+-]+\.c?js$")
_YARN_PLUGIN = re.compile(r"^(?:\./)?\.yarn/plugins/")
_MUTABLE_REV = re.compile(r"^(?:main|master|head|trunk|develop|dev|latest|stable|default|[a-z-]*branch)$", re.I)


def check_package_json(src: ScanFile) -> list[Finding]:
    """`package.json` (npm, yarn, pnpm) or `composer.json` (Composer): the scripts `install` runs."""
    data = src.doc.value if src.doc is not None else None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    hooks = check_simple_git_hooks(src, data)
    if not isinstance(scripts, dict):
        return hooks
    composer = src.rel.lower().endswith("composer.json")
    out: list[Finding] = hooks
    for name in _COMPOSER_EVENTS if composer else _LIFECYCLE:
        value = scripts.get(name)
        for i, script in enumerate(value if isinstance(value, list) else [value]):
            if not isinstance(script, str) or not script.strip():
                continue
            why = _composer_script(src, data, scripts, script) if composer else None
            if script.lstrip().startswith("@"):
                if why is None:
                    continue
            elif why is None:
                why = _fetches_and_runs(script)
            if why is None and (local := local_risk(src, script)) is not None:
                why = local.why
            if why is not None:
                tool = "composer install" if composer else "npm install"
                message = f"the `{name}` script runs on `{tool}` in the checkout: {why}"
                line = src.line("scripts", name, i) if isinstance(value, list) else src.line("scripts", name)
                out.append(finding("OWS-PKG-001", src.rel, line, message, executes=command_line(script)))
    return out


_COMPOSER_CALLBACK = re.compile(r"^\\?([A-Za-z_][\w\\]*)::\w+$")


def _composer_script(src: ScanFile, data: Any, scripts: dict[str, Any], script: str, depth: int = 0) -> str | None:
    """Why a Composer script is dangerous, for the forms a command line does not show: `@php x.php` (PHP run by
    Composer's own binary), `@other-script` (followed one level) and a PHP callback `Vendor\\Class::method` of the
    project (its file found through `autoload.psr-4`/`autoload-dev.psr-4` and read as PHP), or None."""
    text = script.strip()
    if text.startswith("@php "):
        local = local_risk(src, text[1:])
        return local.why if local is not None else None
    if text.startswith("@") and depth == 0:
        other = scripts.get(text[1:].split()[0]) if text[1:].split() else None
        for item in other if isinstance(other, list) else [other]:
            if isinstance(item, str) and (
                why := _fetches_and_runs(item) or _composer_script(src, data, scripts, item, 1)
            ):
                return f"it runs {text}, which {why}"
            if isinstance(item, str) and not item.startswith("@") and (local := local_risk(src, item)) is not None:
                return f"it runs {text}, which {local.why}"
        return None
    callback = _COMPOSER_CALLBACK.match(text)
    if callback is None or not isinstance(data, dict):
        return None
    name = callback.group(1)
    for section in ("autoload", "autoload-dev"):
        spec = data.get(section)
        psr4 = spec.get("psr-4") if isinstance(spec, dict) else None
        for prefix, folders in psr4.items() if isinstance(psr4, dict) else []:
            if not name.startswith(str(prefix)) or not str(prefix):
                continue
            rest = name[len(str(prefix)) :].replace("\\", "/") + ".php"
            for folder in folders if isinstance(folders, list) else [folders]:
                local = local_risk(src, ["php", f"{str(folder).rstrip('/')}/{rest}" if folder else rest])
                if local is not None:
                    return f"Composer calls {name} ({local.why.removeprefix('it runs ')})"
    return None


#: Composer events run by `composer install`/`update` in the project (Composer docs, "Scripts": command events)
_COMPOSER_EVENTS = (
    "pre-install-cmd",
    "post-install-cmd",
    "pre-update-cmd",
    "post-update-cmd",
    "pre-autoload-dump",
    "post-autoload-dump",
    "post-root-package-install",
    "post-create-project-cmd",
)
#: where the Gradle and Maven wrappers fetch the distribution they then run (gradlew, mvnw; IDEs importing the
#: project use the wrapper too)
_WRAPPER_HOSTS = re.compile(
    r"^https://(?:services\.gradle\.org/|downloads\.gradle(?:-dn)?\.org/|repo\.maven\.apache\.org/|repo1\.maven\.org/)"
)


def check_wrapper(src: ScanFile) -> list[Finding]:
    """`gradle/wrapper/gradle-wrapper.properties`, `.mvn/wrapper/maven-wrapper.properties`: a distribution
    fetched from another host (a mirror: medium; over plain http: high)."""
    out: list[Finding] = []
    for number, raw in enumerate(src.text.splitlines(), start=1):
        m = re.match(r"^\s*(distributionUrl|wrapperUrl)\s*[=:]\s*(\S+)", raw)
        if m is None:
            continue
        url = m.group(2).replace("\\:", ":")
        if _WRAPPER_HOSTS.match(url):
            continue
        severity: Severity = "high" if url.lower().startswith("http:") else "medium"
        message = f"`{m.group(1)}` fetches the build tool every `./gradlew`/`./mvnw` runs from {url}"
        out.append(finding("OWS-PKG-002", src.rel, number, message, executes=url, severity=severity))
    return out


def _fetches_and_runs(script: str) -> str | None:
    """Why a lifecycle script is more than a local build step, or None."""
    if _ENCODED_EVAL.search(script) or _PS_ENCODED.search(script):
        return "it evaluates an encoded payload"
    danger = risk(script)
    if danger.severity != "critical":
        return None
    if danger.why.startswith(("downloads", "installs")) or "fetches" in danger.why:
        return danger.why
    if _SUBSTITUTED_DOWNLOAD.search(script):  # `node -e "$(curl -s URL)"`: the download is the code
        return f"{danger.why}, the code being a download"
    if _FETCH.search(script) and _RUNS.search(script):  # inline code that fetches and runs
        return f"{danger.why}, fetching from the network"
    return None


def check_pnpmfile(src: ScanFile) -> list[Finding]:
    """`.pnpmfile.cjs`: pnpm loads it on every `pnpm install` in the project (its `readPackage` and `afterAllResolved`
    hooks), so its top-level code runs then: high when a line downloads and runs code or sends credentials, or
    the file fetches code and runs it (as an npm install script's, OWS-PKG-001); a `readPackage` hook that edits
    dependencies is what the file is for."""
    found = code_risk(src.text, javascript=True)
    if found is None:
        return []
    number, danger = found
    message = f"pnpm runs this file on every `pnpm install` in the checkout: line {number} {danger.why}"
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-PKG-001", src.rel, number, message, executes=line)]


def _index_finding(src: ScanFile, number: int, key: str, url: str, scoped: bool = False) -> list[Finding]:
    problem = index_problem(url, scoped)
    if problem is None:
        return []
    severity, why = problem
    message = f"`{key}`: {why}; the next install an agent runs fetches and runs them"
    return [finding("OWS-PKG-004", src.rel, number, message, executes=url.strip()[:200], severity=severity)]


def check_uv(src: ScanFile, data: Any = None, base: tuple[str, ...] = ()) -> list[Finding]:
    """`uv.toml` (or `[tool.uv]` of pyproject.toml, as `data` at `base`): `index-url`, `extra-index-url`,
    `find-links`, `[[index]]` entries (an index that is not `explicit` is searched before PyPI for every
    package), `[pip]` the same, `allow-insecure-host` (TLS off: medium)."""
    if data is None:
        try:
            data = tomllib.loads(src.text)
        except tomllib.TOMLDecodeError as exc:
            return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed TOML ({exc})")]
    out: list[Finding] = []
    for scope, at in ((data, base), (data.get("pip"), (*base, "pip"))):
        if not isinstance(scope, dict):
            continue
        for key in ("index-url", "extra-index-url", "find-links", "default-index"):
            values = scope.get(key)
            for url in values if isinstance(values, list) else [values] if isinstance(values, str) else []:
                out += _index_finding(src, src.line(*at, key), key, str(url))
        indexes = scope.get("index")
        for entry in indexes if isinstance(indexes, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str) and entry.get("explicit") is not True:
                out += _index_finding(src, src.line(*at, "index", entry["url"]), "index", entry["url"])
        hosts = scope.get("allow-insecure-host")
        if hosts:
            message = f"`allow-insecure-host` turns TLS verification off for {hosts!r}"
            line = src.line(*at, "allow-insecure-host")
            out.append(finding("OWS-PKG-004", src.rel, line, message, executes=str(hosts)[:200], severity="medium"))
    return out


def check_pyproject_build(src: ScanFile) -> list[Finding]:
    """`[build-system]` of pyproject.toml: `pip install .`, `uv sync` and `uv run` (which agents run) import the build
    backend, so an in-tree backend (`backend-path`) is code of the repository run at install, judged by its lines as
    setup.py is; a build requirement fetched from a URL or a git repository runs at install too (high, OWS-PKG-001)."""
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError:
        return []
    build = data.get("build-system")
    if not isinstance(build, dict):
        return []
    out: list[Finding] = []
    for requirement in build.get("requires") or []:
        if isinstance(requirement, str) and re.search(
            r"@\s*(?:https?://|git\+|file:)|^(?:https?://|git\+)", requirement
        ):
            message = f"the build requirement {requirement!r} is fetched from a URL and runs on `pip install .`"
            line = src.line("build-system", "requires")
            out.append(finding("OWS-PKG-001", src.rel, line, message, executes=requirement))
    backend, paths = build.get("build-backend"), build.get("backend-path")
    if isinstance(backend, str) and isinstance(paths, list):
        module = backend.split(":", 1)[0].replace(".", "/")
        for folder in (p for p in paths if isinstance(p, str)):
            for rel in (f"{folder}/{module}.py", f"{folder}/{module}/__init__.py"):
                found = local_risk(src, ["python3", rel.removeprefix("./")])
                if found is not None:
                    message = f"`pip install .` and `uv sync` import the in-tree build backend {backend!r}: {found.why}"
                    line = src.line("build-system", "build-backend")
                    out.append(finding("OWS-PKG-001", src.rel, line, message, executes=rel))
                    return out
    return out


def check_poetry_plugins(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    """`[tool.poetry.requires-plugins]`: Poetry 2 installs these plugins by itself on the next poetry command and
    loads them into poetry: one from a git repository, a URL or a path is high (OWS-PKG-001), one from PyPI is what
    the setting is for."""
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    plugins = poetry.get("requires-plugins") if isinstance(poetry, dict) else None
    out: list[Finding] = []
    for name, spec in plugins.items() if isinstance(plugins, dict) else []:
        source = next((spec.get(k) for k in ("git", "url", "path") if isinstance(spec, dict) and spec.get(k)), None)
        if source is not None:
            message = f"Poetry installs and loads the plugin {name!r} from {source!r} on the next poetry command"
            line = src.line("tool", "poetry", "requires-plugins", str(name))
            out.append(finding("OWS-PKG-001", src.rel, line, message, executes=str(source)))
    return out


def check_pyproject_uv(src: ScanFile) -> list[Finding]:
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError:
        return []
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    pixi = tool.get("pixi") if isinstance(tool, dict) else None
    out = check_uv(src, uv, ("tool", "uv")) if isinstance(uv, dict) else []
    out += check_pixi(src, pixi, ("tool", "pixi")) if isinstance(pixi, dict) else []
    return out + check_poetry_plugins(src, data)


def check_npmrc(src: ScanFile) -> list[Finding]:
    out: list[Finding] = []
    for number, raw in enumerate(src.text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = (p.strip() for p in line.partition("="))
        value = value.strip("'\"")
        key = key.lower()
        if key == "registry" or key.endswith(":registry"):
            out += _index_finding(src, number, key, value, scoped=key.startswith("@"))
        elif key == "strict-ssl" and value.lower() == "false":
            message = "`strict-ssl=false`: npm fetches packages without checking the registry's certificate"
            out.append(finding("OWS-PKG-004", src.rel, number, message, executes=line, severity="medium"))
        elif key in _NPMRC_EXEC and value:
            message = f"`{key}` makes npm run {value!r} for every script or git dependency"
            out.append(finding("OWS-PKG-002", src.rel, number, message, executes=command_line(value)))
        elif key == "node-options" and _HOT_OPTIONS.search(value):
            message = "`node-options` loads a module into every npm script's Node process"
            out.append(finding("OWS-PKG-002", src.rel, number, message, executes=value))
    return out


def check_yarnrc(src: ScanFile) -> list[Finding]:
    """`.yarnrc.yml` (Yarn 2+) or `.yarnrc` (Yarn 1, `yarn-path "..."`)."""
    if src.rel.lower().endswith((".yml", ".yaml")):
        try:
            data: Any = yaml.safe_load(src.text)
        except yaml.YAMLError as exc:
            return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed YAML ({exc})")]
    else:
        data = {}
        for raw in src.text.splitlines():
            m = re.match(r"^\s*(yarn-path|yarnPath|registry|strict-ssl)\s+[\"']?([^\"'\s]+)", raw)
            if m and m.group(1) in ("yarn-path", "yarnPath"):
                data["yarnPath"] = m.group(2)
            elif m and m.group(1) == "registry":
                data["registry"] = m.group(2)
            elif m and m.group(2) == "false":
                data["strict-ssl"] = False
    if not isinstance(data, dict):
        return []
    out: list[Finding] = []
    server = data.get("npmRegistryServer") or data.get("registry")
    if isinstance(server, str):
        key = "npmRegistryServer" if "npmRegistryServer" in data else "registry"
        out += _index_finding(src, src.line(key), key, server)
    scopes = data.get("npmScopes")  # per-scope registries: `npmScopes: {acme: {npmRegistryServer: ...}}`
    for scope, spec in scopes.items() if isinstance(scopes, dict) else []:
        url = spec.get("npmRegistryServer") if isinstance(spec, dict) else None
        if isinstance(url, str):
            line = src.line("npmScopes", str(scope), "npmRegistryServer")
            out += _index_finding(src, line, f"npmScopes.{scope}.npmRegistryServer", url, scoped=True)
    if data.get("enableStrictSsl") is False or data.get("strict-ssl") is False:
        message = "yarn fetches packages without checking the registry's certificate"
        out.append(finding("OWS-PKG-004", src.rel, src.line("enableStrictSsl"), message, severity="medium"))
    path = data.get("yarnPath")
    if isinstance(path, str) and path.strip() and not _YARN_RELEASE.match(path.strip()):
        message = f"every `yarn` command runs {path!r} instead of a yarn release"
        line = src.line("yarnPath") if "yarnPath" in src.text else src.line("yarn-path")
        out.append(finding("OWS-PKG-002", src.rel, line, message, executes=path))
    for i, plugin in enumerate(data.get("plugins") or []):
        where = plugin.get("path") if isinstance(plugin, dict) else plugin
        if isinstance(where, str) and not _YARN_PLUGIN.match(where.strip()):
            message = f"yarn loads the plugin {where!r} from outside .yarn/plugins on every command"
            line = src.line("plugins") + i
            out.append(finding("OWS-PKG-002", src.rel, line, message, executes=where, severity="medium"))
    return out


def check_pre_commit(src: ScanFile) -> list[Finding]:
    try:
        data: Any = yaml.safe_load(src.text)
    except yaml.YAMLError as exc:
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed YAML ({exc})")]
    repos = data.get("repos") if isinstance(data, dict) else None
    out: list[Finding] = []
    for repo in repos if isinstance(repos, list) else []:
        if not isinstance(repo, dict):
            continue
        url, rev = str(repo.get("repo", "")), str(repo.get("rev", ""))
        if url == "local":
            for hook in repo.get("hooks") or []:
                if isinstance(hook, dict) and isinstance(hook.get("entry"), str):
                    out += _local_hook(src, hook)
        elif url != "meta" and _MUTABLE_REV.match(rev):
            line = _line_of(src, f"rev: {rev}", url)
            message = f"hooks from {url} at the branch {rev!r}: whatever that branch holds runs at the next commit"
            out.append(finding("OWS-PKG-003", src.rel, line, message, executes=f"{url}@{rev}", severity="low"))
    return out


def check_lefthook(src: ScanFile) -> list[Finding]:
    """`lefthook.yml`: the `run` of every command and script of every hook (lefthook's npm package installs the hooks
    on `npm install`; every commit, push or checkout then runs them): high when it downloads and runs code, as a
    local pre-commit hook's (OWS-PKG-003)."""
    try:
        data: Any = yaml.safe_load(src.text)
    except yaml.YAMLError as exc:
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed YAML ({exc})")]
    out: list[Finding] = []
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack and len(out) < 100:
        node, hook = stack.pop()
        for key, value in node.items() if isinstance(node, dict) else []:
            if key == "run" and isinstance(value, str):
                danger = risk(value)
                if danger.severity == "critical" and _FETCH.search(value):
                    message = f"lefthook runs this in the `{hook or '?'}` git hook: {danger.why}"
                    line = _line_of(src, value.strip()[:40], "run:")
                    out.append(
                        finding("OWS-PKG-003", src.rel, line, message, executes=command_line(value), severity="high")
                    )
            elif isinstance(value, dict):
                stack.append((value, hook or str(key)))
    return out


def check_simple_git_hooks(src: ScanFile, data: Any) -> list[Finding]:
    """package.json `simple-git-hooks` (installed by its postinstall): hook commands that download and run code."""
    hooks = data.get("simple-git-hooks") if isinstance(data, dict) else None
    out: list[Finding] = []
    for hook, command in hooks.items() if isinstance(hooks, dict) else []:
        if isinstance(command, str) and risk(command).severity == "critical" and _FETCH.search(command):
            message = f"simple-git-hooks runs this in the `{hook}` git hook: {risk(command).why}"
            line = src.line("simple-git-hooks", hook)
            out.append(finding("OWS-PKG-003", src.rel, line, message, executes=command_line(command), severity="high"))
    return out


def _local_hook(src: ScanFile, hook: dict[str, Any]) -> list[Finding]:
    given = hook.get("args")
    args: list[Any] = given if isinstance(given, list) else []
    line_text = " ".join([hook["entry"], *map(str, args)])
    danger = risk(line_text)
    if danger.severity != "critical" or not _FETCH.search(line_text):
        return []
    severity: Severity = "high"
    name = str(hook.get("id", "?"))
    message = f"the local hook {name!r} runs at every commit once `pre-commit install` was run: {danger.why}"
    line = _line_of(src, str(hook.get("id", "")), "entry")
    return [finding("OWS-PKG-003", src.rel, line, message, executes=command_line(line_text), severity=severity)]


def _line_of(src: ScanFile, *needles: str) -> int:
    for needle in needles:
        at = src.text.find(needle) if needle else -1
        if at >= 0:
            return src.text.count("\n", 0, at) + 1
    return 1
