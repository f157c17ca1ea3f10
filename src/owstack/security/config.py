"""The `security:` config section: the guard stage's policy and the egress (SSRF) policy.

```yaml
security:
  guard: {mode: flag, neutralize: true, keep_control_tokens: [], block_at: high}
  egress:
    allow_schemes: [https, http]
    allow_hosts: []            # empty: any public host; else only these (exact, or "*.example.com")
    deny_hosts: ["*.corp.example"]
    allow_networks: []         # CIDRs explicitly allowed although not public, e.g. ["10.20.0.0/16"]
    max_redirects: 5
    max_bytes: 10485760
    timeout_s: 30
```

Every field has a secure default, so the section may be left out.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from owstack.config.base import Section

Severity = Literal["low", "medium", "high", "critical"]
_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")


class GuardSection(Section):
    """What the gateway's guard stage does with user and tool content."""

    #: off: do nothing; flag: record findings (categories and counts, never text); block: reject the request
    mode: Literal["off", "flag", "block"] = "flag"
    #: make chat-template control tokens inert in every field that reaches the prompt
    neutralize: bool = True
    #: field classes trusted to keep their control tokens (e.g. an operator's own system prompt):
    #: system, developer, user, assistant, tool, tools, params, prompt (the legacy `/v1/completions` prompt,
    #: which a client that templates itself, or fills in the middle, spells with tokens), input (the
    #: `/v1/embeddings` input); see `security.guard.fields`
    keep_control_tokens: tuple[
        Literal["system", "developer", "user", "assistant", "tool", "tools", "params", "prompt", "input"], ...
    ] = ()
    #: in `block` mode, the lowest finding severity that rejects a request
    block_at: Severity = "high"
    #: which content is scanned for injection: tool results and retrieved documents by default
    scan: tuple[Literal["tool", "document", "user"], ...] = ("tool", "document")


class EgressSection(Section):
    """Which URLs owstack itself may fetch (tools, MCP servers, webhooks)."""

    allow_schemes: tuple[Literal["http", "https"], ...] = ("http", "https")
    #: when non-empty, only these hosts (exact name, or `*.example.com` for its subdomains)
    allow_hosts: tuple[str, ...] = ()
    #: never these hosts (same forms); checked before `allow_hosts`
    deny_hosts: tuple[str, ...] = ()
    #: networks allowed although not public (CIDR), e.g. an internal MCP server's subnet. An entry opens
    #: a special-purpose block only from inside it (10.20.0.0/16 opens part of 10.0.0.0/8; 169.254.0.0/16
    #: does not open the metadata and credential addresses in it). Cloud metadata addresses stay blocked.
    allow_networks: tuple[str, ...] = ()
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    #: cap on the bytes received and, separately, on the decoded body (gzip/deflate are decoded in the transport)
    max_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024
    #: decoded size / received size allowed once a body passes 1 MiB (a compression bomb expands ~1000x)
    max_decompression_ratio: Annotated[float, Field(ge=1, le=100_000)] = 100.0
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @field_validator("allow_hosts", "deny_hosts")
    @classmethod
    def _host_patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in v:
            host = item.strip().lower()
            if not _HOST_PATTERN.match(host):
                raise ValueError(f"{item!r} is not a host name or '*.domain' pattern")
            out.append(host.rstrip("."))
        return tuple(out)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network in CIDR form, e.g. 10.0.0.0/8") from None
        return v


class SecuritySection(Section):
    guard: GuardSection = GuardSection()
    egress: EgressSection = EgressSection()
