"""How much a command line in an agent config can do, as a severity and a reason.

- `critical`: it runs code written into the config (a shell `-c`, `python -Ic`, `node -pe`, `perl -e`,
  PowerShell `-EncodedCommand`, flags clustered or not, a here-document, an awk program that runs
  commands, behind `env`/`sudo`/`nohup`/`busybox` wrappers too), code fetched from a URL or a git
  repository (`curl ... | sh`, `curl -o x ...; ./x`, `npx -y https://.../x.tgz`, `npx github:user/repo`,
  `uvx --from git+https://...`, `pip install git+...`, `deno run https://...`, `cargo install --git`), or
  a container given the host (`--privileged`, a bind mount of `/`, home or credential folders, the
  Docker socket);
- `medium`: it fetches and runs a package whose version is not pinned (`npx -y pkg`, `pkg@latest`,
  `uvx pkg`, `docker run image` without a digest or a version tag);
- `low`: it runs a local program;
- `info`: it runs a package pinned to a version (or an image pinned to a digest or version tag).

Data (shells, interpreters and their code flags, wrappers, package runners) is in
`security/data/commands.yaml`.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from owstack.security.data_files import load
from owstack.security.findings import Severity

_INTERPRETER = r"(?:(?:ba|z|da|k|fi)?sh|python[\d.]*|node|perl|ruby|php|pwsh|powershell)\b"
DOWNLOAD_EXEC = re.compile(
    r"(?:curl|wget|iwr|invoke-webrequest|irm|invoke-restmethod|fetch)\b[^|;&]{0,300}\|\s*"
    r"(?:sudo(?:\s+-\w+)*\s+|env\s+|busybox\s+)?(?:/?[\w.-]+/)*" + _INTERPRETER + r"|\|\s*iex\b"
    r"|base64\s+(?:-d|-D|--decode)[^|]*\|\s*\w*sh\b"
    r"|\b(?:iex|invoke-expression)\b|\beval\s+\"?\$\("
    # a download run through process or command substitution: `bash <(curl ...)`, `source <(wget -O- ...)`
    r"|<\(\s*(?:curl|wget|iwr|irm|fetch)\b|(?:^|[;&|]\s*)\$\(\s*(?:curl|wget)\b"
    # a download to a file, then that file (or a shell) run in the same line
    r"|(?:curl|wget|iwr|invoke-webrequest)\b[^|;&]{0,300}(?:\s-[a-zA-Z]*[oO]\b|--output\b|--output-document\b|>)"
    r"[^|;&]{0,300}(?:;|&&)\s*(?:sudo\s+)?(?:chmod\b|source\b|\.\s|\.?/|(?:/?[\w.-]+/)*" + _INTERPRETER + r")",
    re.I,
)
#: an interpreter reading code from a here-document or here-string written into the line
_HEREDOC = re.compile(r"(?:^|[\s;&|])(?:\w+/)*" + _INTERPRETER + r"[^|;&]{0,200}?\s(?:-\s+)?<<", re.I)
#: text piped into an interpreter reading its program from stdin (`echo ... | base64 -D | sh`, `xxd -r -p | bash -`)
_PIPE_EXEC = re.compile(
    r"\|\s*(?:sudo(?:\s+-\w+)*\s+|env\s+|busybox\s+)?(?:/?[\w.-]+/)*(?:(?:ba|z|da|k|fi)?sh|python[\d.]*|node|perl|ruby|"
    r"php|pwsh|powershell)(?:\.exe)?(?:\s+-[\w-]*)*\s*(?:$|[;&|)\"'])",
    re.I,
)
#: credentials or the whole environment sent over the network: a credential file uploaded, the environment posted,
#: a secret variable put into a URL or a request body (an `Authorization` header to an API is not this)
_SENSITIVE_FILE = (
    r"(?:~|\$\{?HOME\}?|/etc/|/root\b|[^\s'\"]*(?:\.ssh|\.aws|\.kube|\.gnupg|\.netrc|\.git-credentials|\.docker/config|"
    r"\.npmrc|\.pypirc|\.env\b|credentials|id_rsa|id_ed25519|id_ecdsa))"
)
_SECRET_VAR = r"\$\{?(?:env:)?\w*(?:API_?KEY|TOKEN|SECRET|PASSWORD|ACCESS_KEY)\w*\}?"
EXFIL = re.compile(
    r"(?:curl|wget|nc|ncat|http|https|xh)\b[^|;&]{0,300}(?:-F\s*['\"]?[\w-]*=@|--form\s+['\"]?[\w-]*=@|"
    r"(?:-d|--data(?:-binary|-raw|-urlencode|-ascii)?)[\s=]*['\"]?@|-T\s+|--upload-file[\s=]+|--post-file[\s=]+|[\w-]+=@)"
    r"['\"]?"
    + _SENSITIVE_FILE
    + r"|(?:curl|wget|nc|ncat)\b[^|;&]{0,300}(?:\$\(\s*(?:env|printenv|set)\s*\)|`\s*(?:env|printenv)\s*`)"
    r"|\b(?:env|printenv)\s*\|\s*(?:curl|wget|nc|ncat|base64)\b"
    r"|(?:curl|wget)\b[^|;&]{0,300}(?:https?://[^\s'\"]*|(?:-d|--data\S*)[\s=]*['\"]?[^'\"\s]*)" + _SECRET_VAR,
    re.I,
)
#: a program or script on a network share (`\\host\share\x.exe`, WebDAV `\\host@SSL\...`): fetched from that
#: host and run (`\\.\` and `\\?\` are local device and long paths)
_UNC = re.compile(
    r"^(?:\\\\|//)(?![.?][\\/])[\w.@-]+[\\/][^\\/]+[\\/].*\.(?:exe|com|ps1|bat|cmd|dll|js|vbs|py|sh|msi|hta)$", re.I
)
#: code handed to an interpreter as a `data:` URL (`node --import=data:text/javascript,...`)
_DATA_URL = re.compile(r"(?:^|[\s=])data:(?:text|application)/(?:javascript|ecmascript|x-python)", re.I)
#: bind-mount sources that hand a container the host: its root, home folders, /etc, credential folders, the
#: Docker socket
_HOST_MOUNT = re.compile(
    r"^(?:/|/(?:home|root|etc)(?:/[^/]*)?/?|[A-Za-z]:[\\/]?|[A-Za-z]:[\\/]Users(?:[\\/][^\\/]*)?[\\/]?|%USERPROFILE%[\\/]?"
    r"|(?:~|\$HOME|\$\{HOME\})(?:/(?:\.ssh|\.aws|\.kube|\.docker|\.gnupg"
    r"|\.config(?:/gcloud)?|\.netrc)\b.*)?/?|.*docker\.sock)$"
)
#: awk-family program text that runs commands
_AWK_EXEC = re.compile(r"\bsystem\s*\(|\|\s*getline|\|&|print[^;}]*\|\s*\"", re.I)
_REMOTE_SPEC = re.compile(
    r"^(?:https?://|git\+|git://|github:|gitlab:|bitbucket:|gist:|ssh://|file:|\.{0,2}/.*\.(?:tgz|tar\.gz|whl)$)"
    r"|\.(?:tgz|tar\.gz)$|^[\w.-]+/[\w.-]+(?:#.*)?$",
    re.I,
)
_PINNED = re.compile(r"(?:@|==)v?\d+(?:\.\d+)+(?:[-+.\w]*)$|@sha256:[0-9a-f]{64}$|:v?\d+(?:\.\d+)+[-\w.]*$")


@dataclass(frozen=True, slots=True)
class Risk:
    severity: Severity
    why: str


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = load("commands")
    return data


def argv(command: Any, args: Any = None) -> list[str]:
    """A config's command (string or list) plus args as one argv; a single string is split like a shell."""
    parts = [str(c) for c in command] if isinstance(command, list) else [str(command or "")]
    extra = [str(a) for a in args] if isinstance(args, list) else []
    if len(parts) == 1 and not extra and (" " in parts[0] or "\t" in parts[0]):
        try:
            parts = shlex.split(parts[0])
        except ValueError:
            parts = parts[0].split()
    return [p for p in parts + extra if p != ""]


def _program(word: str) -> str:
    name = PurePosixPath(word.replace("\\", "/")).name.lower().removesuffix(".exe")
    return re.sub(r"[\d.]+$", "", name) or name


_DURATION = re.compile(r"^\d+(?:\.\d+)?[smhd]?$")  # timeout's duration: `5`, `5s`, `1.5m`


def _strip_wrappers(words: list[str]) -> list[str]:
    wrappers = set(_data()["wrappers"])
    while words and _program(words[0]) in wrappers:
        valued = set(_data()["wrapper_value_options"].get(_program(words[0]), ()))
        words = words[1:]
        while words and (words[0].startswith("-") or re.match(r"^\w+=", words[0]) or _DURATION.match(words[0])):
            option, words = words[0], words[1:]  # the wrapper's options, env assignments, timeout's duration
            if option in valued and words:
                words = words[1:]  # the option's value (`sudo -u dev`)
                continue
            split = option[2:] if option.startswith("-S") and len(option) > 2 else None
            if option in ("-S", "--split-string") and words:
                split, words = words[0], words[1:]
            elif option.startswith("--split-string="):
                split = option.partition("=")[2]
            if split is not None:  # env -S 'sh -c id': the string is the command line
                try:
                    return _strip_wrappers([*shlex.split(split), *words])
                except ValueError:
                    return [*split.split(), *words]
    return words


def _inline(program: str, rest: list[str]) -> str | None:
    data = _data()
    if program in ("powershell", "pwsh"):
        return _powershell(program, rest)
    if program == "cmd":  # `cmd /s /d /c ...`: the switches before /c or /k, attached (`/C"..."`) or not
        for word in rest:
            if not word.startswith("/"):
                return None
            if word[1:2].lower() in ("c", "k"):
                return f"cmd runs the command line after {word[:2]}"
        return None
    if program == "socat" and any(re.match(r"^(?:exec|system):", w, re.I) for w in rest):
        return "socat connects a program to a socket (a remote shell)"
    long_flags = {f.lower() for f in data["long_inline_flags"]}
    short = set(data["inline_flags"].get(program, ()))
    if program in data["shells"]:
        short |= {"c"}
    if program in data["program_text"]:
        text = next((w for w in rest if not w.startswith("-")), "")
        return f"{program} runs a program text that runs commands" if _AWK_EXEC.search(text) else None
    valued = set(data["value_flags"].get(program, ()))
    separate = set(data["option_values"].get(program, ()))
    skip = False
    for word in rest:
        if skip:  # the value of the option before (`-o pipefail`, `-X utf8`)
            skip = False
            continue
        lower = word.lower()
        if lower in long_flags or lower.split("=", 1)[0] in long_flags:
            return f"{program} runs code given on its command line ({word})"
        if word.startswith("-") and not word.startswith("--") and short:
            found, last = _short_code_flag(word[1:], short, valued | separate)
            if found:
                return f"{program} runs code given on its command line ({word[:12]})"
            skip = last in separate
            if last in valued and last not in separate:
                return None  # `python -m module`: what follows is the module's
            continue
        if not word.startswith("-"):
            return (
                f"{program} {word} runs code given on its command line"
                if word in data["inline_subcommands"].get(program, ())
                else None
            )
    return None


def _short_code_flag(letters: str, short: set[str], valued: set[str]) -> tuple[bool, str]:
    """Whether a cluster of short flags (`Ic`, `pe`, `cimport os` with the code attached) holds a code flag before
    any flag whose value is attached (`MEncode`, `Wignore`); and the flag that ends the cluster when its value is
    the next word (`-o` of `bash -euo pipefail -c`), else ""."""
    for i, letter in enumerate(letters):
        if letter in short:
            return True, ""
        if letter in valued:
            return False, letter if i == len(letters) - 1 else ""
        if not letter.isalpha():
            return False, ""
    return False, ""


#: PowerShell parameters (any unambiguous prefix is accepted, `-` or `/`): those that take code, those that take
#: a value, and the ones that end the parameters (`-File`: a script file, the local-program case)
_PS_CODE = ("command", "encodedcommand", "commandwithargs")
_PS_CODE_ALIASES = frozenset({"c", "e", "ec", "enc", "cwa"})
_PS_VALUED = (
    "executionpolicy",
    "windowstyle",
    "configurationname",
    "inputformat",
    "outputformat",
    "psconsolefile",
    "version",
    "workingdirectory",
    "settingsfile",
    "custompipename",
    "encodedarguments",
)
_PS_VALUED_ALIASES = frozenset({"ep", "ex", "w", "wd", "if", "of", "v", "config"})


def _powershell(program: str, rest: list[str]) -> str | None:
    skip = False
    for word in rest:
        if skip:
            skip = False
            continue
        if word.startswith(("-", "/")) and len(word) > 1:
            name = word.lstrip("-/").split(":", 1)[0].lower()
            if name in _PS_CODE_ALIASES or (
                len(name) >= 2 and any(p.startswith(name) for p in _PS_CODE) and not "executionpolicy".startswith(name)
            ):
                return f"{program} runs code given on its command line ({word[:16]})"
            if name in ("f", "file") or (len(name) >= 2 and "file".startswith(name)):
                return None
            skip = name in _PS_VALUED_ALIASES or (len(name) >= 2 and any(p.startswith(name) for p in _PS_VALUED))
            continue
        # the first word that is no parameter: Windows PowerShell runs it as -Command, pwsh as -File
        if program == "powershell" and not word.lower().endswith(".ps1"):
            return f"{program} runs the command text {word[:40]!r}"
        return None
    return None


def _package(program: str, rest: list[str]) -> Risk | None:
    if program not in _data()["package_runners"]:
        return None
    if program == "cargo":
        remote = _flag_values(rest, ("--git",))
        return Risk("critical", f"cargo builds and installs code from {remote[0]}") if remote else None
    if program in ("docker", "podman"):
        return _container(program, rest)
    words = [w for w in rest if not w.startswith("-")]
    if program == "bun":  # `bun x pkg` is bunx; `bun run file` runs a local file
        if words[:1] != ["x"]:
            return None
        words = words[1:]
    if program == "uv":  # `uv tool run pkg` is uvx; `uv run --with pkg ...` fetches pkg for the run
        if words[:2] == ["tool", "run"]:
            words = words[2:]
        elif words[:1] == ["run"]:
            remote = [v for v in _flag_values(rest, ("--with",)) if _REMOTE_SPEC.search(v)]
            return Risk("critical", f"uv fetches and runs code from {remote[0]}") if remote else None
        else:
            return None
    if program == "go":  # `go run module/path@version` fetches the module
        spec = words[1] if words[:1] == ["run"] and len(words) > 1 else ""
        if "@" not in spec or "." not in spec.split("/", 1)[0]:
            return None
        if _PINNED.search(spec):
            return Risk("info", f"go runs the pinned module {spec}")
        return Risk("medium", f"go fetches and runs {spec} at whatever version is current")
    if program in ("npm", "pnpm", "yarn") and words[:1] in (["exec"], ["dlx"], ["x"]):
        words = words[1:]
    elif program in ("npm", "pnpm", "yarn"):
        return None
    if program == "deno" and words[:1] == ["run"]:
        words = words[1:]
    for index in _flag_values(rest, _INDEX_FLAGS):
        if index and not re.match(
            r"^https://(?:registry\.npmjs\.org|pypi\.org|files\.pythonhosted\.org)(?:/|$)", index
        ):
            return Risk("high", f"{program} fetches the package from {index}, an index the config chooses")
    for flag_value in _flag_values(rest, ("--from", "--with", "--package", "-p", "--spec")):
        if _REMOTE_SPEC.search(flag_value):
            return Risk("critical", f"{program} fetches and runs code from {flag_value}")
    spec = words[0] if words else ""
    if not spec:
        return None
    if _REMOTE_SPEC.search(spec) and not spec.startswith("@"):
        return Risk("critical", f"{program} fetches and runs code from {spec}")
    if _PINNED.search(spec):
        return Risk("info", f"{program} runs the pinned package {spec}")
    return Risk("medium", f"{program} fetches and runs {spec} at whatever version is current")


#: options that choose where a package runner fetches from (npm's registry, uv's and pip's index)
_INDEX_FLAGS = (
    "--registry",
    "--index-url",
    "-i",
    "--extra-index-url",
    "--index",
    "--default-index",
    "--find-links",
    "-f",
)


def _container(program: str, rest: list[str]) -> Risk | None:
    """`docker run` / `podman run`: the host it reaches (privileged, the host's root or home, the Docker socket)
    and the image it fetches."""
    if not rest or rest[0] != "run":
        return None
    valued = set(_data()["container_value_options"])
    image = ""
    mounts: list[str] = []
    privileged = False
    i = 1
    while i < len(rest):
        word = rest[i]
        name, eq, value = word.partition("=")
        if word == "--privileged" or word.startswith("--privileged="):
            privileged = value.lower() != "false" if eq else True
        elif name == "--cap-add" and (value if eq else (rest[i + 1] if i + 1 < len(rest) else "")).upper().removeprefix(
            "CAP_"
        ) in ("ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH"):
            privileged = True
            i += 0 if eq else 1
        elif name in valued:
            if not eq:
                value = rest[i + 1] if i + 1 < len(rest) else ""
                i += 1
            if name in ("-v", "--volume", "--mount"):
                mounts.append(value)
        elif not word.startswith("-"):
            image = word
            break
        i += 1
    if privileged:
        return Risk("critical", f"{program} runs a privileged container (the host's devices and kernel)")
    for mount in mounts:
        source = mount.split(",source=")[-1].split(",src=")[-1] if mount.startswith("type=") else mount
        source = source.split(",")[0].removeprefix("source=").removeprefix("src=")
        drive = re.match(r"^[A-Za-z]:[\\/][^:]*", source)  # `C:\\:/host`: the drive letter's colon is no separator
        source = drive.group(0) if drive else source.split(":")[0]
        if _HOST_MOUNT.match(source):
            return Risk("critical", f"{program} gives the container the host's {source}")
    if not image:
        return None
    if _PINNED.search(image):
        return Risk("info", f"{program} runs the pinned image {image}")
    return Risk("medium", f"{program} fetches and runs {image} at whatever version is current")


def _flag_values(words: list[str], flags: tuple[str, ...]) -> list[str]:
    out = []
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name in flags:
            out.append(value if eq else (words[i + 1] if i + 1 < len(words) else ""))
    return out


def risk(command: Any, args: Any = None) -> Risk:
    """The severity of running this command from a config (see the module docstring)."""
    words = argv(command, args)
    joined = " ".join(words)
    if DOWNLOAD_EXEC.search(joined):
        return Risk("critical", "downloads and runs code")
    if _HEREDOC.search(joined):
        return Risk("critical", "runs code written into a here-document")
    if _PIPE_EXEC.search(joined):
        return Risk("critical", "runs code piped into an interpreter")
    if EXFIL.search(joined):
        return Risk("critical", "sends credentials or the environment over the network")
    if _DATA_URL.search(joined):
        return Risk("critical", "runs code given as a data: URL")
    if re.search(r"\bpip3?\s+install\b[^;&|]*(?:git\+|https?://)", joined):
        return Risk("critical", "installs and runs a package from a URL")
    words = _strip_wrappers(words)
    if not words:
        return Risk("low", "runs a program")
    share = next((w for w in words if _UNC.match(w)), None)
    if share is not None:
        return Risk("critical", f"runs a program from a network share ({share[:60]})")
    program = _program(words[0])
    why = _inline(program, words[1:]) or _program_options(program, words[1:])
    if why:
        return Risk("critical", why)
    inner = _runner(program, words[1:])
    if inner is not None and inner.severity == "critical":
        return inner
    package = _package(program, words[1:])
    if package:
        return package
    return Risk("low", f"runs {' '.join(words[:2])}")


def _runner(program: str, rest: list[str]) -> Risk | None:
    """The command line a runner runs (`uv run [options] CMD ...`): its risk, trying each of the first words after
    the subcommand as the start of the command (the runner's options and their values come first)."""
    subcommands = _data()["runner_subcommands"].get(program)
    if not subcommands or not rest or rest[0] not in subcommands:
        return None
    tail = rest[1:]
    starts = [i for i, w in enumerate(tail) if not w.startswith("-")][:4]
    for i in starts:
        found = risk(tail[i:])
        if found.severity == "critical":
            return Risk("critical", f"{program} {rest[0]}: {found.why}")
    return None


@cache
def _git_programs() -> tuple[re.Pattern[str], ...]:
    data: dict[str, Any] = load("git")
    return tuple(re.compile(p, re.I) for p in data["config_programs"])


def _program_options(program: str, rest: list[str]) -> str | None:
    """Options that make a program run another one: `git -c core.fsmonitor=...`, `ssh -o ProxyCommand=...`, an
    `ext::` transport; `npm install <url or git repo>` (its install scripts run)."""
    if program == "git":
        for i, word in enumerate(rest):
            setting = rest[i + 1] if word == "-c" and i + 1 < len(rest) else word[2:] if word.startswith("-c") else ""
            key, eq, value = setting.partition("=")
            bool_like = value.strip().lower() in ("", "true", "false", "yes", "no", "on", "off", "0", "1")
            if eq and not bool_like and any(p.fullmatch(key.strip()) for p in _git_programs()):
                return f"git -c {key} makes git run {value[:60]!r}"
            if re.match(r"^(?:ext|fd)::", word, re.I) or (key.lower() == "protocol.ext.allow" and value == "always"):
                return "git uses a command as its transport (ext::)"
    if program == "find":  # `find . -exec sh -c '...' \;`
        for i, word in enumerate(rest):
            if word in ("-exec", "-execdir", "-ok", "-okdir"):
                inner = list(itertools.takewhile(lambda w: w not in (";", "\\;", "+"), rest[i + 1 :]))
                found = risk(inner) if inner else None
                if found is not None and found.severity == "critical":
                    return f"find {word} runs: {found.why}"
    if program in ("ssh", "scp", "sftp"):
        for i, word in enumerate(rest):
            option = rest[i + 1] if word == "-o" and i + 1 < len(rest) else word[2:] if word.startswith("-o") else ""
            m = re.match(r"^\s*(ProxyCommand|LocalCommand|KnownHostsCommand)\s*[= ]\s*(.+)$", option, re.I)
            if m and m.group(2).strip().lower() != "none" and risk(m.group(2)).severity == "critical":
                return f"{program} runs its {m.group(1)}: {risk(m.group(2)).why}"
    if program in ("npm", "pnpm", "yarn", "bun") and rest[:1] and rest[0] in ("install", "i", "add", "ci"):
        remote = [w for w in rest[1:] if not w.startswith(("-", "@")) and _REMOTE_SPEC.search(w)]
        if remote:
            return f"{program} installs {remote[0]} and runs its install scripts"
    return None
