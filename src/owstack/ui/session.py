"""Console sessions in a signed cookie, and the CSRF token of each session.

    sessions = Sessions(key, ttl_s)
    value = sessions.issue(Session.new("key:3f9a0c1b2d4e", "admin"))   -> the cookie's value
    session = sessions.read(value)                                       -> None: forged, altered or expired
    token = sessions.csrf(session); sessions.csrf_ok(session, token)

The cookie holds `base64url(JSON).base64url(HMAC-SHA256(key, JSON))`: who (`sub`), the role, the tenant a
viewer sees, a random session id and the expiry. It is sent HttpOnly (no script reads it), SameSite=Strict
(no other site's page sends it) and Secure over HTTPS. Nothing in it is secret; what it asserts is checked
again on every request (`access`: a revoked key ends its sessions at once). Every visitor gets one, signed
in or not, so that even the sign-in form carries a CSRF token: HMAC(key, "csrf:" + session id), compared
in constant time. The key comes from `ui.session_key` or a 0600 file created beside the audit keys, so
that every worker process (and `owstack console`) reads sessions the others signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from owstack.config.load import Config

COOKIE = "owstack_console"
ROLES = ("none", "viewer", "admin")


@dataclass(frozen=True)
class Session:
    sid: str
    #: "anon" (not signed in), "key:<key id>", "sso:<user>" or "local"
    sub: str
    role: str
    tenant: str | None = None
    exp: float = 0.0
    #: the theme the visitor picked ("" for the system's)
    theme: str = ""

    @classmethod
    def new(cls, sub: str = "anon", role: str = "none", tenant: str | None = None) -> Session:
        return cls(sid=secrets.token_urlsafe(12), sub=sub, role=role, tenant=tenant)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, key: bytes, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.ttl_s = ttl_s
        self._clock = clock

    @classmethod
    def from_config(cls, config: Config) -> Sessions:
        """The key from `ui.session_key`, or the file `console-session.key` in `audit.keys_directory`."""
        from owstack.compliance.keys import load_secret

        section = config.file.ui
        default = Path(config.file.audit.keys_directory).expanduser().resolve() / "console-session.key"
        key = load_secret(section.session_key, default, field="ui.session_key")
        return cls(key, section.session_hours * 3600.0)

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def issue(self, session: Session) -> str:
        """The cookie value of `session`, valid for `ttl_s` from now."""
        stamped = replace(session, exp=self._clock() + self.ttl_s)
        payload = orjson.dumps(
            {"sid": stamped.sid, "sub": stamped.sub, "role": stamped.role, "tenant": stamped.tenant,
             "exp": stamped.exp, "theme": stamped.theme}
        )  # fmt: skip
        return f"{_b64(payload)}.{self._sign(payload)}"

    def read(self, value: str | None) -> Session | None:
        if not value or value.count(".") != 1:
            return None
        body, signature = value.split(".")
        try:
            payload = _unb64(body)
        except (ValueError, TypeError):
            return None
        if not _same(self._sign(payload), signature):
            return None
        try:
            data = orjson.loads(payload)
            session = Session(
                sid=str(data["sid"]),
                sub=str(data["sub"]),
                role=str(data["role"]),
                tenant=None if data["tenant"] is None else str(data["tenant"]),
                exp=float(data["exp"]),
                theme=str(data.get("theme") or ""),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if session.role not in ROLES or session.exp <= self._clock():
            return None
        return session

    def csrf(self, session: Session) -> str:
        return self._sign(b"csrf:" + session.sid.encode())

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and _same(self.csrf(session), str(token))


def _same(expected: str, given: str) -> bool:
    """Compared in constant time as bytes: `hmac.compare_digest` raises TypeError on a str with non-ASCII
    characters, which a forged cookie or form token may hold."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
