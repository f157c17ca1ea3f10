"""Who is using the egress proxy, and which egress policy applies to them.

A client names itself with proxy credentials, as every HTTP client can from its proxy URL:

    HTTPS_PROXY=http://acme:<owstack key>@127.0.0.1:8899     ->  Proxy-Authorization: Basic base64(acme:<key>)
    Proxy-Authorization: Bearer <owstack key>

The key is checked like a `/v1` key (the same key store); its tenant's policy is `security.egress` narrowed by
`mcp.proxy.tenants.<tenant>` (the tenant's deny list added, its allow list as the only hosts). The stdio
servers owstack starts get credentials of their own in their HTTP(S)_PROXY (a random token per start, never
written anywhere), and the policy of `mcp.proxy.servers.<name>`. Without credentials a client gets 407
when the proxy requires them (`mcp.proxy.auth`: required, or auto with tenants configured), else the plain
`security.egress` policy.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from owstack.errors import OwstackError
from owstack.mcp.config import ProxyPolicy
from owstack.security.egress import EgressDecision, EgressPolicy, Resolver, check_url, host_matches

if TYPE_CHECKING:
    from owstack.tenancy.keys import KeyStore

SERVER_USER = "owstack-mcp-"


class ProxyAuthRequired(Exception):
    """No usable credentials (407); the message says why."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The client of one proxy connection: `tenant:acme`, `server:files`, or `anonymous`."""

    label: str
    policy: EgressPolicy
    #: hosts a target must also match (security.egress.allow_hosts when a narrower allow list is in force)
    also_within: tuple[str, ...] = ()

    async def check(self, url: str, resolver: Resolver | None) -> EgressDecision:
        decision = await check_url(url, self.policy, resolver)
        if decision.allowed and self.also_within and not host_matches(decision.host or "", self.also_within):
            return EgressDecision(url, False, f"host {decision.host} is not in security.egress.allow_hosts",
                                  decision.addresses, decision.host, decision.port)  # fmt: skip
        return decision


def narrowed(base: EgressPolicy, extra: ProxyPolicy | None, label: str) -> Identity:
    if extra is None:
        return Identity(label, base)
    policy = EgressPolicy(
        allow_schemes=base.allow_schemes,
        allow_hosts=extra.allow_hosts or base.allow_hosts,
        deny_hosts=(*base.deny_hosts, *extra.deny_hosts),
        allow_networks=base.allow_networks,
        max_redirects=base.max_redirects,
        max_bytes=base.max_bytes,
        timeout_s=base.timeout_s,
    )
    within = base.allow_hosts if extra.allow_hosts and base.allow_hosts else ()
    return Identity(label, policy, within)


class ProxyAuth:
    def __init__(
        self,
        base: EgressPolicy,
        *,
        required: bool,
        keystore: KeyStore | None = None,
        tenants: frozenset[str] = frozenset(),
        tenant_policies: dict[str, ProxyPolicy] | None = None,
        server_policies: dict[str, ProxyPolicy] | None = None,
    ) -> None:
        self.base = base
        self.required = required
        self.keystore = keystore
        self.tenants = tenants
        self.tenant_policies = tenant_policies or {}
        self.server_policies = server_policies or {}
        #: token -> stdio server name (credentials owstack hands the servers it starts)
        self._servers: dict[str, str] = {}

    def credentials_for(self, server: str) -> str:
        """`user:token@` for a stdio server's proxy URL (one token per server and process)."""
        token = next((t for t, s in self._servers.items() if s == server), None)
        if token is None:
            token = secrets.token_urlsafe(24)
            self._servers[token] = server
        return f"{quote(SERVER_USER + server)}:{token}@"

    async def identify(self, header: str | None) -> Identity:
        """The identity of a `Proxy-Authorization` header (None: absent); `ProxyAuthRequired` if credentials
        are required and missing, or given and wrong. A proxy with no key store ignores what it cannot check."""
        anonymous = Identity("anonymous", self.base)
        if header is None:
            if self.required:
                raise ProxyAuthRequired("this proxy needs credentials: an owstack key as the proxy password")
            return anonymous
        try:
            user, secret = _credentials(header)
        except ProxyAuthRequired:
            if self.keystore is None and not self.required:
                return anonymous
            raise
        server = self._servers.get(secret)
        if server is not None and user == SERVER_USER + server:
            return narrowed(self.base, self.server_policies.get(server), f"server:{server}")
        if self.keystore is None:
            if self.required:
                raise ProxyAuthRequired("unknown proxy credentials")
            return anonymous
        try:
            record = await self.keystore.authenticate_async(secret)
        except OwstackError as exc:
            raise ProxyAuthRequired(exc.message) from None
        if record.tenant not in self.tenants:
            raise ProxyAuthRequired(f"API key {record.key_id} belongs to a tenant that is no longer configured")
        return narrowed(self.base, self.tenant_policies.get(record.tenant), f"tenant:{record.tenant}")


def _credentials(header: str) -> tuple[str, str]:
    """(user, secret) of `Basic base64(user:secret)` (the secret is the user when the password is empty, as
    `http://KEY@host` gives) or `Bearer secret`."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return "", value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ProxyAuthRequired("Proxy-Authorization: Basic credentials are not valid base64") from None
        return user, password or user
    raise ProxyAuthRequired("Proxy-Authorization must be `Basic base64(user:key)` or `Bearer <key>`")
