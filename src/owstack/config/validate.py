"""Everything a config must pass before the gateway starts, in one place.

`owstack config check`, `owstack serve` and the application factory all call `validate`, so a file that
the check accepts is a file the gateway starts with. Loading already checked types and ranges (each
section's model) and the references between sections (`config/references.py`, run again here for a config
made some other way); this adds what needs the catalog, the environment or the listening address:

    secrets        every `env.NAME` reference is set
    backends       URLs are http(s) with a valid port and do not point at the gateway itself; catalog ids
                   exist; embedded model files exist and match their pinned SHA-256
    costs          hardware profiles (`hardware: 8xH100`), proprietary prices and counterfactual models
                   resolve in the catalog (the metering cost model is built here exactly as at start)
    storage        the database URL is one owstack can use; audit keys are kept apart from the log and
                   their material decodes
    exposure       the listening address exists; off loopback, keys are required (no tenants -> refuse)

All problems are collected and raised together as one `ConfigError`, one line per field.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel

from owstack.address import same_host
from owstack.catalog.models import model_card
from owstack.compliance.keys import AuditKeyError, load_secret, resolve_paths
from owstack.config import references
from owstack.config.load import Config
from owstack.errors import ConfigError
from owstack.metering.costs import Pricing
from owstack.storage.urls import check_url
from owstack.tenancy.openmode import open_mode_allowed

_SECRET_REF = re.compile(r"^env\.([A-Za-z_][A-Za-z0-9_]*)$")
#: "backends.x.hardware: hardware: unknown ..." -> the inner label repeats the field's last part
_REPEATED = re.compile(r"^(?P<field>[\w.:-]+): (?:hardware|api): ")
_HINTS = {
    ".hardware": "write COUNTxGPU with a catalog GPU, e.g. 8xH100 (owstack plan --help)",
    ".model": "use a model from `owstack plan --help` or price it under economics.prices",
}


@dataclass(frozen=True, slots=True)
class Checked:
    """A config that passed, the address it was checked for, and what to tell the user at start."""

    config: Config
    host: str
    port: int
    notes: tuple[str, ...]


def validate(config: Config, *, host: str | None = None, port: int | None = None) -> Checked:
    """Run every check for serving `config` on host:port (default: its `server:` section).

    Raises `ConfigError` listing every problem, each naming its field and how to fix it."""
    server = config.file.server
    host = server.host if host is None else host
    port = server.port if port is None else port
    problems = references.problems(config.file)
    if not 0 <= port <= 65535:
        problems.append(f"server.port: {port} is not a port; use 1-65535 (0 picks a free one)")
    problems += _listen_host(host)
    if server.probe_host is not None:
        problems += [p.replace("server.host", "server.probe_host") for p in _listen_host(server.probe_host)]
    if server.probe_port and server.probe_port == port:
        problems.append(f"server.probe_port: {port} is the main listener's port too; give the probes another")
    problems += _secrets(config)
    problems += _backends(config, host, port)
    problems += _costs(config)
    problems += _storage(config)
    exposure, notes = _exposure(config, host)
    problems += exposure
    if problems:
        raise ConfigError("\n".join([f"invalid config ({config.source}):", *(f"  {p}" for p in problems)]))
    return Checked(config=config, host=host, port=port, notes=notes)


def _listen_host(host: str) -> list[str]:
    """The address must be one this machine can bind: an IP literal, or a name that resolves."""
    name = host.strip("[]")
    try:
        ip_address(name)
        return []
    except ValueError:
        pass
    try:
        socket.getaddrinfo(name, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return [f"server.host: {host!r} is not an address to listen on; use an IP such as 127.0.0.1 or 0.0.0.0"]
    return []


def _secrets(config: Config) -> list[str]:
    out = []
    for field, value in _strings(config.file, ""):
        match = _SECRET_REF.match(value)
        if match and match.group(1) not in os.environ:
            out.append(f"{field}: environment variable {match.group(1)} is not set; export it before starting")
    return out


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(dotted field path, string) for every string in a section tree."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _strings(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _backends(config: Config, host: str, port: int) -> list[str]:
    out = []
    for name, section in config.file.backends.items():
        field = f"backends.{name}"
        if section.url is not None:
            out += _url(field, section.url, host, port)
        if section.catalog is not None:
            try:
                model_card(section.catalog)
            except ConfigError as exc:
                out.append(f"{field}.catalog: {exc}; see `owstack models`")
        if section.tokenizer is not None:
            from owstack.security.guard.token_sets import TokenSet

            try:
                TokenSet.from_path(section.tokenizer)
            except (OSError, ValueError) as exc:
                out.append(f"{field}.tokenizer: {exc}")
        if section.engine == "llamacpp":
            from owstack.backends.llamacpp import LlamaCppBackend  # numpy, jinja2: only for a llama.cpp backend

            which = "model_path" if section.model_path else "model"
            try:
                LlamaCppBackend.from_section(name, section).verify()
            except ConfigError as exc:
                message = str(exc).removeprefix(f"{field}.model: ").removeprefix(f"backend {name}: ")
                out.append(f"{field}.{which}: {message}")
    return out


def _url(field: str, url: str, host: str, port: int) -> list[str]:
    example = "e.g. http://gpu-host:8001/v1"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{field}.url: {url!r} is not an http(s) URL; {example}"]
    try:
        target = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return [f"{field}.url: {url!r} has no valid port (1-65535); {example}"]
    if port and target == port and same_host(parts.hostname, host):
        return [
            f"{field}.url: {url} is this gateway's own address ({host}:{port}), so it would call itself; "
            "serve the engine on another port (`owstack recipe` picks one) or move the gateway (--port)"
        ]
    return []


def _costs(config: Config) -> list[str]:
    try:
        Pricing.from_config(config)
    except ConfigError as exc:
        message = _REPEATED.sub(r"\g<field>: ", str(exc))
        hint = next((h for suffix, h in _HINTS.items() if message.split(":", 1)[0].endswith(suffix)), None)
        return [message + (f"; {hint}" if hint and "economics.prices" not in message else "")]
    return []


def _storage(config: Config) -> list[str]:
    out = []
    try:
        check_url(config.file.storage.url)
    except ConfigError as exc:
        out.append(str(exc))
    if config.file.audit.enabled:
        try:
            resolve_paths(config.file.audit)
        except ConfigError as exc:
            out.append(str(exc))
        out += _audit_keys(config)
    return out


def _audit_keys(config: Config) -> list[str]:
    """Key material the audit log will read at start: an `env.NAME` that decodes to 32 bytes, a key file
    that is private. Missing files are created at start, unset variables are reported by `_secrets`."""
    out = []
    section = config.file.audit
    for name in ("pseudonym_key", "signing_key", "master_key"):
        reference = getattr(section, name)
        if reference is None:
            continue
        match = _SECRET_REF.match(reference)
        if (match and match.group(1) not in os.environ) or (not match and not Path(reference).exists()):
            continue
        try:
            load_secret(reference, Path(reference), field=f"audit.{name}", create=False)
        except AuditKeyError as exc:
            out.append(f"{exc}; give 32 bytes as 64 hex digits or base64 (e.g. openssl rand -hex 32)")
    return out


def _exposure(config: Config, host: str) -> tuple[list[str], tuple[str, ...]]:
    allowed, sentence = open_mode_allowed(config, host)
    if config.file.tenants:
        return [], ()
    if not allowed:
        return [f"server.host: {sentence}"], ()
    return [], (sentence,)
