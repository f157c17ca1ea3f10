"""What a config's command runs when it names something of the repository: a script (`bash ./scripts/start.sh`,
`node server.js`, `$CLAUDE_PROJECT_DIR/.claude/hooks/setup.sh`), a Makefile target (`make mcp`, the default target
for a bare `make`) or a package.json script (`npm run serve`). Such a command is a local program by its own words
(low for an MCP server, high for a hook); what decides is the text it runs, so that text is read and each of its
lines judged by `commands.risk`: a line that downloads and runs code or sends credentials makes the command
critical, as if it were written in the config. `setup.py` (run by `pip install .`, which agents run) is read the
same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from owstack.security.config_scan.commands import Risk, argv, risk
from owstack.security.config_scan.common import ScanFile
from owstack.security.findings import Finding, finding

MAX_SCRIPT_BYTES = 1_000_000
_SCRIPT = re.compile(r"\.(?:sh|bash|zsh|py|js|mjs|cjs|ts|ps1|bat|cmd|rb|pl|php)$", re.I)
_PROJECT_VARS = re.compile(
    r"^(?:\$\{?(?:CLAUDE_PROJECT_DIR|PWD|GEMINI_PROJECT_DIR|CURSOR_PROJECT_DIR)\}?|\$\{(?:workspaceFolder|workspaceRoot)\})[/\\]"
)


def root_of(src: ScanFile) -> Path:
    """The scan root: the folder `src.rel` is relative to."""
    path = src.path.absolute()
    for _ in range(len(PurePosixPath(src.rel).parts)):
        path = path.parent
    return path


def dangerous_line(text: str) -> tuple[int, Risk] | None:
    """The first line of a script that downloads and runs code or sends credentials, with its risk."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        found = risk(stripped)
        if found.severity == "critical" and found.why.startswith(("downloads", "sends")):
            return number, found
    return None


#: code that fetches code and runs it, or runs an encoded payload, in a Python file (`exec(urlopen(...).read())`,
#: `exec(base64.b64decode(...))`), and the environment posted to a server
_PY_FETCH = re.compile(
    r"\burlopen\s*\(|\burlretrieve\s*\(|\brequests\.(?:get|post|request)\s*\(|\bhttpx\.(?:get|post|stream)\s*\(|"
    r"\bhttp\.client\b|\burllib3\b|\bsocket\.(?:socket|create_connection)\s*\("
)
_PY_RUN = re.compile(r"(?<![\w.])(?:exec|eval)\s*\(|\bcompile\s*\([^)]*['\"]exec['\"]|\bmarshal\.loads\s*\(")
_PY_DECODED = re.compile(
    r"(?<![\w.])(?:exec|eval)\s*\(\s*(?:[\w.]*\()*\s*(?:[\w.]*\.)?(?:b64decode|b32decode|b85decode|a85decode|"
    r"decompress|fromhex|unhexlify)\s*\(|(?<![\w.])(?:exec|eval)\s*\(\s*(?:[\w.]*\()*\s*marshal\.loads\s*\(|"
    r"(?<![\w.])(?:exec|eval)\s*\([^)]{0,200}\bcodecs\.decode\s*\(",
)
#: exec of a file of the checkout (`exec(open("src/pkg/__version__.py").read(), about)`: setup.py's version idiom)
_PY_LOCAL_READ = re.compile(
    r"(?<![\w.])(?:exec|eval)\s*\(\s*(?:compile\s*\(\s*)?(?:open|Path\([^)]*\)\.read_text|io\.open)\s*\("
)
_PY_ENVIRON = re.compile(
    r"\b(?:dict|str|repr|json\.dumps)\s*\(\s*os\.environ\b|\bos\.environ\.copy\s*\(|\*\*os\.environ\b"
)


def python_payload(text: str) -> tuple[int, str] | None:
    """(line, why) of the first line of a Python file that runs downloaded or encoded code, sends the whole
    environment over the network or hides code past a run of blanks, else None. Shell lines inside strings
    (`os.system("curl ... | sh")`) are `dangerous_line`'s."""
    hidden = hidden_code(text)
    if hidden is not None:
        return hidden
    fetched = -10  # the last line that fetches: exec or the environment within a few lines of it is the payload
    tainted: set[str] = set()  # names assigned from a fetch: exec of one of them anywhere later is the payload
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if not code.strip():
            continue
        if _PY_DECODED.search(code):
            return number, "runs an encoded payload (exec of decoded bytes)"
        if _PY_FETCH.search(code):
            fetched = number
            tainted |= set(_ASSIGNED.findall(code))
        near = number - fetched <= 3 or any(_PY_FETCH.search(n) for n in lines[number : number + 3])
        reads_a_file = _PY_LOCAL_READ.search(code) is not None and _PY_FETCH.search(code) is None
        if (near or _uses(code, tainted)) and _PY_RUN.search(code) and not reads_a_file:
            return number, "runs code it fetches from the network (exec/eval of a download)"
        if near and _PY_ENVIRON.search(code):
            return number, "sends the environment (the user's keys) over the network"
    return None


#: JavaScript that fetches (`fetch(`, `https.get`, axios, got, undici) and runs code (`eval`, `new Function`, `vm`,
#: `child_process`), evaluates an encoded payload, or posts `process.env`
_JS_FETCH = re.compile(
    r"\bfetch\s*\(|\bhttps?\.(?:get|request)\s*\(|\baxios\b|\bgot\s*\(|\bundici\b|\bnew\s+WebSocket\b|"
    r"\bnet\.connect\s*\(|\bXMLHttpRequest\b"
)
_JS_RUN = re.compile(
    r"(?<![\w.$])eval\s*\(|\(\s*(?:eval|Function)\s*\)|\bnew\s+Function\s*\(|\bvm\.(?:runIn\w*|Script|compileFunction)\b|\bexecSync\s*\(|"
    r"\bexecFileSync\s*\(|\bspawnSync\s*\(|\bchild_process\b[^\n]*\.(?:exec|spawn)\s*\(|\bimport\s*\(\s*['\"`]data:"
)
_JS_DECODED = re.compile(
    r"(?<![\w.$])(?:eval|Function|execSync|exec|spawnSync)\s*\([^)]{0,200}(?:atob\s*\(|['\"]base64['\"]|"
    r"fromCharCode|\\x[0-9a-f]{2})",
    re.I,
)
_JS_ENVIRON = re.compile(r"\bJSON\.stringify\s*\(\s*process\.env\s*\)|\.\.\.process\.env\b|\bbody\s*:\s*process\.env\b")


#: code pushed past the right edge of the editor by a run of blanks (what a reviewer scrolling the file never sees)
HIDDEN_CODE = re.compile(r"\S[ \t]{150,}(?=\S)(?![ \t]*(?://|#|/\*|\*|--|;;))")
#: identifiers of javascript-obfuscator (`_0x3f2a1b`): no bundler or minifier writes them
_OBFUSCATOR = re.compile(r"\b_0x[0-9a-f]{4,6}\b")


#: the names a line assigns (`x = ...`, `const {data} = ...`, `let [a, b] = ...`)
_ASSIGNED = re.compile(r"(?:^|[\s,{\[(])([A-Za-z_$][\w$]*)\s*(?=[,}\]]*\s*=[^=>])")


def _uses(code: str, names: set[str]) -> bool:
    """Whether a line refers to one of `names` (a fetched value) inside a call's parentheses."""
    return any(re.search(rf"\([^)]*(?<![\w$.]){re.escape(n)}(?![\w$])", code) for n in names)


def hidden_code(text: str) -> tuple[int, str] | None:
    """(line, why) of code hidden past a long run of blanks on a line, or of javascript-obfuscator output."""
    for number, line in enumerate(text.splitlines(), start=1):
        if HIDDEN_CODE.search(line):
            return number, "hides code past the right edge of the editor (after a long run of blanks)"
    names = _OBFUSCATOR.findall(text[:2_000_000])
    if len(names) >= 10:
        first = text[: text.find(names[0])].count("\n") + 1
        return first, f"is obfuscated code ({len(set(names))} javascript-obfuscator identifiers such as {names[0]})"
    return None


def js_payload(text: str) -> tuple[int, str] | None:
    """(line, why) of the first line of a JavaScript/TypeScript file that runs fetched or encoded code, or sends the
    whole environment over the network, or hides or obfuscates its code, else None (shell lines in strings are
    `dangerous_line`'s)."""
    hidden = hidden_code(text)
    if hidden is not None:
        return hidden
    fetched = -10
    tainted: set[str] = set()
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        code = line.strip()
        if not code or code.startswith(("//", "*", "/*")):
            continue
        if _JS_DECODED.search(code):
            return number, "evaluates an encoded payload"
        if _JS_FETCH.search(code):
            fetched = number
            tainted |= set(_ASSIGNED.findall(code))
        near = number - fetched <= 3 or any(_JS_FETCH.search(n) for n in lines[number : number + 3])
        if (near or _uses(code, tainted)) and _JS_RUN.search(code):
            return number, "runs code it fetches from the network (eval, Function or a shell beside a download)"
        if near and _JS_ENVIRON.search(code):
            return number, "sends the environment (the user's keys) over the network"
    return None


def windowed_payload(text: str, runs: re.Pattern[str], fetches: re.Pattern[str]) -> tuple[int, str] | None:
    """(line, why) of a line that runs something (`runs`) within three lines of one that fetches (`fetches`), or of
    hidden code: the shape of a build script that downloads and runs code, in any language."""
    hidden = hidden_code(text)
    if hidden is not None:
        return hidden
    lines = text.splitlines()
    fetched = -10
    for number, line in enumerate(lines, start=1):
        code = line.strip()
        if not code or code.startswith(("//", "#", "*", "/*", "--")):
            continue
        if fetches.search(code):
            fetched = number
        near = number - fetched <= 3 or any(fetches.search(n) for n in lines[number : number + 3])
        if near and runs.search(code):
            return number, "runs what it downloads (a command or an evaluation beside a download)"
    return None


_JS_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx")


def code_risk(text: str, python: bool = False, javascript: bool = False) -> tuple[int, Risk] | None:
    """The first dangerous line of a script or source file: a shell line (`dangerous_line`), or for Python or
    JavaScript source code that runs downloaded or encoded code (`python_payload`, `js_payload`)."""
    found = dangerous_line(text)
    if found is None and (python or javascript):
        payload = python_payload(text) if python else js_payload(text)
        if payload is not None:
            return payload[0], Risk("critical", payload[1])
    return found


def source_risk(path: str, text: str) -> tuple[int, Risk] | None:
    """`code_risk` with the language taken from the file name."""
    lower = path.lower()
    if lower.endswith(".php"):
        return php_risk(text)
    return code_risk(text, python=lower.endswith(".py"), javascript=lower.endswith(_JS_SUFFIXES))


#: PHP that runs code (`eval`, `assert`, a shell function, an include) and that fetches it (`file_get_contents` of a
#: URL, curl, a socket), an include of a URL, and `eval` of decoded bytes (the shape of every PHP dropper)
_PHP_RUN = re.compile(
    r"(?<![\w>$:])(?:eval|assert|system|exec|shell_exec|passthru|proc_open|popen|pcntl_exec)\s*\(|"
    r"(?<![\w$])(?:include|require)(?:_once)?\b|`[^`\n]+`"
)
_PHP_FETCH = re.compile(
    r"\b(?:file_get_contents|fopen|copy|file|readfile)\s*\(\s*['\"](?:https?|ftp)://|\bcurl_exec\s*\(|"
    r"\bfsockopen\s*\(|\bstream_socket_client\s*\("
)
_PHP_DIRECT = re.compile(
    r"(?<![\w$])(?:include|require)(?:_once)?\s*\(?\s*['\"](?:https?|ftp|data):|"
    r"(?<![\w>$:])(?:eval|assert)\s*\(\s*(?:\w+\s*\()*\s*(?:base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|"
    r"hex2bin|convert_uudecode)\s*\(",
    re.I,
)


def php_risk(text: str) -> tuple[int, Risk] | None:
    """The first line of a PHP file that downloads and runs code, runs a shell line that does (`dangerous_line`),
    includes a URL or evaluates decoded bytes."""
    found = dangerous_line(text)
    if found is not None:
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        if _PHP_DIRECT.search(line):
            return number, Risk(
                "critical", "runs code from a URL or an encoded payload (include of a URL, eval of decoded bytes)"
            )
    payload = windowed_payload(text, _PHP_RUN, _PHP_FETCH)
    return (payload[0], Risk("critical", payload[1])) if payload is not None else None


MAX_DEPTH = 3  # a command that names a script that names a recipe that names a script


def local_risk(src: ScanFile, command: Any, args: Any = None) -> Risk | None:
    """The risk of what a command runs from the repository (see the module docstring), or None."""
    return _local(root_of(src), src.path.absolute().parent, argv(command, args), 0)


def _local(root: Path, here: Path, words: list[str], depth: int) -> Risk | None:
    if not words or depth > MAX_DEPTH:
        return None
    program = PurePosixPath(words[0].replace("\\", "/")).name.lower()
    if program in ("make", "gmake"):
        return _make(root, here, words[1:], depth)
    if program == "just":
        return _just(root, here, words[1:], depth)
    if program in ("task", "go-task"):
        return _task(root, here, words[1:], depth)
    if program in ("npm", "pnpm", "yarn", "bun") and len(words) > 1:
        name = words[2] if words[1] in ("run", "run-script") and len(words) > 2 else words[1]
        if not _SCRIPT.search(name):  # `bun run scripts/x.ts` runs a file, read below
            return _package_script(root, here, program, name, depth)
    if program in ("source", ".", "source_env", "source_up") and len(words) > 1 and not words[1].startswith("/"):
        words = [words[0], words[1] if "/" in words[1] or "." in words[1] else f"./{words[1]}", *words[2:]]
    for word in words[:5]:
        path = _PROJECT_VARS.sub("", word)
        sourced = program in ("source", ".", "source_env") and word is words[1]
        if not (_SCRIPT.search(path) or path.startswith(("./", ".\\")) or sourced) or path.startswith(("/", "~", "$")):
            continue
        text = _read(root, (root, here, here.parent), path)
        if text is not None:
            found = source_risk(path, text)
            if found is not None:
                return Risk("critical", f"it runs {word}, whose line {found[0]} {found[1].why}")
            return None
    return None


def module_risk(src: ScanFile, module: str) -> tuple[str, int, Risk] | None:
    """(file, line, risk) of a Python module of the repository named by its dotted name (a pylint or pytest plugin),
    looked up from the scan root, the file's folder and `src/`, when its code is dangerous (`code_risk`)."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*", module):
        return None
    root = root_of(src)
    here = src.path.absolute().parent
    rel = module.replace(".", "/")
    for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
        for base in (root, here, root / "src"):
            text = _read(root, (base,), candidate)
            if text is not None:
                found = code_risk(text, python=True)
                return (candidate, found[0], found[1]) if found is not None else None
    return None


def _read(root: Path, bases: tuple[Path, ...], rel: str) -> str | None:
    for base in bases:
        try:
            path = (base / rel.replace("\\", "/")).resolve()
            path.relative_to(root.resolve())
            if path.is_file() and path.stat().st_size <= MAX_SCRIPT_BYTES:
                return path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            continue
    return None


def _recipe_lines(root: Path, here: Path, lines: list[str], depth: int) -> Risk | None:
    """The risk of recipe lines: a line that downloads and runs code or sends credentials, or one that runs a
    script, recipe or package script of the repository that does."""
    found = dangerous_line("\n".join(lines))
    if found is not None:
        return found[1]
    for line in lines:
        inner = _local(root, here, argv(line), depth + 1)
        if inner is not None:
            return inner
    return None


def _runner_args(
    rest: list[str], folder_flags: tuple[str, ...], other_flags: tuple[str, ...], *, first_only: bool = False
) -> tuple[str, list[str]]:
    """A task runner's command line (`make`, `just`): (the folder it is told to run in, the targets named)."""
    folder, targets, skip = "", [], False
    for i, word in enumerate(rest):
        if skip:
            skip = False
            continue
        if word in folder_flags or word in other_flags:
            if word in folder_flags and i + 1 < len(rest):
                folder = rest[i + 1]
            skip = True
        elif not word.startswith("-") and "=" not in word:
            targets.append(word)
            if first_only:
                break
    return folder, targets


def _make(root: Path, here: Path, rest: list[str], depth: int = 0) -> Risk | None:
    folder, targets = _runner_args(rest, ("-C", "--directory"), ("-f", "--file"))
    for name in ("GNUmakefile", "makefile", "Makefile"):
        text = _read(root, (root / folder, here / folder), name)
        if text is not None:
            break
    else:
        return None
    recipes = _recipes(text)
    wanted = targets or ([next(iter(recipes))] if recipes else [])
    seen: set[str] = set()
    while wanted:
        target = wanted.pop()
        if target in seen or target not in recipes:
            continue
        seen.add(target)
        deps, lines = recipes[target]
        found = _recipe_lines(root, here, [line.lstrip("@-+ \t") for line in lines], depth)
        if found is not None:
            return Risk("critical", f"make {target}: a recipe line {found.why}")
        wanted += deps
    return None


_JUST_RECIPE = re.compile(r"^@?([A-Za-z_][\w-]*)((?:\s+[^:=\s][^:=]*)?)\s*:(?!=)\s*(.*)$")


def _just(root: Path, here: Path, rest: list[str], depth: int) -> Risk | None:
    """`just [RECIPE]`: the recipe (the first of the justfile when none is named) and its dependencies."""
    # after the recipe come its arguments: only the first name is a target
    folder, targets = _runner_args(rest, ("-d", "--working-directory"), ("-f", "--justfile"), first_only=True)
    for name in ("justfile", "Justfile", ".justfile"):
        text = _read(root, (root / folder, here / folder), name)
        if text is not None:
            break
    else:
        return None
    recipes: dict[str, tuple[list[str], list[str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and current is not None:
            recipes[current][1].append(line.strip().lstrip("@-"))
            continue
        m = _JUST_RECIPE.match(line)
        if m is None or line.startswith(("set ", "alias ", "export ", "import ", "mod ")):
            current = None if line.strip() and not line.startswith("#") else current
            continue
        current = m.group(1)
        deps = [d.strip("()") for d in m.group(3).split() if re.match(r"^\(?[A-Za-z_][\w-]*", d)]
        recipes.setdefault(current, (deps, []))
    wanted = targets or ([next(iter(recipes))] if recipes else [])
    seen: set[str] = set()
    while wanted:
        target = wanted.pop()
        if target in seen or target not in recipes:
            continue
        seen.add(target)
        deps, lines = recipes[target]
        found = _recipe_lines(root, here, lines, depth)
        if found is not None:
            return Risk("critical", f"just {target}: a recipe line {found.why}")
        wanted += deps
    return None


def _task(root: Path, here: Path, rest: list[str], depth: int) -> Risk | None:
    """`task [NAME]` (go-task): the task's `cmds` (strings, `{cmd: ...}`, `{task: other}`) and `deps`."""
    targets = [w for w in rest if not w.startswith("-") and "=" not in w][:1]
    for name in ("Taskfile.yml", "taskfile.yml", "Taskfile.yaml", "taskfile.yaml", "Taskfile.dist.yml"):
        text = _read(root, (root, here), name)
        if text is not None:
            break
    else:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        return None
    wanted = targets or ["default"]
    seen: set[str] = set()
    while wanted:
        target = wanted.pop()
        spec = tasks.get(target)
        if target in seen or spec is None:
            continue
        seen.add(target)
        if isinstance(spec, str | list):
            spec = {"cmds": spec if isinstance(spec, list) else [spec]}
        if not isinstance(spec, dict):
            continue
        lines: list[str] = []
        for item in (spec.get("cmds") or []) + ([spec["cmd"]] if isinstance(spec.get("cmd"), str) else []):
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, dict) and isinstance(item.get("cmd"), str):
                lines.append(item["cmd"])
            elif isinstance(item, dict) and isinstance(item.get("task"), str):
                wanted.append(item["task"])
        for dep in spec.get("deps") or []:
            dep_name = dep.get("task") if isinstance(dep, dict) else dep
            if isinstance(dep_name, str):
                wanted.append(dep_name)
        found = _recipe_lines(root, here, [line for text in lines for line in text.splitlines()], depth)
        if found is not None:
            return Risk("critical", f"task {target}: a command {found.why}")
    return None


_TARGET = re.compile(r"^([A-Za-z0-9_./-]+(?:\s+[A-Za-z0-9_./-]+)*)\s*::?(?!=)\s*([^;#]*)")


def _recipes(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines), in file order (the first is make's default; `.PHONY` and the like
    are skipped)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("\t"):
            for target in current:
                out[target][1].append(line.strip())
            continue
        m = _TARGET.match(line)
        if m is None:
            if line.strip() and not line.startswith("#"):
                current = []
            continue
        current = [t for t in m.group(1).split() if not t.startswith(".")]
        for target in current:
            out.setdefault(target, ([], []))[0].extend(m.group(2).split())
    return out


def _package_script(root: Path, here: Path, program: str, name: str, depth: int = 0) -> Risk | None:
    text = _read(root, (root, here, here.parent), "package.json")
    try:
        scripts = json.loads(text).get("scripts") if text else None
    except (ValueError, AttributeError):
        return None
    script = scripts.get(name) if isinstance(scripts, dict) else None
    if not isinstance(script, str):
        return None
    found = risk(script)
    if found.severity != "critical":
        found = _local(root, here, argv(script), depth + 1) or found
    if found.severity == "critical":
        return Risk("critical", f"{program} runs the package.json script {name!r}, which {found.why}")
    return None


def check_setup_py(src: ScanFile) -> list[Finding]:
    """`setup.py`, and the build hooks build backends import by their name (hatchling's `hatch_build.py`,
    pdm-backend's `pdm_build.py`): `pip install .` (or `-e .`, `uv sync`) runs them; a line that downloads and runs
    code, sends credentials, or Python that runs fetched or encoded code runs then (high, as an npm install script's:
    OWS-PKG-001)."""
    found = code_risk(src.text, python=True)
    if found is None:
        return []
    number, danger = found
    name = PurePosixPath(src.rel).name
    message = f"{name} runs on `pip install .` in the checkout: {danger.why}"
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-PKG-001", src.rel, number, message, executes=line)]
