"""The `mcp:` config section: upstream MCP servers, per-tenant tool policy, pinning and the egress proxy.

```yaml
mcp:
  servers:
    files: {command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/docs], jurisdiction: local}
    tickets: {url: "https://mcp.internal.example/mcp", headers: {authorization: env.TICKETS_TOKEN}}
  tenants:
    acme-eu: {allow: ["files.*", "tickets.search"], results: redact, secrets: block}
  pin: manual            # manual: every new or changed definition waits for `owstack mcp approve`
  call_timeout_s: 60
  proxy: {enabled: true, port: 8899, tenants: {acme-eu: {allow_hosts: ["*.github.com"]}}}
```

A stdio server's process gets only the variables its `env` names (values: literals or `env.NAME`
references), plus `PATH`, `HOME`, `LANG` and, when the proxy runs, `HTTP_PROXY`/`HTTPS_PROXY`; its command
line is the configured list, never anything a client sends. An HTTP server is reached through the egress
policy of `security.egress` (private and metadata addresses refused unless `allow_networks` lists them).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from owstack.config.base import FilePath, Section
from owstack.security.config import EgressSection

#: a server name: the prefix of its tools (`files.read_file`), so no dots
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_REF = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")
_GLOB = re.compile(r"^[A-Za-z0-9_.*?/:-]{1,200}$")
#: what a check does with a finding: record it, mask the matched text, or refuse the message
Action = Literal["flag", "redact", "block"]
#: always passed to a stdio server (the rest of owstack's environment never is)
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class UpstreamSection(Section):
    """One upstream MCP server: a command to start (stdio) or a URL (Streamable HTTP, or SSE)."""

    #: argv of a stdio server; started and supervised by owstack (never through a shell)
    command: tuple[str, ...] | None = None
    #: working directory of the stdio process (relative: to the config file's folder)
    cwd: FilePath | None = None
    #: variables passed to the stdio process: NAME: value, NAME: env.OTHER, or NAME: null (owstack's own value)
    env: dict[str, str | None] = {}
    url: str | None = None
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    #: the protocol revision asked of the server: auto (2026-07-28 when it serves it, else the handshake),
    #: legacy (the 2025 handshake and sessions), or 2026-07-28
    protocol: Literal["auto", "legacy", "2026-07-28"] = "auto"
    #: tools/call and tools/list on owstack's lean HTTP lane (Streamable HTTP servers); false: on the SDK client
    lean: bool = True
    #: HTTP headers sent upstream (values: literals or env.NAME references)
    headers: dict[str, str] = {}
    jurisdiction: str = "local"
    #: seconds a call may take before it is cancelled upstream and answered with a timeout error
    timeout_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    #: pin policy of this server's tools (default: mcp.pin)
    pin: Literal["auto", "manual"] | None = None
    #: private networks this server may be reached on (CIDR), beyond security.egress.allow_networks;
    #: cloud metadata addresses stay refused whatever this says
    allow_networks: tuple[str, ...] = ()

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network in CIDR form, e.g. 10.0.0.0/8") from None
        return v

    @model_validator(mode="after")
    def _one_transport(self) -> UpstreamSection:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either `command` (a stdio server) or `url` (an HTTP server), not both")
        if self.command is not None and not self.command:
            raise ValueError("command: needs at least the program to run")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ValueError("url: must start with http:// or https://")
        if self.url is None and self.headers:
            raise ValueError("headers: only for an HTTP server (`url`)")
        return self

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for name, value in v.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if value is not None and value.startswith("env.") and not _SECRET_REF.match(value):
                raise ValueError(f"{name}: an environment reference looks like env.NAME")
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not re.match(r"^[A-Za-z0-9-]{1,64}$", name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            if value.startswith("env.") and not _SECRET_REF.match(value):
                raise ValueError(f"{name}: an environment reference looks like env.NAME")
        return {k.lower(): val for k, val in v.items()}


class TenantToolPolicy(Section):
    """What one tenant may call, and what happens to findings in its tool traffic."""

    #: tool names it may see and call, as globs over `server.tool` (`files.*`, `tickets.search`)
    allow: tuple[str, ...] = ()
    #: an injection found in a tool result: flag (recorded), redact (the passage masked) or block
    results: Action = "flag"
    #: a secret (API key, private key, token) in arguments or results
    secrets: Action = "block"

    @field_validator("allow")
    @classmethod
    def _globs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            if not _GLOB.match(item):
                raise ValueError(f"{item!r} is not a tool glob such as files.* or tickets.search")
        return v


class ProxyPolicy(Section):
    """A narrower egress policy on the proxy for one tenant (or one stdio server): host lists in the forms of
    `security.egress` (`example.com`, `*.example.com`), applied on top of it (its lists and address rules
    still hold)."""

    #: when non-empty, only these hosts (and, if security.egress.allow_hosts is set, only those in both)
    allow_hosts: tuple[str, ...] = ()
    #: never these hosts, beside security.egress.deny_hosts
    deny_hosts: tuple[str, ...] = ()

    @field_validator("allow_hosts", "deny_hosts")
    @classmethod
    def _hosts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return EgressSection(allow_hosts=v).allow_hosts
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


class ProxySection(Section):
    """The egress forward proxy run inside `owstack serve` (and by `owstack egress proxy`)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8899
    #: bytes a response (decompressed, for plain HTTP) or a CONNECT tunnel may carry before it is cut
    max_bytes: Annotated[int, Field(ge=1)] | None = None
    #: seconds a connection may stay open (default: security.egress.timeout_s)
    timeout_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    #: who may use the proxy: required (an owstack key in Proxy-Authorization, or a stdio server's own
    #: credentials), none (anyone who can connect, under security.egress), auto (required when tenants exist)
    auth: Literal["auto", "required", "none"] = "auto"
    #: per-tenant policies, for clients that authenticate with the tenant's owstack key
    tenants: dict[str, ProxyPolicy] = {}
    #: per-server policies, for the stdio servers owstack starts (they authenticate with credentials owstack
    #: puts in their HTTP_PROXY)
    servers: dict[str, ProxyPolicy] = {}


class McpSection(Section):
    servers: dict[str, UpstreamSection] = {}
    #: per-tenant policy; in open mode (no tenants) the tenant is `default`, allowed every tool unless listed
    tenants: dict[str, TenantToolPolicy] = {}
    #: auto: a server's first tool list is trusted, later new or changed definitions wait for approval;
    #: manual: every new or changed definition waits for `owstack mcp approve`
    pin: Literal["auto", "manual"] = "auto"
    #: a description or schema with an injection finding of this severity is never approved automatically
    poison_at: Literal["low", "medium", "high", "critical"] = "medium"
    call_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    #: seconds between restarts of a crashed upstream (doubling up to 60)
    restart_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    #: static DNS answers (name -> addresses) consulted before the system resolver, like curl --resolve
    resolve: dict[str, tuple[str, ...]] = {}
    #: OAuth authorization servers named in the protected-resource metadata (RFC 9728); owstack keys are
    #: bearer tokens issued by `owstack keys create`, so this is empty unless an external issuer is used
    authorization_servers: tuple[str, ...] = ()
    #: this endpoint's public URL (the metadata's `resource`); default: from the request's Host header
    public_url: str | None = None
    proxy: ProxySection = ProxySection()
    #: the lean edge for tools/call and tools/list (owstack.mcp.lean); false: every request through the SDK
    lean: bool = True
    #: a 2025-era session with nothing in flight for this long is closed
    session_idle_s: Annotated[float, Field(gt=0, le=86_400)] = 1800.0

    @field_validator("servers")
    @classmethod
    def _names(cls, v: dict[str, UpstreamSection]) -> dict[str, UpstreamSection]:
        for name in v:
            if not SERVER_NAME.match(name):
                raise ValueError(f"server name {name!r}: 1-32 of letters, digits, '_' and '-' (no dots)")
        return v
