"""Templates and assets: Jinja2 (autoescaped) with the console's number formats, and the static files served
as one script and one stylesheet under a content hash.

    templates = Templates()
    templates.render("overview.html.j2", **context)
    assets = Assets.load()      # assets.js, assets.css: "/ui/static/console.<hash>.js", ...

A page load is then three requests (the page, its script, its stylesheet), and one once the two are
cached: the bundle's URL changes with its content, so it is cached for a year. The script is the vendored
htmx and uPlot (static/vendor, refreshed by scripts/vendor_ui_assets.py) followed by console.js; the
stylesheet uPlot's followed by console.css.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
import orjson

_PACKAGE = "owstack.ui"
_JS = ("vendor/htmx.min.js", "vendor/uplot.iife.min.js", "console.js")
_CSS = ("vendor/uplot.min.css", "console.css")


def _static(name: str) -> bytes:
    return resources.files(_PACKAGE).joinpath("static", *name.split("/")).read_bytes()


@dataclass(frozen=True)
class Asset:
    url: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Assets:
    js: str
    css: str
    files: dict[str, Asset]

    @classmethod
    def load(cls) -> Assets:
        files: dict[str, Asset] = {}
        urls = []
        for names, ext, kind in ((_JS, "js", "text/javascript"), (_CSS, "css", "text/css")):
            body = b"\n;\n".join(_static(n) for n in names) if ext == "js" else b"\n".join(_static(n) for n in names)
            name = f"console.{hashlib.sha256(body).hexdigest()[:12]}.{ext}"
            files[name] = Asset(f"/ui/static/{name}", body, f"{kind}; charset=utf-8")
            urls.append(files[name].url)
        versions = _static("vendor/VERSIONS.json")
        files["VERSIONS.json"] = Asset("/ui/static/VERSIONS.json", versions, "application/json")
        for lic in ("htmx.LICENSE.txt", "uplot.LICENSE.txt"):
            files[lic] = Asset(f"/ui/static/{lic}", _static(f"vendor/{lic}"), "text/plain; charset=utf-8")
        return cls(js=urls[0], css=urls[1], files=files)


# formats -----------------------------------------------------------------------------------------------------


def usd(value: Any, digits: int | None = None) -> str:
    if value is None:
        return "-"
    v = float(value)
    if digits is None:
        digits = 2 if abs(v) >= 1 or v == 0 else 4
    return f"-${abs(v):,.{digits}f}" if v < 0 else f"${v:,.{digits}f}"


def compact(value: Any) -> str:
    """1234567 -> 1.23M."""
    if value is None:
        return "-"
    v = float(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{v / limit:.3g}{suffix}"
    return f"{v:.0f}" if v == int(v) else f"{v:.3g}"


def integer(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value) * 100:.{digits}f}%"


def ms(seconds: Any) -> str:
    if seconds is None:
        return "-"
    v = float(seconds) * 1000
    if v >= 10_000:
        return f"{v / 1000:.1f} s"
    return f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"


def when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))


def attempts(log: Any) -> list[dict[str, Any]]:
    """A ledger row's attempt log, whether the driver handed it over parsed or as JSON text."""
    if isinstance(log, str):
        try:
            log = orjson.loads(log)
        except orjson.JSONDecodeError:
            return []
    return [a for a in log if isinstance(a, dict)] if isinstance(log, list) else []


def bucket_label(ts: int, grain: int) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d" if grain >= 86400 else "%m-%d %H:%M")


class Templates:
    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader(_PACKAGE, "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            usd=usd,
            compact=compact,
            integer=integer,
            pct=pct,
            ms=ms,
            when=when,
            bucket_label=bucket_label,
            attempts=attempts,
        )

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)
