"""Codex CLI's project config (`.codex/config.toml`), `.env` files that redirect an agent's home, aider's config.

    [mcp_servers.NAME] command/args/env/url      servers Codex starts (checked as every MCP config is)
    sandbox_mode, approval_policy                 "danger-full-access", "never": commands run unasked
    [model_providers.NAME] base_url, env_key      the model API (and the key named by env_key) sent elsewhere

CVE-2025-61260: Codex CLI before 0.23.0 read `.env` from the working directory, so a repository's
`CODEX_HOME=./.codex` made it load the repository's own config and start its MCP servers without a prompt.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import yaml

from owstack.security.config_scan import hooks, mcp
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, destination, env_data, env_risk
from owstack.security.egress.addresses import address_problem, name_problem
from owstack.security.egress.urls import URLRejected, parse
from owstack.security.findings import Finding, Severity, finding

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")


def check_codex(src: ScanFile) -> list[Finding]:
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed TOML ({exc})")]
    out = mcp.check(src, data) + hooks.check_notify(src, data)
    profiles = data.get("profiles")
    scopes: list[tuple[tuple[str, ...], Any]] = [((), data)]
    scopes += [(("profiles", str(n)), p) for n, p in profiles.items()] if isinstance(profiles, dict) else []
    for where, scope in scopes:  # a profile's settings apply when it is chosen (`profile = "..."`, `--profile`)
        for key, bad in (("sandbox_mode", "danger-full-access"), ("approval_policy", "never")):
            if isinstance(scope, dict) and scope.get(key) == bad:
                named = ".".join((*where, key))
                message = f"`{named} = {bad!r}`: the agent runs commands without asking"
                out.append(finding("OWS-CX-002", src.rel, src.line(*where, key), message, executes=f"{named} = {bad}"))
    for key in ("experimental_instructions_file", "model_instructions_file", "developer_instructions"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            what = "the file" if key.endswith("_file") else "this text"
            message = f"`{key}` replaces or extends the agent's instructions with {what} from the repository"
            out.append(finding("OWS-CX-002", src.rel, src.line(key), message, executes=value[:200], severity="high"))
    policy = data.get("shell_environment_policy")
    env = policy.get("set") if isinstance(policy, dict) else None
    for key, value in env.items() if isinstance(env, dict) else []:
        found = env_risk(str(key), value)
        if found is not None and found.severity in ("high", "critical") and found.kind != "tls":
            message = f"`shell_environment_policy.set`: every command the agent runs gets {found.message}"
            line = src.line("shell_environment_policy", "set", str(key))
            out.append(
                finding("OWS-CX-002", src.rel, line, message, executes=f"{key}={value}", severity=found.severity)
            )
    providers = data.get("model_providers")
    for name, spec in providers.items() if isinstance(providers, dict) else []:
        if isinstance(spec, dict) and isinstance(spec.get("base_url"), str):
            out += _provider(src, name, spec)
    return out + _otel(src, data.get("otel"))


def _otel(src: ScanFile, otel: Any) -> list[Finding]:
    """Codex's `[otel] exporter = { otlp-http|otlp-grpc = { endpoint = ... } }`: every session's events (the prompts
    too with `log_user_prompt = true`) sent to an endpoint off this machine (OWS-HK-003, as Gemini's telemetry)."""
    exporter = otel.get("exporter") if isinstance(otel, dict) else None
    out: list[Finding] = []
    for kind, spec in exporter.items() if isinstance(exporter, dict) else []:
        endpoint = spec.get("endpoint") if isinstance(spec, dict) else None
        if not isinstance(endpoint, str) or destination(endpoint) == "local":
            continue
        prompts = ", prompts included" if otel.get("log_user_prompt") is True else ""
        message = f"`otel.exporter.{kind}.endpoint` sends every session's events{prompts} to {endpoint!r}"
        out.append(finding("OWS-HK-003", src.rel, src.line("otel", "endpoint"), message, executes=endpoint))
    return out


def _provider(src: ScanFile, name: str, spec: dict[str, Any]) -> list[Finding]:
    url = spec["base_url"]
    try:
        target = parse(url)
    except URLRejected:
        local = False
    else:
        problem = address_problem(target.ip) if target.ip is not None else (name_problem(target.host) or (0, None))[1]
        local = problem is not None and ("loopback" in problem or "localhost" in problem)
    if local:
        return []  # a gateway on this machine (owstack itself, say)
    key = spec.get("env_key")
    message = f"model provider {name!r} sends prompts and code to {url}"
    severity: Severity = "high"
    if key:
        message += f" with the key in ${key}"
        severity = "critical"
    line = src.line("model_providers", name, "base_url")
    return [finding("OWS-CX-002", src.rel, line, message, executes=url, severity=severity)]


def agent_homes() -> set[str]:
    """Variables that move an agent's configuration home (`security/data/env_vars.yaml`, `agent_homes`)."""
    return {str(v).upper() for v in env_data().get("agent_homes", [])}


def check_dotenv(src: ScanFile) -> list[Finding]:
    out = []
    for number, text in enumerate(src.text.splitlines(), start=1):
        m = _ENV_LINE.match(text)
        if m is None or m.group("key").upper() not in agent_homes():
            continue
        value = m.group("value").strip().strip("'\"")
        if value.startswith(("/", "~", "$HOME", "${HOME}")) and ".." not in value:
            continue  # an absolute home outside the checkout: not the repository's own config
        message = f"`{m.group('key')}={value}` makes the agent read its config from the repository"
        out.append(finding("OWS-CX-001", src.rel, number, message, executes=text.strip()))
    return out


def _yaml(src: ScanFile) -> Any | Finding:
    """The file read as YAML, or the OWS-SCAN-001 finding that says why it was skipped."""
    try:
        return yaml.safe_load(src.text)
    except yaml.constructor.ConstructorError:
        pass  # a tag PyYAML does not know (`command: !x bash`): JavaScript's yaml keeps the plain value, so do we
    except yaml.YAMLError as exc:
        return finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed YAML ({exc})")
    try:
        return yaml.load(src.text, Loader=_TagTolerantLoader)
    except yaml.YAMLError as exc:
        return finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed YAML ({exc})")


class _TagTolerantLoader(yaml.SafeLoader):
    """SafeLoader that reads a node with an unknown tag as the plain value under the tag."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TagTolerantLoader.add_multi_constructor("!", _untagged)
_TagTolerantLoader.add_multi_constructor("tag:", _untagged)


def check_aider(src: ScanFile) -> list[Finding]:
    data = _yaml(src)
    if isinstance(data, Finding):
        return [data]
    out: list[Finding] = []
    for key in ("lint-cmd", "test-cmd"):
        values = data.get(key) if isinstance(data, dict) else None
        for value in values if isinstance(values, list) else [values] if values else []:
            command = str(value).split(":", 1)[1].strip() if re.match(r"^\w+:\s", str(value)) else str(value)
            try:
                words = shlex.split(command)
            except ValueError:
                words = command.split()
            danger = risk(words[0], words[1:]) if words else risk(command)
            severity: Severity = "low"  # a tool called by name (`ruff check`, `pytest`): the usual case
            if danger.severity == "critical":
                severity = "critical"
            elif words and ("/" in words[0] or words[0].startswith(".")):
                severity = "high"  # a program the repository itself ships
            message = f"`{key}` runs a command: {danger.why}"
            executes = command_line(command)
            out.append(finding("OWS-AID-001", src.rel, src.line(key), message, executes=executes, severity=severity))
    return out + (_aider_traffic(src, data) if isinstance(data, dict) else [])


_CREDENTIAL_FILE = re.compile(
    r"(?:^|[/\\])(?:\.ssh|\.aws|\.kube|\.gnupg|\.docker|\.netrc|\.git-credentials|\.npmrc|\.pypirc|\.config/gcloud|"
    r"\.config/gh|\.claude|\.codex|id_rsa|id_ed25519|id_ecdsa|credentials(?:\.json)?)(?:[/\\]|$)|^/etc/(?:passwd|shadow)$"
)


def _aider_traffic(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    """`*-api-base` and `set-env` base URLs off this machine (the model traffic and the key sent there), and `read`/
    `file` entries that name credential files (put into every request)."""
    out: list[Finding] = []
    settings: list[tuple[str, str, Any]] = [
        (key, key.replace("-", "_").upper(), value) for key, value in data.items() if str(key).endswith("api-base")
    ]
    given = data.get("set-env")
    for item in given if isinstance(given, list) else [given] if isinstance(given, str) else []:
        name, _, value = str(item).partition("=")
        settings.append(("set-env", name.strip(), value.strip()))
    for key, variable, value in settings:
        if not isinstance(value, str) or not value.strip():
            continue
        found = env_risk(variable if variable.endswith(("BASE", "URL")) else f"{variable}_BASE_URL", value)
        if found is None or found.kind != "redirect" or destination(value) != "elsewhere":
            continue
        message = f"`{key}` sends prompts, code and the user's key to {value!r} (off this machine, no known provider)"
        out.append(finding("OWS-AID-002", src.rel, src.line(key), message, executes=f"{variable}={value}"))
    for key in ("read", "file"):
        values = data.get(key)
        for value in values if isinstance(values, list) else [values] if isinstance(values, str) else []:
            path = str(value).strip()
            if path.startswith(("~", "/", "$")) and _CREDENTIAL_FILE.search(path.replace("\\", "/")):
                message = f"`{key}` puts {path!r} into every request aider sends"
                line = src.line(key)
                out.append(finding("OWS-AID-002", src.rel, line, message, executes=path, severity="high"))
    return out


def check_aider_models(src: ScanFile) -> list[Finding]:
    """`.aider.model.settings.yml`: a list of models, each with `extra_params` passed to every completion call
    (litellm's `api_base`/`base_url` among them): an endpoint off this machine at no known provider receives the
    prompts, the code and the key of that model's provider (critical, as `*-api-base` in `.aider.conf.yml`)."""
    data = _yaml(src)
    if isinstance(data, Finding):
        return [data]
    out: list[Finding] = []
    for entry in data if isinstance(data, list) else []:
        params = entry.get("extra_params") if isinstance(entry, dict) else None
        for key, value in params.items() if isinstance(params, dict) else []:
            if str(key).lower() not in ("api_base", "base_url", "api_url") or not isinstance(value, str):
                continue
            if not value.strip() or destination(value) != "elsewhere":
                continue
            model = str(entry.get("name", "?"))
            message = f"model {model!r}: `extra_params.{key}` sends prompts, code and the provider key to {value!r}"
            message += " (off this machine, no known provider)"
            out.append(finding("OWS-AID-002", src.rel, src.line(model, str(key)), message, executes=value))
    return out


def check_yaml_mcp(src: ScanFile) -> list[Finding]:
    """An MCP config written in YAML (Continue's `config.yaml`, `.continue/mcpServers/*.yaml`)."""
    data = _yaml(src)
    return [data] if isinstance(data, Finding) else mcp.check(src, data)
