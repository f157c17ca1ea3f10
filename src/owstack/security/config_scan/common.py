"""What the config checkers share: the file being checked, secret and dangerous-variable tests."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owstack.security.guard.types import redact
from owstack.security.jsonc import Document

#: environment variables that make programs load other code or trust other certificates
EXEC_ENV = frozenset(
    {
        "NODE_OPTIONS",
        "NODE_PATH",
        "NODE_EXTRA_CA_CERTS",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONWARNINGS",
        "PATH",
        "BASH_ENV",
        "ENV",
        "ZDOTDIR",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "RUBYLIB",
        "GIT_SSH_COMMAND",
        "GIT_SSH",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_PARAMETERS",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "SHELL",
        "PROMPT_COMMAND",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "DOTNET_STARTUP_HOOKS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "CLAUDE_CODE_SHELL_PREFIX",
        "CLAUDE_CODE_GIT_BASH_PATH",
    }
)
_URL_ENV = re.compile(r"(?:_BASE_URL|_API_URL|_ENDPOINT|_API_BASE|_HOST|^(?:HTTPS?|ALL|NO)_PROXY)$", re.I)
_SECRET_KEY = re.compile(
    r"(?:API_?KEY|AUTH_?TOKEN|ACCESS_?TOKEN|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|"
    r"PRIVATE_?KEY|ACCESS_?KEY(?:_ID)?|BEARER|AUTHORIZATION|COOKIE)$",
    re.I,
)
_SECRET_VALUE = re.compile(
    r"^(?:Bearer\s+)?(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|"
    r"github_pat_\w{30,}|glpat-[A-Za-z0-9_-]{20}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|"
    r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
)
_REFERENCE = re.compile(
    r"^\s*(?:(?:Bearer|Basic|token)\s+)?(?:\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*|\{\{[^}]+\}\}|<[^>]+>|\*+|x{4,}|\.{3}|"
    r"your[-_ ].*|changeme|placeholder|example.*|dummy.*|test)\s*$",
    re.I,
)
SHELLS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "fish", "cmd", "cmd.exe", "powershell", "powershell.exe", "pwsh", "pwsh.exe"}
)
INTERPRETERS = frozenset({"python", "python3", "node", "perl", "ruby", "php", "deno", "bun", "osascript"})
_INLINE_FLAGS = frozenset(
    {"-c", "/c", "/k", "-command", "-encodedcommand", "-enc", "-e", "--eval", "-p", "--print", "-r", "eval"}
)
_DOWNLOAD_EXEC = re.compile(
    r"(?:curl|wget|iwr|invoke-webrequest|irm|invoke-restmethod)\b[^|;&]{0,300}\|\s*"
    r"(?:sudo\s+)?(?:ba|z|da|k)?sh\b|\|\s*iex\b|base64\s+(?:-d|--decode)",
    re.I,
)


@dataclass(frozen=True, slots=True)
class ScanFile:
    """One file being checked: its path relative to the scan root, its text and (for JSON) its document."""

    rel: str
    path: Path
    text: str
    doc: Document | None = None

    def line(self, *path: str | int) -> int:
        return self.doc.line(tuple(path)) if self.doc is not None else 1


def is_secret(key: str, value: Any) -> bool:
    """A literal credential: a known token format, or a secret-named key with a non-reference value."""
    if not isinstance(value, str) or not value.strip():
        return False
    if _SECRET_VALUE.match(value.strip()):
        return True
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE.match(value) and len(value.strip()) >= 8


def is_url_env(key: str) -> bool:
    return bool(_URL_ENV.search(key))


def mask(value: str) -> str:
    """A credential shown safely: its first 4 characters and its length."""
    v = value.strip()
    return f"{v[:4]}… ({len(v)} chars)"


def command_line(command: Any, args: Any = None) -> str:
    """A command and its arguments as one shell-quoted line, secrets masked."""
    parts: list[str] = []
    if isinstance(command, list):
        parts.extend(str(c) for c in command)
    elif command is not None:
        parts.append(str(command))
    if isinstance(args, list):
        parts.extend(str(a) for a in args)
    return redact(" ".join(shlex.quote(p) if (" " in p or not p) else p for p in parts))


def inline_code(command: Any, args: Any = None) -> str | None:
    """Why a command runs inline code (a shell -c, an interpreter -e, download-and-execute), or None."""
    parts = [str(c) for c in command] if isinstance(command, list) else [str(command or "")]
    parts += [str(a) for a in args] if isinstance(args, list) else []
    if not parts or not parts[0]:
        return None
    joined = " ".join(parts)
    if _DOWNLOAD_EXEC.search(joined):
        return "downloads and runs code"
    exe = Path(parts[0].split()[0] if " " in parts[0] else parts[0]).name.lower()
    flags = {p.lower() for p in parts[1:]}
    if len(parts) == 1 and " " in parts[0]:
        tokens = parts[0].split()
        exe, flags = Path(tokens[0]).name.lower(), {t.lower() for t in tokens[1:]}
    base = re.sub(r"[\d.]+$", "", exe.removesuffix(".exe")) or exe
    if (exe in SHELLS or base in SHELLS) and flags & _INLINE_FLAGS:
        return f"{exe} runs an inline script"
    if (exe in INTERPRETERS or base in INTERPRETERS) and flags & _INLINE_FLAGS:
        return f"{exe} runs inline code"
    return None
