"""Tool configs that are code, run by editor extensions when a file is opened and by every lint, build or test an
agent runs (OWS-TOOL-001):

    eslint.config.*, .eslintrc.js, prettier.config.*, .prettierrc.js, tailwind.config.*, postcss.config.*,
    jest.config.*, vitest.config.*, vite.config.*, playwright.config.*, babel.config.*, stylelint.config.*, ...
                          JavaScript the ESLint, Prettier, Tailwind CSS IntelliSense, Jest, Vitest or Playwright
                          extensions load as soon as a matching file is opened, and `npm run lint/build/test` runs
    .pylintrc, pylintrc, setup.cfg, tox.ini, pyproject.toml   pylint's `init-hook`: Python that pylint `exec`s at
                          start, in every `pylint` run and in the pylint extension's linting on open

These files are in every JavaScript and Python project, so they are judged by what their code does: a line that
downloads and runs code or sends credentials, code that runs what it fetches or an encoded payload, or the
environment posted to a server, is high; an `init-hook` that runs a shell without fetching anything is medium;
ordinary configuration and `sys.path` hooks are not reported.
"""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

from owstack.security.config_scan.commands import Risk, risk
from owstack.security.config_scan.common import ScanFile, command_line, env_risk
from owstack.security.config_scan.scripts import (
    code_risk,
    dangerous_line,
    local_risk,
    module_risk,
    python_payload,
    windowed_payload,
)
from owstack.security.config_scan.vscode import program_severity
from owstack.security.findings import Finding, Severity, finding

_INIT_HOOK = re.compile(r"^[ \t]*init[-_]hook[ \t]*[=:][ \t]*(.*)$", re.M)
_SHELL = re.compile(r"\bos\.(?:system|popen|exec\w*|spawn\w*)\s*\(|\bsubprocess\b|\bpty\.spawn\b|(?<![\w.])exec\s*\(")


#: a config line that is a program of its own: thousands of characters that evaluate or load code
_PACKED = re.compile(r"(?<![\w.$])eval\s*\(|\bFunction\s*\(|\brequire\s*\(|\bimport\s*\(|\bchild_process\b")
MAX_LINE = 3000


def check_js_config(src: ScanFile) -> list[Finding]:
    found = code_risk(src.text, javascript=True)
    if found is None:
        found = _packed_line(src.text)
    if found is None:
        found = _imported_risk(src.root.resolve(), src.path.resolve(), src.text, 0)
    if found is None:
        return []
    number, danger = found
    name = src.rel.rsplit("/", 1)[-1]
    message = (
        f"{name} is code that editor extensions load when a file is opened and every lint, build or test runs: "
        f"line {number} {danger.why}"
    )
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-TOOL-001", src.rel, number, message, executes=line)]


#: a relative module a JavaScript or TypeScript file loads: `import x from './a'`, `import './a'`, `export * from
#: '../b'`, `require('./c')`, `import('./d')`
_LOCAL_IMPORT = re.compile(r"(?:\bfrom|\bimport|\brequire\s*\(|\bimport\s*\()\s*['\"`](\.{1,2}/[^'\"`\n]+)['\"`]")
_JS_EXTENSIONS = ("", ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx")
IMPORT_DEPTH = 2  # the config's imports, and theirs


def _imported_risk(root: Path, here: Path, text: str, depth: int) -> tuple[int, Risk] | None:
    """(line of the import, risk) when a module of the repository a config loads (following its relative imports
    `IMPORT_DEPTH` levels, never out of the repository) runs downloaded or encoded code: moving the payload into
    `./config/setup.mjs` does not hide it."""
    if depth >= IMPORT_DEPTH:
        return None
    for m in _LOCAL_IMPORT.finditer(text):
        module = _resolve_module(root, here.parent, m.group(1))
        if module is None or module == here:
            continue
        try:
            body = module.read_text(encoding="utf-8", errors="replace") if module.stat().st_size <= 1_000_000 else ""
        except OSError:
            continue
        rel = module.relative_to(root).as_posix()
        number = text.count("\n", 0, m.start()) + 1
        found = code_risk(body, javascript=True)
        if found is not None:
            return number, Risk("critical", f"loads {rel}, whose line {found[0]} {found[1].why}")
        deeper = _imported_risk(root, module, body, depth + 1)
        if deeper is not None:
            return number, Risk("critical", f"loads {rel}, whose line {deeper[0]} {deeper[1].why}")
    return None


def _resolve_module(root: Path, folder: Path, spec: str) -> Path | None:
    """The file a relative specifier names, as Node and bundlers resolve it (the name, with an extension, or the
    folder's `index`), if it is inside the repository."""
    base = spec.split("?", 1)[0]
    stem = re.sub(r"\.(?:m|c)?js$", "", base)  # TypeScript imports `./a.js` meaning `./a.ts`
    for candidate in (
        [folder / f"{base}{ext}" for ext in _JS_EXTENSIONS]
        + [folder / f"{stem}{ext}" for ext in (".ts", ".mts", ".cts", ".tsx")]
        + [folder / base / f"index{ext}" for ext in _JS_EXTENSIONS[1:]]
    ):
        try:
            path = candidate.resolve()
            path.relative_to(root)
        except (OSError, ValueError):
            continue
        if path.is_file():
            return path
    return None


def _packed_line(text: str) -> tuple[int, Risk] | None:
    """A config file's line of thousands of characters that evaluates or loads code: a packed or obfuscated payload
    (configs are written by hand; bundles are not configs)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE and _PACKED.search(line):
            return number, Risk("critical", f"is a packed line of {len(line)} characters that evaluates or loads code")
    return None


_LOAD_PLUGINS = re.compile(r"^[ \t]*load[-_]plugins[ \t]*[=:][ \t]*(.*)$", re.M)


def check_pylint(src: ScanFile) -> list[Finding]:
    """pylint's `init-hook` in any of the files pylint reads its options from (lenient: the key wherever it is, its
    value with the indented lines that continue it), and `load-plugins` modules of the repository (imported at every
    pylint start) whose code is dangerous."""
    out: list[Finding] = []
    for m in _LOAD_PLUGINS.finditer(src.text):
        for module in re.split(r"[,\s\[\]\"']+", m.group(1)):
            found = module_risk(src, module.strip()) if module.strip() else None
            if found is not None:
                rel, number, danger = found
                message = (
                    f"pylint imports the plugin {module.strip()!r} ({rel}) at every start: line {number} {danger.why}"
                )
                line = src.text.count("\n", 0, m.start()) + 1
                out.append(finding("OWS-TOOL-001", src.rel, line, message, executes=rel))
    if "init" not in src.text:
        return out
    for m in _INIT_HOOK.finditer(src.text):
        value = m.group(1)
        rest = src.text[m.end() :].split("\n")[1:]
        for more in rest:  # an INI value continued on indented lines
            if more[:1] in (" ", "\t") and more.strip():
                value += "\n" + more.strip()
            else:
                break
        code = value.strip().strip("'\"").replace("\\n", "\n").replace(";", "\n")
        line = src.text.count("\n", 0, m.start()) + 1
        severity: Severity | None = None
        why = ""
        payload = python_payload(code)
        shell = _shell_payload(code)
        if payload is not None or shell is not None:
            severity, why = "high", payload[1] if payload is not None else str(shell)
        elif _SHELL.search(code):
            severity, why = "medium", "runs a program or code beyond setting the import path"
        if severity is not None:
            message = f"pylint runs `init-hook` at every start (and the pylint extension on open): it {why}"
            executes = command_line(value.strip())[:200]
            out.append(finding("OWS-TOOL-001", src.rel, line, message, executes=executes, severity=severity))
    return out


def _shell_payload(code: str) -> str | None:
    found = code_risk(code)
    if found is not None:
        return found[1].why
    danger = risk(code.replace("\n", "; "))
    if danger.severity == "critical" and danger.why.startswith(("downloads", "sends")):
        return danger.why
    return None


#: build scripts the IDE or language server runs when the project is opened, and the package manager on install:
#: (runs, fetches) per language
GRADLE_CODE = _GRADLE = (
    re.compile(
        r"\.execute\s*\(|Runtime\.getRuntime\(\)\.exec|\bProcessBuilder\b|\bcommandLine\b|\bexec\s*\{|"
        r"\bevaluate\s*\(|GroovyShell"
    ),
    # a fetch in code, not a repository URL (`maven { url 'https://...' }` is every build)
    re.compile(r"\b(?:curl|wget)\b|\bURL\s*\(|\.toURL\(\)|\.openStream\(|\bURI\.create\b|\bHttpClient\b"),
)
_RUST = (
    # a shell or an interpreter started by the build script (`tar`, `cc`, `cmake` are what -sys crates run)
    re.compile(r"\bCommand::new\s*\(\s*\"(?:sh|bash|zsh|dash|cmd|powershell|pwsh|python3?|node|perl|ruby)(?:\.exe)?\""),
    re.compile(r"\b(?:curl|wget|reqwest|ureq|TcpStream)\b|https?://"),
)
_RUBY = (
    re.compile(
        r"(?<![\w.])(?:system|exec|spawn|eval|instance_eval|load)\s*[\(\s'\"]|`[^`]*`|%x[\(\{\[]|IO\.popen|Open3\."
    ),
    # a fetch in code, not a gem source (`source "https://rubygems.org"`)
    re.compile(r"\b(?:curl|wget)\b|Net::HTTP|URI\.open|URI\.parse|open-uri|\bopen\s*\(\s*['\"]https?:"),
)
#: Gradle scripts applied from a URL (`apply from: 'https://...'`): code from that host runs at configuration
_REMOTE_APPLY = re.compile(r"\bapply\s*\(?\s*from\s*[:=]\s*['\"]https?://", re.I)
_WHEN = {
    "gradle": "IntelliJ and Android Studio run it when they import (open) the project, and every `./gradlew` does",
    "rust": "rust-analyzer runs build scripts when the project is opened, as `cargo build` and `cargo check` do",
    "ruby": "Bundler evaluates it on every `bundle install` (Ruby LSP does when the project is opened)",
    "cmake": "CLion and VS Code's CMake Tools configure the project (run this file) when it is opened",
    "python": "IPython and Jupyter run this config file from the folder they are started in",
}

#: MSBuild and Visual Studio project files: commands run on every build, and by the IDE's design-time builds when
#: the project is loaded (`<Exec Command=...>`, `<PreBuildEvent>`/`<PostBuildEvent>`, custom build steps)
_MSBUILD_COMMAND = re.compile(
    r"<Exec\b[^>]*?\bCommand\s*=\s*\"([^\"]*)\"|<(PreBuildEvent|PostBuildEvent|PreLinkEvent|Command)>\s*(.*?)</",
    re.S | re.I,
)
#: PowerShell given its script base64-encoded (`-EncodedCommand`, `-enc`, `-e`: any prefix)
_PS_ENCODED = re.compile(
    r"\b(?:powershell|pwsh)(?:\.exe)?\b[^|;&]*\s[-/](?:e|ec|en[a-z]*)\s+['\"]?[A-Za-z0-9+/=]{8,}", re.I
)
_INLINE_TASK = re.compile(r"<UsingTask\b[^>]*TaskFactory\s*=\s*\"(?:Roslyn)?CodeTaskFactory\"", re.I)
_NET_FETCH = re.compile(r"\b(?:WebClient|HttpClient|DownloadString|DownloadFile|WebRequest)\b|https?://", re.I)
_NET_RUN = re.compile(r"\b(?:Process\.Start|Assembly\.Load|Invoke-Expression|iex)\b", re.I)


def check_msbuild(src: ScanFile) -> list[Finding]:
    """`*.csproj`, `*.vbproj`, `*.fsproj`, `*.vcxproj`, `Directory.Build.props/targets`, `*.targets`: a build
    command that downloads and runs code or runs inline code (PowerShell `-enc`, `cmd /c` with a download), or an
    inline C# task that downloads and starts code (high, OWS-TOOL-001: the 2021 campaign against security
    researchers shipped a Visual Studio project whose pre-build event ran such a command)."""
    out: list[Finding] = []
    for m in _MSBUILD_COMMAND.finditer(src.text):
        raw = m.group(1) if m.group(1) is not None else m.group(3) or ""
        command = html.unescape(re.sub(r"<[^>]*>", " ", raw)).strip()
        if not command:
            continue
        for text in command.splitlines():
            danger = risk(text.strip())
            if danger.severity == "critical" and (
                danger.why.startswith(("downloads", "sends", "installs"))
                or _NET_FETCH.search(text)
                or _PS_ENCODED.search(text)
            ):
                number = src.text.count("\n", 0, m.start()) + 1
                message = f"a build command (run on build, and by the IDE's design-time build on load) {danger.why}"
                if number not in {f.line for f in out}:
                    out.append(finding("OWS-TOOL-001", src.rel, number, message, executes=command_line(text.strip())))
                break
    task = _INLINE_TASK.search(src.text)
    if task is not None:
        body = src.text[task.start() : task.start() + 20_000]
        if _NET_FETCH.search(body) and _NET_RUN.search(body):
            number = src.text.count("\n", 0, task.start()) + 1
            message = "an inline MSBuild task (C# compiled and run at build) downloads and starts code"
            out.append(finding("OWS-TOOL-001", src.rel, number, message, executes="UsingTask CodeTaskFactory"))
    return out


_CMAKE = (
    re.compile(r"\binclude\s*\(|\bexecute_process\s*\(|\bexec_program\s*\(", re.I),
    # a download in CMake code that is not pinned by its hash (CPM's bootstrap is: EXPECTED_HASH)
    re.compile(r"\bfile\s*\(\s*DOWNLOAD\b(?![^)]*EXPECTED_(?:HASH|MD5))|\b(?:curl|wget)\b", re.I),
)
#: a CMake download pinned by its hash, over however many lines the call takes
_PINNED_DOWNLOAD = re.compile(r"\bfile\s*\(\s*DOWNLOAD\b[^)]*EXPECTED_(?:HASH|MD5)[^)]*\)", re.I)
_PYTHON_CONFIG = frozenset(
    {"ipython_config.py", "jupyter_server_config.py", "jupyter_notebook_config.py", "jupyter_lab_config.py"}
)


def _kind(name: str) -> str:
    if "gradle" in name:
        return "gradle"
    if name == "build.rs":
        return "rust"
    if name == "cmakelists.txt" or name.endswith(".cmake"):
        return "cmake"
    if name in _PYTHON_CONFIG:
        return "python"
    return "ruby"


def check_build_script(src: ScanFile) -> list[Finding]:
    """`build.gradle(.kts)`, `settings.gradle(.kts)`, `build.rs`, `Gemfile`, `*.gemspec`, `CMakeLists.txt`, Jupyter
    and IPython configs: a line that downloads and runs code, code that runs what it fetches, a Gradle script applied
    from a URL (high, OWS-TOOL-001)."""
    name = src.rel.rsplit("/", 1)[-1].lower()
    kind = _kind(name)
    if kind == "python":
        found = code_risk(src.text, python=True)
        if found is None:
            return []
        number, why = found[0], found[1].why
        message = f"{_WHEN[kind]}: line {number} {why}"
        return [finding("OWS-TOOL-001", src.rel, number, message, executes=src.text.splitlines()[number - 1][:200])]
    found = dangerous_line(src.text)
    if found is not None:
        number, why = found[0], found[1].why
    else:
        remote = _REMOTE_APPLY.search(src.text) if kind == "gradle" else None
        if remote is not None:
            number, why = src.text.count("\n", 0, remote.start()) + 1, "applies a script fetched from a URL"
        else:
            runs, fetches = {"gradle": _GRADLE, "rust": _RUST, "ruby": _RUBY, "cmake": _CMAKE}[kind]
            text = _PINNED_DOWNLOAD.sub(lambda m: m.group(0).replace("DOWNLOAD", "PINNED"), src.text)
            payload = windowed_payload(text, runs, fetches)
            if payload is None:
                return []
            number, why = payload
    message = f"{_WHEN[kind]}: line {number} {why}"
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-TOOL-001", src.rel, number, message, executes=line)]


def check_bunfig(src: ScanFile) -> list[Finding]:
    """`bunfig.toml` `preload` (top level, `[run]`, `[test]`): modules Bun loads before every `bun run`/`bun test`; one
    of the repository whose code is dangerous is high."""
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError:
        return []
    out: list[Finding] = []
    for scope, at in ((data, ()), (data.get("run"), ("run",)), (data.get("test"), ("test",))):
        preload = scope.get("preload") if isinstance(scope, dict) else None
        for path in preload if isinstance(preload, list) else [preload] if isinstance(preload, str) else []:
            danger = local_risk(src, ["bun", str(path)]) if isinstance(path, str) else None
            if danger is not None and danger.severity == "critical":
                message = f"Bun preloads {path!r} before every `bun run` and `bun test`: {danger.why}"
                out.append(finding("OWS-TOOL-001", src.rel, src.line(*at, "preload"), message, executes=str(path)))
    return out


#: `.cargo/config.toml` keys that name a program cargo runs (rust-analyzer runs `cargo check` on open; build scripts
#: are compiled and linked then)
_CARGO_PROGRAMS = (
    ("build", "rustc-wrapper"),
    ("build", "rustc-workspace-wrapper"),
    ("build", "rustc"),
    ("build", "rustdoc"),
)


def check_cargo_config(src: ScanFile) -> list[Finding]:
    """`.cargo/config.toml` (`.cargo/config`): the compiler wrappers, compilers and linkers cargo runs for every
    `cargo check` (which rust-analyzer runs when the project is opened) and `[env]` variables that load code, judged as
    VS Code program settings; `rust-toolchain.toml` `path`: a toolchain folder of the repository, whose cargo and
    rustc then run instead of rustup's (OWS-CARGO-001)."""
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        if src.rel.lower().endswith("rust-toolchain"):
            return []  # the legacy file holds a channel name (`stable`), not TOML
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed TOML ({exc})")]
    out: list[Finding] = []
    if src.rel.lower().rsplit("/", 1)[-1].startswith("rust-toolchain"):
        toolchain = data.get("toolchain")
        path = toolchain.get("path") if isinstance(toolchain, dict) else None
        if isinstance(path, str) and path.strip():
            folder = (src.path.parent / path).resolve()
            inside = folder.is_relative_to(src.root.resolve())
            severity: Severity = "critical" if inside and folder.is_dir() else "high" if inside else "medium"
            message = f"`toolchain.path` makes rustup run the cargo and rustc of {path!r}"
            message += " (a folder of this repository), when rust-analyzer opens the project" if inside else ""
            out.append(
                finding(
                    "OWS-CARGO-001", src.rel, src.line("toolchain", "path"), message, executes=path, severity=severity
                )
            )
        return out
    programs: list[tuple[tuple[str, ...], object]] = [
        (key, (data.get(key[0]) or {}).get(key[1])) for key in _CARGO_PROGRAMS if isinstance(data.get(key[0]), dict)
    ]
    targets = data.get("target")
    for triple, spec in targets.items() if isinstance(targets, dict) else []:
        if isinstance(spec, dict):
            programs += [(("target", str(triple), key), spec.get(key)) for key in ("linker", "runner")]
    for path, value in programs:
        text = " ".join(map(str, value)) if isinstance(value, list) else value if isinstance(value, str) else None
        if not text:
            continue
        severity, why = program_severity(src, text)
        if severity == "low":
            continue
        message = f"`{'.'.join(path)}` makes cargo (and rust-analyzer, on open) run {why}"
        out.append(finding("OWS-CARGO-001", src.rel, src.line(*path), message, executes=text, severity=severity))
    env = data.get("env")
    for key, value in env.items() if isinstance(env, dict) else []:
        raw = value.get("value") if isinstance(value, dict) else value
        found = env_risk(str(key), raw)
        if found is not None and found.severity in ("high", "critical") and found.kind != "redirect":
            message = f"`[env]` gives every cargo command (and rust-analyzer's) {found.message}"
            out.append(
                finding(
                    "OWS-CARGO-001",
                    src.rel,
                    src.line("env", str(key)),
                    message,
                    executes=f"{key}={raw}",
                    severity=found.severity,
                )
            )
    return out


#: `#cgo` directives (`go help cgo`): the flags go build hands the C compiler and linker of a package
_CGO = re.compile(r"^[ \t]*(?://[ \t]*)?#cgo\b[^:\n]*?\b((?:CPP|C|CXX|F|LD)FLAGS)[ \t]*:(.*)$", re.M)
#: compiler and linker flags that load or run a program: a GCC/Clang plugin (CVE-2018-6574), a wrapper the compiler
#: runs each tool through, a linker plugin (CVE-2023-29404), an LTO library (CVE-2024-24787), a tool folder, specs
_CGO_EXEC = re.compile(
    r"(?:^|\s)(?:-fplugin\S*|-wrapper\b\S*|-Wl,-?-plugin\S*|--?plugin\b\S*|-Xclang\s+-load\b|-Wl,-lto_library\S*|"
    r"-lto_library\b|-B(?!static|dynamic|symbolic)\S*|-specs\S*|--specs\S*|-fplugin-arg\S*)"
)


def check_cgo(src: ScanFile) -> list[Finding]:
    """A Go file's `#cgo CFLAGS/LDFLAGS` that load a plugin or run a wrapper: `go build`, `go test` and gopls (which
    loads packages when the folder is opened) hand them to the C toolchain. Go has refused these flags since 1.10
    (CVE-2018-6574) unless `CGO_CFLAGS_ALLOW`-style variables let them through, and let some through before its
    fixes for CVE-2023-29404 and CVE-2024-24787: high, a build step on an older toolchain or a loosened allowlist."""
    out: list[Finding] = []
    for m in _CGO.finditer(src.text):
        flag = _CGO_EXEC.search(m.group(2))
        if flag is None:
            continue
        number = src.text.count("\n", 0, m.start()) + 1
        message = (
            f"`#cgo {m.group(1)}` gives the C toolchain {flag.group(0).strip()!r}, which loads or runs a program "
            "when go build, go test or gopls builds the package (Go refuses it unless its allowlist is loosened "
            "or the toolchain predates its fixes)"
        )
        out.append(
            finding("OWS-TOOL-001", src.rel, number, message, executes=m.group(0).strip()[:200], severity="high")
        )
    return out
