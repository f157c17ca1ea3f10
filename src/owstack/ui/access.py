"""Who is looking: the rules that decide what a console visitor may see and do.

    viewer = await access.viewer(request, session)     None: the visitor must sign in
    viewer = await access.sign_in(key)                 SignInRefused with the reason to show

In order:

1. `ui.sso` configured, the request from one of its `trusted_proxies`, and the user header present: that
   user, an admin if listed in `admins`, a viewer of one tenant if listed in `viewers`, refused otherwise.
2. A session cookie signed in with a key: the key is looked up again (a revoked or expired key ends the
   session at once); an admin key (`owstack keys create --admin`) sees everything, another key of a
   configured tenant sees that tenant only (unless `ui.tenant_logins: false`).
3. Nobody signed in, and the gateway is in open mode (no tenants, listening on loopback only: the API
   itself takes no key) and `ui.require_login` is off: the local user, as admin.

Anything else goes to the sign-in page. So off the loopback interface, or with tenants configured, the
console needs an admin key (or a tenant key, for that tenant's view) or the proxy's signed-in user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from owstack.errors import AuthenticationFailed, ServiceUnavailable
from owstack.tenancy.openmode import open_mode_allowed
from owstack.ui.session import Session
from owstack.ui.web import Request

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.tenancy.keys import KeyRecord, KeyStore


class SignInRefused(Exception):
    """The key (or user) may not open the console; the message says why."""


@dataclass(frozen=True)
class Viewer:
    role: str
    #: the one tenant a viewer sees; None for an admin
    tenant: str | None
    #: who, for the audit log and the page header
    actor: str
    key_id: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def tenant_filter(self, wanted: str | None) -> str | None:
        """The tenant a query is restricted to: a viewer's own, whatever it asked for; an admin's choice."""
        return self.tenant if not self.admin else (wanted or None)


class Access:
    def __init__(self, config: Config, host: str, keystore: Callable[[], KeyStore]) -> None:
        self.config = config
        self.section = config.file.ui
        self.open = open_mode_allowed(config, host)[0] and not self.section.require_login
        self._keystore = keystore

    def sso_user(self, request: Request) -> str | None:
        sso = self.section.sso
        if sso is None or not request.client_in(sso.trusted_proxies):
            return None
        user = request.headers.get(sso.user_header, "").strip()
        return user or None

    async def viewer(self, request: Request, session: Session) -> Viewer | None:
        user = self.sso_user(request)
        if user is not None:
            return self._sso_viewer(user)
        if session.sub.startswith("key:"):
            try:
                record = await asyncio.to_thread(self._keystore().get, session.sub[4:])
            except (LookupError, ValueError):
                return None
            return self._key_viewer(record, signing_in=False)
        if self.open:
            return Viewer("admin", None, "console:local")
        return None

    def _sso_viewer(self, user: str) -> Viewer:
        sso = self.section.sso
        assert sso is not None
        if user in sso.admins:
            return Viewer("admin", None, f"console:sso:{user}")
        tenant = sso.viewers.get(user)
        if tenant is None:
            raise SignInRefused(f"{user} is signed in at the proxy but is not a console admin or viewer (ui.sso)")
        return Viewer("viewer", tenant, f"console:sso:{user}")

    def _key_viewer(self, record: KeyRecord, *, signing_in: bool) -> Viewer | None:
        if record.status() != "active":
            if signing_in:
                raise SignInRefused(f"key {record.key_id} is {record.status()}")
            return None
        actor = f"console:key:{record.key_id}"
        if record.admin:
            return Viewer("admin", None, actor, record.key_id)
        if self.section.tenant_logins and record.tenant in self.config.file.tenants:
            return Viewer("viewer", record.tenant, actor, record.key_id)
        if signing_in:
            raise SignInRefused(
                f"key {record.key_id} is not an admin key (owstack keys create --admin)"
                + ("" if self.section.tenant_logins else "; tenant keys may not sign in (ui.tenant_logins)")
            )
        return None

    async def sign_in(self, key: str) -> Viewer:
        try:
            record = await self._keystore().authenticate_async(key.strip())
        except AuthenticationFailed as exc:
            raise SignInRefused(exc.message) from None
        except ServiceUnavailable as exc:
            raise SignInRefused(exc.message) from None
        viewer = self._key_viewer(record, signing_in=True)
        assert viewer is not None
        return viewer
