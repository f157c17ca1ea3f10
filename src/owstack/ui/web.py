"""The console's requests and responses over plain ASGI: query, form and cookies in; HTML, CSV, files and
redirects out, every response with the console's security headers.

The Content-Security-Policy allows scripts, styles and connections from the console's own origin only: no
inline script or style, no `eval` (htmx runs with `allowEval: false`, uPlot needs none), no frames, forms
posting nowhere else. Pages are `no-store` (they hold costs and key ids); the vendored assets are served
under a content hash and cached for a year.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from owstack.api.http import Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
NO_STORE = (b"cache-control", b"no-store")
#: the largest form the console accepts (a key's label and a few fields)
MAX_FORM_BYTES = 64 * 1024


class FormTooLarge(Exception):
    pass


@dataclass
class Request:
    method: str
    #: the path below the console's prefix, "/" for the overview
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    client: str | None
    https: bool
    path_params: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)

    @property
    def htmx(self) -> bool:
        """Asked by htmx for a page's main part (the auto-refresh), not the whole document."""
        return self.headers.get("hx-request") == "true" and self.headers.get("hx-history-restore-request") != "true"

    def client_in(self, networks: tuple[str, ...]) -> bool:
        if not self.client:
            return False
        try:
            address = ipaddress.ip_address(self.client)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in networks)

    def url(self, path: str | None = None, **changes: str | None) -> str:
        """A console URL: `path` (default: this one) with this request's query, `changes` applied."""
        query = {**self.query, **changes}
        kept = {k: v for k, v in query.items() if v not in (None, "")}
        base = "/ui" + (self.path if path is None else path)
        return base + ("?" + urlencode(kept) if kept else "")


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def parse(scope: Scope, prefix: str = "/ui") -> Request:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
    raw = scope.get("query_string", b"").decode("latin-1")
    query = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    path = scope["path"][len(prefix) :] or "/"
    client = scope.get("client")
    return Request(
        method=scope["method"],
        path=path,
        query=query,
        headers=headers,
        cookies=_cookies(headers.get("cookie", "")),
        client=client[0] if client else None,
        https=scope.get("scheme") == "https",
    )


async def read_form(request: Request, receive: Receive) -> None:
    """Fill `request.form` from an urlencoded body (at most MAX_FORM_BYTES)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormTooLarge(f"the form is over {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        text = b"".join(chunks).decode("utf-8", "replace")
        request.form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: cached for a year (a hashed asset); otherwise no-store
    immutable: bool = False

    def set_cookie(self, name: str, value: str, *, max_age: int | None, secure: bool, path: str = "/ui") -> None:
        parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        self.headers.append((b"set-cookie", "; ".join(parts).encode("latin-1")))

    async def send(self, send: Send, head_only: bool = False) -> None:
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *SECURITY_HEADERS,
            (b"cache-control", b"public, max-age=31536000, immutable") if self.immutable else NO_STORE,
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else self.body})


def html(body: str, status: int = 200) -> Response:
    return Response(status=status, body=body.encode())


def redirect(location: str, status: int = 303) -> Response:
    return Response(status=status, headers=[(b"location", location.encode("latin-1"))], content_type="text/plain")


def csv_download(text: str, filename: str) -> Response:
    return Response(
        body=text.encode(),
        content_type="text/csv; charset=utf-8",
        headers=[(b"content-disposition", f'attachment; filename="{quote(filename)}"'.encode())],
    )


def download(body: bytes, filename: str, content_type: str) -> Response:
    disposition = f'attachment; filename="{quote(filename)}"'.encode()
    return Response(body=body, content_type=content_type, headers=[(b"content-disposition", disposition)])


def text(body: str, status: int) -> Response:
    return Response(status=status, body=body.encode(), content_type="text/plain; charset=utf-8")


def first(mapping: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = mapping.get(name)
        if value:
            return str(value)
    return None
