"""The `ui:` config section: the console at `/ui` (and `owstack console`).

```yaml
ui:
  enabled: true                 # serve /ui from `owstack serve`
  require_login: false          # ask for a key even where the API itself needs none (open loopback mode)
  tenant_logins: true           # a tenant's API key opens a view of that tenant's data (admin keys: all)
  session_key: null             # signs the session cookies: a path or env.NAME (default: a 0600 file,
                                #   <audit.keys_directory>/console-session.key, created on first use)
  session_hours: 8
  secure_cookie: auto           # auto: Secure when the request came over HTTPS; always; never
  refresh_s: 30                 # the interval of the opt-in auto-refresh
  sso:                          # a proxy in front that authenticates people (oauth2-proxy, Pomerium, ...)
    user_header: X-Forwarded-Email
    trusted_proxies: [127.0.0.1/32]   # the header is believed only from these addresses
    admins: [ops@example.com]
    viewers: {alice@example.com: acme-eu}
```

Who gets in is decided in `owstack.ui.access`; the rules are in docs/console.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from owstack.config.base import Section

_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SECRET_REF = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")


class SsoSection(Section):
    #: the request header carrying the signed-in user, set by the proxy in front
    user_header: str
    #: the proxies (CIDR) whose header is believed; from any other address the header is ignored
    trusted_proxies: tuple[str, ...]
    #: users who administer the console
    admins: tuple[str, ...] = ()
    #: users who see one tenant's data: user -> tenant
    viewers: dict[str, str] = {}

    @field_validator("user_header")
    @classmethod
    def _header(cls, v: str) -> str:
        if not _HEADER.match(v):
            raise ValueError("a header name such as X-Forwarded-Email")
        return v.lower()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("name the proxy's address (e.g. [127.0.0.1/32]): the header is believed from nowhere else")
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an address or network (e.g. 10.0.0.5/32)") from None
        return v


class UiSection(Section):
    #: serve the console at /ui from `owstack serve`
    enabled: bool = True
    #: require a sign-in even where the API is open (no tenants, loopback only)
    require_login: bool = False
    #: a tenant's API key opens a view of that tenant's data (admin keys see everything)
    tenant_logins: bool = True
    #: the key that signs session cookies: a file path or env.NAME; None: a file in audit.keys_directory
    session_key: str | None = None
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 8.0
    secure_cookie: Literal["auto", "always", "never"] = "auto"
    #: seconds between two refreshes of a page whose auto-refresh is switched on
    refresh_s: Annotated[int, Field(ge=5, le=3600)] = 30
    sso: SsoSection | None = None

    @field_validator("session_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and v.startswith("env.") and not _SECRET_REF.match(v):
            raise ValueError("an environment reference looks like env.OWSTACK_CONSOLE_KEY")
        return v

    @model_validator(mode="after")
    def _viewers(self) -> UiSection:
        if self.sso is not None:
            both = set(self.sso.admins) & set(self.sso.viewers)
            if both:
                raise ValueError(f"sso: {', '.join(sorted(both))} listed as admin and as viewer; pick one")
        return self
