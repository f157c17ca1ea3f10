"""What the config checkers share: the file being checked, secret and dangerous-variable tests."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from owstack.security.data_files import load
from owstack.security.egress.addresses import address_problem, name_problem
from owstack.security.egress.urls import URLRejected, parse
from owstack.security.findings import Severity
from owstack.security.guard.types import redact
from owstack.security.jsonc import Document

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


@dataclass(frozen=True, slots=True)
class ScanFile:
    """One file being checked: its path relative to the scan root, its text and (for JSON) its document."""

    rel: str
    path: Path
    text: str
    doc: Document | None = None

    def line(self, *path: str | int) -> int:
        """The line of the value at `path` (JSON), or, in a file read another way (TOML, YAML), the line where
        the path's names occur in order (1 if they do not)."""
        if self.doc is not None:
            return self.doc.line(tuple(path))
        at, found = 0, 0
        for name in path:
            if isinstance(name, str) and (i := self.text.find(name, at)) >= 0:
                at, found = i, i
        return self.text.count("\n", 0, found) + 1

    @property
    def root(self) -> Path:
        """The scan root: the folder `rel` is relative to."""
        path = self.path.absolute()
        for _ in range(len(PurePosixPath(self.rel).parts)):
            path = path.parent
        return path


def is_secret(key: str, value: Any) -> bool:
    """A literal credential: a known token format, or a secret-named key with a non-reference value."""
    if not isinstance(value, str) or not value.strip():
        return False
    if _SECRET_VALUE.match(value.strip()):
        return True
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE.match(value) and len(value.strip()) >= 8


@dataclass(frozen=True, slots=True)
class EnvRisk:
    kind: str  # redirect | tls | exec
    severity: Severity
    message: str


@cache
def env_data() -> dict[str, Any]:
    data: dict[str, Any] = load("env_vars")
    return data


def env_risk(key: str, value: Any) -> EnvRisk | None:
    """What setting `key=value` for the agent's or editor's processes lets a repository do, or None.
    (Secrets are a separate question: `is_secret`.)"""
    data = env_data()
    text = "" if value is None else str(value)
    upper = key.upper()
    if upper in {k.upper() for k in data["tls"]}:
        if upper in ("NODE_TLS_REJECT_UNAUTHORIZED", "PYTHONHTTPSVERIFY", "NPM_CONFIG_STRICT_SSL") and text.strip() in (
            "1",
            "true",
        ):
            return None
        return EnvRisk("tls", "high", f"`{key}` turns TLS verification off or replaces the trusted CAs")
    if upper in {str(v).upper() for v in data["index_vars"]}:  # a package index: judged as a config's index is
        index = index_variable(key, text)
        return None if index is None else EnvRisk("redirect", index[0], f"`{key}`: {index[1]}")
    if any(re.search(p, key) for p in data["redirect_patterns"]) and re.search(r"[a-z0-9]", text, re.I):
        severity: Severity = "low"
        if any(re.search(p, key) for p in data["critical_redirect_patterns"]):
            severity = "critical"
        elif any(re.search(p, key) for p in data["high_redirect_patterns"]):
            severity = "high"
        target = redact(text)[:120]
        return EnvRisk("redirect", severity, f"`{key}` sends traffic to {target!r}")
    hot = any(marker in text for marker in data["exec_values"])
    if upper in {k.upper() for k in data["exec"]} or (hot and upper in {k.upper() for k in data["exec_if_value"]}):
        return EnvRisk("exec", "critical" if hot else "high", f"`{key}` changes what every command loads or runs")
    return None


def destination(url: str) -> str:
    """Where a URL-valued setting sends traffic: `local` (this machine), `provider` (a model API host listed in
    `env_vars.yaml` `model_hosts`), or `elsewhere`."""
    try:
        target = parse(url.strip().strip("'\""))
    except URLRejected:
        return "elsewhere"
    problem = address_problem(target.ip) if target.ip is not None else (name_problem(target.host) or (0, None))[1]
    if problem is not None and ("loopback" in problem or "localhost" in problem):
        return "local"
    host = (target.host or "").lower().rstrip(".")
    for known in env_data().get("model_hosts", []):
        known = str(known).lower()
        if host == known or (known.startswith("*.") and host.endswith(known[1:])):
            return "provider"
    return "elsewhere"


def model_endpoints(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, URL) of every model-API endpoint setting in a tree: keys named like `apiBase`, `api_base`, `api_url`,
    `baseURL`, `base_url`, `endpoint`, `overrideProxyUrl`, `overrideCAPIUrl` whose value is an http(s) URL. Each
    container is visited once (YAML aliases share them: a billion-laughs file is not walked a billion times)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(node, path)]
    while stack and len(seen) < 100_000:
        current, at = stack.pop()
        if id(current) in seen or len(at) > 32:
            continue
        seen.add(id(current))
        items = (
            current.items() if isinstance(current, dict) else enumerate(current) if isinstance(current, list) else []
        )
        for key, value in items:
            if isinstance(value, str) and isinstance(key, str) and _ENDPOINT_KEY.search(key) and _HTTP.match(value):
                out.append(((*at, key), value.strip()))
            elif isinstance(value, dict | list):
                stack.append((value, (*at, key)))
    return out


_ENDPOINT_KEY = re.compile(
    r"(?:^|[._])(?:api_?base|api_?url|base_?url|endpoint|override(?:proxy|capi)url|apiendpoint)$", re.I
)
_HTTP = re.compile(r"^https?://", re.I)


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


#: registries and indexes everyone uses: packages from them are the ones the lockfile and the world expect
_PUBLIC_INDEXES = re.compile(
    r"^https://(?:registry\.npmjs\.org|registry\.yarnpkg\.com|registry\.npmmirror\.com|npm\.pkg\.github\.com|"
    r"pypi\.org|test\.pypi\.org|files\.pythonhosted\.org|download\.pytorch\.org|pypi\.nvidia\.com|"
    r"data\.pyg\.org|repo\.anaconda\.com|conda\.anaconda\.org|pypi\.ngc\.nvidia\.com)(?::443)?(?:/|$)",
    re.I,
)


def index_problem(url: str, scoped: bool = False) -> tuple[Severity, str] | None:
    """(severity, why) of a registry or package index a repository's config sets, or None. Every `npm install`,
    `uv sync` or `pip install` an agent runs then fetches packages (and runs their install scripts or build
    backends) from it: over plain http (anyone on the path swaps them) high; another https host low (private
    registries are common and a benign project's choice; the finding says where code comes from); this machine
    and the public registries nothing."""
    value = url.strip().strip("'\"")
    if not value or _PUBLIC_INDEXES.match(value) or destination(value) == "local":
        return None
    if value.lower().startswith("http://"):
        return "high", f"packages come over plain http from {value} (anyone on the path can replace them)"
    if scoped:
        return "low", f"packages of one scope come from {value}"
    return "low", f"packages come from {value}, a registry the repository chooses"


def index_variable(key: str, value: Any) -> tuple[Severity, str] | None:
    """(severity, why) of an environment variable that chooses the package index or registry installs use
    (`PIP_INDEX_URL`, `UV_INDEX_URL`, `npm_config_registry`: `index_vars` in `env_vars.yaml`), judged as the index of
    a package manager's config is (`index_problem`), or None for any other variable."""
    if key.upper() not in {str(v).upper() for v in env_data()["index_vars"]} or not isinstance(value, str):
        return None
    found = None
    for url in value.split():  # PIP_EXTRA_INDEX_URL and UV_INDEX hold several, space-separated
        problem = index_problem(url.split("=", 1)[-1] if "=" in url.split("://", 1)[0] else url)
        if problem is not None and (found is None or problem[0] == "high"):
            found = problem
    return found
