"""Sign in with a key, sign out, pick a theme; and the about page (versions and licenses of what is vendored).

Signing in starts a new session (a new id, so a session id planted before sign-in is worth nothing) and is
recorded in the audit log. The `next` page after sign-in must be a console path: no open redirect.
"""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote

import orjson

from owstack.ui import web
from owstack.ui.access import SignInRefused, Viewer
from owstack.ui.audit import AuditRefused
from owstack.ui.page import Page
from owstack.ui.session import Session

log = logging.getLogger("owstack.ui")
THEMES = ("", "light", "dark")


def _next(value: str | None) -> str:
    """A console path to go to, or the overview: never another site, and never a character a `Location`
    header cannot carry (a CR or LF in `next` made the server drop the connection after the sign-in)."""
    if not value or not value.isascii() or not value.isprintable():
        return "/ui/"
    if value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


def required(page: Page) -> web.Response:
    """The visitor must sign in first: to the sign-in page, coming back here after."""
    target = "/ui/login?next=" + quote(page.request.url(), safe="")
    if page.request.htmx:
        return web.Response(status=200, headers=[(b"hx-redirect", target.encode())], content_type="text/plain")
    return web.redirect(target)


async def _form(page: Page, error: str | None = None, status: int = 200) -> web.Response:
    guest = Viewer("none", None, "anonymous")
    page.viewer = guest
    return await page.render(
        "login.html.j2",
        title="Sign in",
        error=error,
        next=_next(page.request.query.get("next") or page.request.form.get("next")),
        sso=page.config.file.ui.sso is not None,
        status=status,
    )


async def view(page: Page) -> web.Response:
    return await _form(page)


async def sign_in(page: Page) -> web.Response:
    key = page.request.form.get("key", "")
    if not key.strip():
        return await _form(page, "Paste an admin key (owstack keys create --admin) or your tenant's API key.", 400)
    try:
        viewer = await page.console.access.sign_in(key)
    except SignInRefused as exc:
        return await _form(page, f"Not signed in: {exc}", 403)
    details = {"key_id": viewer.key_id, "role": viewer.role, "tenant": viewer.tenant}
    try:
        await page.console.audit.record("console.signed_in", details, actor=viewer.actor, tenant=viewer.tenant)
    except AuditRefused as exc:
        log.warning("console: sign-in of key %s not recorded: %s", viewer.key_id, exc)
    fresh = dataclasses.replace(
        Session.new(f"key:{viewer.key_id}", viewer.role, viewer.tenant), theme=page.session.theme
    )
    page.cookie = page.console.sessions.issue(fresh)
    return web.redirect(_next(page.request.form.get("next")))


async def sign_out(page: Page) -> web.Response:
    page.cookie = page.console.sessions.issue(dataclasses.replace(Session.new(), theme=page.session.theme))
    return web.redirect("/ui/login")


async def theme(page: Page) -> web.Response:
    wanted = page.request.form.get("theme", "")
    if wanted not in THEMES:
        raise ValueError(f"theme: {wanted!r} is not one of light, dark or empty (the system's)")
    page.cookie = page.console.sessions.issue(dataclasses.replace(page.session, theme=wanted))
    return web.redirect(_next(page.request.form.get("next")))


async def about(page: Page) -> web.Response:
    versions = orjson.loads(page.console.assets.files["VERSIONS.json"].body)
    return await page.render("about.html.j2", title="About", versions=versions)
