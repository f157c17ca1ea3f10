"""What keeps web pages from driving the gateway: CORS (off unless origins are configured), and in open mode
(no keys, loopback) a Host check against DNS rebinding and a JSON-only rule against cross-origin forms.

A page on any site can make a browser send "simple" requests (form or text bodies, no preflight) to
127.0.0.1, and a rebound DNS name can make the browser treat the gateway as same-origin. With no key to
steal, open mode is only safe if the gateway answers neither: requests whose Host is not one of its own
names are refused (403), and POST bodies must be declared JSON (415), which a simple request cannot do.

    server:
      cors_allow_origins: ["https://console.example"]   # or ["*"]; empty (default): no CORS headers at all
      allowed_hosts: ["gateway.internal"]                # extra Host names accepted in open mode
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from owstack.api.http import Scope, Send, send_json
from owstack.errors import PermissionDenied, UnsupportedMediaType

_EXPOSED = b"x-request-id, request-id, x-owstack-layer, x-owstack-backend, x-owstack-ai-generated"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: paths whose forms carry a CSRF token that their handler checks (the console, owstack.ui): HTML forms are
#: what they take, so the JSON-only rule does not apply to them (the Host check does)
_OWN_CSRF = ("/ui/",)


class BrowserGuard:
    def __init__(
        self, *, origins: Sequence[str], open_mode: bool, listen_host: str, allowed_hosts: Sequence[str]
    ) -> None:
        self.origins = frozenset(origins)
        self.any_origin = "*" in self.origins
        self.open_mode = open_mode
        self.hosts = frozenset(h.lower() for h in (*allowed_hosts, listen_host)) | _LOOPBACK_NAMES

    def _allowed_origin(self, origin: str | None) -> bool:
        return origin is not None and (self.any_origin or origin in self.origins)

    def wrap(self, scope: Scope, headers: Mapping[str, str], send: Send) -> Send:
        origin = headers.get("origin")
        if not self.origins or not self._allowed_origin(origin):
            return send
        assert origin is not None
        allow = b"*" if self.any_origin else origin.encode("latin-1")

        async def with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"access-control-allow-origin", allow), (b"access-control-expose-headers", _EXPOSED)]
                if not self.any_origin:
                    extra.append((b"vary", b"origin"))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return with_cors

    def preflight(self, headers: Mapping[str, str]) -> bool:
        return "origin" in headers and "access-control-request-method" in headers

    async def answer_preflight(self, headers: Mapping[str, str], methods: Mapping[str, Any] | None, send: Send) -> None:
        wanted = headers.get("access-control-request-method", "").upper()
        if not self.origins or not self._allowed_origin(headers.get("origin")) or not methods or wanted not in methods:
            error = PermissionDenied("cross-origin request refused: the origin is not in server.cors_allow_origins")
            await send_json(send, 403, orjson.dumps(error.body()), [])
            return
        origin = headers["origin"].encode("latin-1")
        requested = headers.get("access-control-request-headers", "").encode("latin-1")
        out = [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin),
            (b"access-control-allow-methods", ", ".join(sorted(methods)).encode()),
            (b"access-control-allow-headers", requested or b"authorization, content-type, x-api-key"),
            (b"access-control-max-age", b"600"),
            (b"vary", b"origin"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": out})
        await send({"type": "http.response.body", "body": b""})

    def check(self, scope: Scope, headers: Mapping[str, str], methods: Mapping[str, Any] | None) -> None:
        if not self.open_mode:
            return
        host = _hostname(headers.get("host", ""))
        if host and host not in self.hosts and not _is_loopback_ip(host):
            raise PermissionDenied(
                f"Host {host!r} is not one of this gateway's names; in open mode (no API keys) only local names are "
                "accepted (DNS rebinding protection). Add it to server.allowed_hosts if it is yours",
                code="host_not_allowed",
            )
        if scope["method"] == "POST" and methods is not None and not scope["path"].startswith(_OWN_CSRF):
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
                raise UnsupportedMediaType(
                    f"send the body as JSON with `Content-Type: application/json` (got {kind or 'none'}); in open "
                    "mode other types are refused so that web pages cannot post to the gateway"
                )


def _hostname(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
