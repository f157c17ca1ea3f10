"""The console: an ASGI app (mounted at /ui by the gateway, or served alone by `owstack console`) and a
service (started and closed with the gateway).

    console = Console(config, host=..., keystore=..., audit=...)
    await console.handle(scope, receive, send, live=...)      one request below /ui

Every request: parse; assets are served at once; otherwise read (or start) the visitor's session, check
the CSRF token of a POST (and that it did not come from another site), decide who the visitor is
(`access`), then call the page. The database work of a page runs on the console's one thread (services.py),
so that however many console requests arrive, at most one competes with the gateway for the interpreter at a
time.
No error reaches the browser as a traceback: a bad query is a 400 page, a database outage a 503 page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from owstack import storage
from owstack.api.http import Receive, Scope, Send
from owstack.ui import web
from owstack.ui.access import SignInRefused, Viewer
from owstack.ui.page import Page
from owstack.ui.pages import backends, compliance, login, overview, requests, security, tenants, usage
from owstack.ui.ranges import BadRange
from owstack.ui.services import ConsoleServices
from owstack.ui.session import COOKIE, Session

log = logging.getLogger("owstack.ui")
_NOBODY = Viewer("none", None, "anonymous")
Handler = Callable[[Page], Awaitable[web.Response]]

PAGES: dict[tuple[str, str], Handler] = {
    ("GET", "/"): overview.view,
    ("GET", "/usage"): usage.view,
    ("GET", "/usage.csv"): usage.export,
    ("GET", "/backends"): backends.view,
    ("GET", "/tenants"): tenants.view,
    ("POST", "/keys/create"): tenants.create,
    ("POST", "/keys/revoke"): tenants.revoke,
    ("POST", "/keys/rotate"): tenants.rotate,
    ("GET", "/requests"): requests.view,
    ("GET", "/compliance"): compliance.view,
    ("POST", "/compliance/verify"): compliance.verify,
    ("GET", "/compliance/annex-iv.zip"): compliance.annex_iv,
    ("GET", "/compliance/bom.json"): compliance.bom,
    ("GET", "/security"): security.view,
    ("POST", "/security/approve"): security.approve,
    ("GET", "/about"): login.about,
    ("POST", "/logout"): login.sign_out,
}
#: answered before anyone is signed in
PUBLIC: dict[tuple[str, str], Handler] = {
    ("GET", "/login"): login.view,
    ("POST", "/login"): login.sign_in,
    ("POST", "/theme"): login.theme,
}


class Console(ConsoleServices):
    """The console's ASGI face over its services: one request below /ui, answered by the page table."""

    name = "console"

    # ASGI ------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Served alone (`owstack console`): the lifespan, a redirect from / to /ui/, then `handle`."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/ui" or path.startswith("/ui/"):
            await self.handle(scope, receive, send)
        else:
            await (
                web.redirect("/ui/", 307) if path == "/" else web.text("not found: the console is at /ui/", 404)
            ).send(send)

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, live: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        request = web.parse(scope)
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        try:
            response = await self._respond(request, receive, live)
        except web.FormTooLarge as exc:
            response = web.text(str(exc), 413)
        except (BadRange, ValueError) as exc:
            response = web.text(f"bad request: {exc}", 400)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("console: database error: %s", storage.error_reason(exc))
            response = web.text(f"the database cannot be read now: {storage.error_reason(exc)}", 503)
        except Exception:
            log.exception("console: %s %s failed", request.method, request.path)
            response = web.text("the console failed to answer this request; the gateway's log says why", 500)
        await response.send(send, head_only=head)

    async def _respond(
        self, request: web.Request, receive: Receive, live: Callable[[], dict[str, Any]] | None
    ) -> web.Response:
        if request.path.startswith("/static/"):
            asset = self.assets.files.get(request.path.removeprefix("/static/"))
            if asset is None or request.method != "GET":
                return web.text("no such file", 404)
            return web.Response(body=asset.body, content_type=asset.content_type, immutable=True)
        problem = await self.prepare()
        if problem is not None:
            return web.text(problem, 503)
        session = self.sessions.read(request.cookies.get(COOKIE))
        fresh = session is None
        session = session or Session.new()
        if request.method == "POST":
            await web.read_form(request, receive)
            refused = self._csrf_refusal(request, session)
            if refused:
                return web.text(refused, 403)
        page = Page(self, request, session, viewer=_NOBODY, live=live)
        response = await self._route(page)
        cookie = page.cookie or (self.sessions.issue(session) if fresh else None)
        if cookie is not None:
            response.set_cookie(COOKIE, cookie, max_age=int(self.sessions.ttl_s), secure=self._secure(request))
        return response

    async def _route(self, page: Page) -> web.Response:
        request = page.request
        key = (request.method, request.path)
        public = PUBLIC.get(key)
        if public is not None:
            return await public(page)
        try:
            viewer = await self.access.viewer(request, page.session)
        except SignInRefused as exc:
            return web.text(str(exc), 403)
        if viewer is None:
            return login.required(page)
        page.viewer = viewer
        handler = PAGES.get(key)
        if handler is None and request.path.startswith("/requests/") and request.method == "GET":
            request.path_params["id"] = request.path.removeprefix("/requests/")
            handler = requests.detail
        if handler is None:
            known = any(path == request.path for _, path in PAGES)
            return web.text("method not allowed" if known else "no such page", 405 if known else 404)
        return await handler(page)

    def _csrf_refusal(self, request: web.Request, session: Session) -> str | None:
        if request.headers.get("sec-fetch-site") == "cross-site":
            return "refused: the form was sent from another site"
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
            return "refused: the form was sent from another origin"
        token = request.form.get("csrf") or request.headers.get("x-csrf-token")
        if not self.sessions.csrf_ok(session, token):
            return "refused: the form's CSRF token is missing or not this session's (reload the page and try again)"
        return None

    def _secure(self, request: web.Request) -> bool:
        mode = self.config.file.ui.secure_cookie
        if mode != "auto":
            return mode == "always"
        forwarded = request.headers.get("x-forwarded-proto") == "https"
        sso = self.config.file.ui.sso
        trusted = sso is not None and request.client_in(sso.trusted_proxies)
        return request.https or (forwarded and trusted)
