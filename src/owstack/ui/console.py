"""The console: an ASGI app (mounted at /ui by the gateway, or served alone by `owstack console`) and a
service (started and closed with the gateway).

    console = Console(config, host=..., keystore=..., audit=...)
    await console.handle(scope, receive, send, live=...)      one request below /ui

Every request: parse; assets are served at once; otherwise read (or start) the visitor's session, check
the CSRF token of a POST (and that it did not come from another site), decide who the visitor is
(`access`), then call the page. The database work of a page runs on the console's one thread, so that
however many console requests arrive, at most one competes with the gateway for the interpreter at a time.
No error reaches the browser as a traceback: a bad query is a 400 page, a database outage a 503 page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa

from owstack import storage
from owstack.api.http import Receive, Scope, Send
from owstack.ui import web
from owstack.ui.access import Access, SignInRefused, Viewer
from owstack.ui.audit import AdminAudit, AuditRefused
from owstack.ui.data import verify as checks
from owstack.ui.data.dims import DimsCache
from owstack.ui.page import Page
from owstack.ui.pages import backends, compliance, login, overview, requests, security, tenants, usage
from owstack.ui.ranges import BadRange
from owstack.ui.render import Assets, Templates
from owstack.ui.session import COOKIE, Session, Sessions

if TYPE_CHECKING:
    from owstack.compliance.stage import AuditStage
    from owstack.config.load import Config
    from owstack.tenancy.keys import KeyStore

log = logging.getLogger("owstack.ui")
_NOBODY = Viewer("none", None, "anonymous")
T = TypeVar("T")
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


class Console:
    name = "console"

    def __init__(
        self,
        config: Config,
        *,
        host: str,
        keystore: KeyStore | None = None,
        audit: AuditStage | None = None,
    ) -> None:
        self.config = config
        self.url = config.file.storage.url
        self.engine = storage.engine(self.url)
        self.assets = Assets.load()
        self.templates = Templates()
        self.dims = DimsCache(config)
        self.audit = AdminAudit(config, audit)
        self._keystore = keystore
        self.access = Access(config, host, self.keystore)
        self._sessions: Sessions | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="owstack-console")
        self._verify: asyncio.Future[None] | None = None

    # service -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.audit.start()

    async def prepare(self) -> str | None:
        """On the first request (a gateway nobody opens the console of writes no session key): the session
        key, read or created, and the schema; why the console cannot answer, or None."""
        if self._sessions is not None:
            return None
        try:
            await self.run(storage.migrate, self.url)
            self._sessions = await self.run(Sessions.from_config, self.config)
        except Exception as exc:  # the gateway serves on; the console says why it cannot (and tries again)
            log.error("console: cannot start: %s", exc)
            return f"the console cannot start: {exc}"
        return None

    async def aclose(self) -> None:
        if self._verify is not None:
            self._verify.cancel()
            await asyncio.gather(self._verify, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
        await self.audit.aclose()

    def unavailable(self) -> str | None:
        """Never: the console's trouble is shown on its pages, and must not take the gateway out of service."""
        return None

    @property
    def sessions(self) -> Sessions:
        assert self._sessions is not None
        return self._sessions

    def keystore(self) -> KeyStore:
        if self._keystore is None:
            from owstack.tenancy.keys import KeyStore

            self._keystore = KeyStore(self.url)
        return self._keystore

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def verifying(self) -> bool:
        return self._verify is not None and not self._verify.done()

    def start_verify(self, row_id: int, directory: Path) -> None:
        """Check the audit chain in the background; its outcome lands in `console_verifications` and the log."""
        self._verify = asyncio.ensure_future(self._run_verify(row_id, directory))

    async def _run_verify(self, row_id: int, directory: Path) -> None:
        outcome = await checks.run(directory)
        await self.run(_record_check, self.engine, row_id, outcome)
        details = {"directory": str(directory), **{k: outcome[k] for k in ("ok", "records", "streams")}}
        try:
            await self.audit.record("console.audit_verified", details, actor="owstack-console")
        except AuditRefused as exc:
            log.warning("console: the outcome of the audit check was not recorded in the log: %s", exc)

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


def _record_check(engine: sa.Engine, row_id: int, outcome: dict[str, Any]) -> None:
    with engine.connect() as conn:
        checks.finished(conn, row_id, outcome)
