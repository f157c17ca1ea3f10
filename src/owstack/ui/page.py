"""What a page handler gets: the request, the visitor, the database (on the console's thread), the gateway's
live state (None under `owstack console`), and `render`, which answers htmx's partial requests with the
page's main block only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from owstack.ui import web
from owstack.ui.access import Viewer
from owstack.ui.session import Session

if TYPE_CHECKING:
    from owstack.ui.services import ConsoleServices

T = TypeVar("T")

NAV: tuple[tuple[str, str, bool], ...] = (
    ("/", "Overview", False),
    ("/usage", "Usage", False),
    ("/backends", "Backends", False),
    ("/tenants", "Tenants & keys", False),
    ("/requests", "Requests", False),
    ("/compliance", "Compliance", True),
    ("/security", "Security", True),
)


@dataclass
class Page:
    console: ConsoleServices
    request: web.Request
    session: Session
    viewer: Viewer
    #: the gateway's routing state, read on the event loop; None when the console runs alone
    live: Callable[[], dict[str, Any]] | None = None
    #: a cookie to (re)issue with the response
    cookie: str | None = None

    @property
    def config(self) -> Any:
        return self.console.config

    @property
    def csrf(self) -> str:
        return self.console.sessions.csrf(self.session)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` on the console's database thread."""
        return await self.console.run(_with_connection, self.console.engine, fn, *args)

    async def render(self, template: str, *, title: str, status: int = 200, **context: Any) -> web.Response:
        """The page (or, for htmx, its main block) rendered on the console's thread, off the event loop."""
        refresh = self.request.query.get("refresh") == "on"
        base = {
            "page": self,
            "title": title,
            "viewer": self.viewer,
            "csrf": self.csrf,
            "assets": self.console.assets,
            "nav": [(path, label) for path, label, admin in NAV if self.viewer.admin or not admin],
            "here": self.request.path,
            "theme": self.session.theme,
            "refresh": refresh,
            "refresh_s": self.config.file.ui.refresh_s,
            "refresh_url": self.request.url(refresh=None if refresh else "on"),
            "url": self.request.url,
        }
        body = await self.console.run(self._render, template, {**base, **context})
        return web.html(body, status)

    def _render(self, template: str, context: dict[str, Any]) -> str:
        tpl = self.console.templates.env.get_template(template)
        if self.request.htmx:
            return "".join(tpl.blocks["main"](tpl.new_context(context)))
        return tpl.render(**context)

    async def message(self, title: str, text: str, status: int) -> web.Response:
        return await self.render("message.html.j2", title=title, text=text, status=status)

    async def forbidden(self) -> web.Response:
        return await self.message("Not allowed", "This page is for console admins.", 403)


def _with_connection(engine: sa.Engine, fn: Callable[..., T], *args: Any) -> T:
    with engine.connect() as conn:
        return fn(conn, *args)
