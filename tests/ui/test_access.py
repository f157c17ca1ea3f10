"""Who may use the console (owstack.ui.access), its signed sessions and CSRF tokens (owstack.ui.session), and
the ranges a page may ask for (owstack.ui.ranges): the rules, one by one, without a server."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from owstack.config.load import from_dict
from owstack.metering.rollups import DAY, HOUR, MINUTE
from owstack.tenancy.keys import KeyStore
from owstack.ui import ranges
from owstack.ui.access import Access, SignInRefused
from owstack.ui.session import Session, Sessions
from owstack.ui.web import Request

NOW = 1_800_000_000.0


def config(tmp: Path, **extra: Any) -> Any:
    raw: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp / 'o.db'}"}, **extra}
    return from_dict(raw)


def request(client: str = "127.0.0.1", **headers: str) -> Request:
    return Request("GET", "/", {}, {k.replace("_", "-"): v for k, v in headers.items()}, {}, client, False)


def viewer(access: Access, req: Request, session: Session | None = None) -> Any:
    return asyncio.run(access.viewer(req, session or Session.new()))


def test_open_only_where_the_api_is_open_and_login_is_not_required(tmp_path: Path) -> None:
    keys = KeyStore(f"sqlite:///{tmp_path / 'o.db'}")
    bare = config(tmp_path)
    assert viewer(Access(bare, "127.0.0.1", lambda: keys), request()).admin  # loopback, no tenants: local admin
    assert viewer(Access(bare, "0.0.0.0", lambda: keys), request()) is None  # off loopback: sign in
    with_tenants = config(tmp_path, tenants={"acme": {}})
    assert viewer(Access(with_tenants, "127.0.0.1", lambda: keys), request()) is None  # keys required: sign in
    strict = config(tmp_path, ui={"require_login": True})
    assert viewer(Access(strict, "127.0.0.1", lambda: keys), request()) is None


def test_keys_decide_the_role_and_a_revoked_key_ends_its_session(tmp_path: Path) -> None:
    cfg = config(tmp_path, tenants={"acme": {}})
    keys = KeyStore(cfg.file.storage.url)
    access = Access(cfg, "0.0.0.0", lambda: keys)
    admin_key, admin = keys.create("console-admin", admin=True)
    tenant_key, tenant = keys.create("acme")
    orphan_key, _ = keys.create("gone")  # a tenant the config no longer has
    assert asyncio.run(access.sign_in(admin_key)).admin
    seen = asyncio.run(access.sign_in(tenant_key))
    assert seen.role == "viewer" and seen.tenant == "acme" and seen.tenant_filter("globex") == "acme"
    with pytest.raises(SignInRefused, match="not an admin key"):
        asyncio.run(access.sign_in(orphan_key))
    with pytest.raises(SignInRefused):
        asyncio.run(access.sign_in("ows-000000000000-" + "A" * 43))
    session = Session.new(f"key:{tenant.key_id}", "viewer", "acme")
    assert viewer(access, request(), session).tenant == "acme"
    keys.revoke(tenant.key_id)
    assert viewer(access, request(), session) is None
    no_tenant_logins = Access(
        config(tmp_path, tenants={"acme": {}}, ui={"tenant_logins": False}), "0.0.0.0", lambda: keys
    )
    other_key, _ = keys.create("acme")
    with pytest.raises(SignInRefused, match="tenant keys may not sign in"):
        asyncio.run(no_tenant_logins.sign_in(other_key))
    assert viewer(access, request(), Session.new(f"key:{admin.key_id}", "viewer", "acme")).admin  # the key decides


def test_a_proxys_user_header_counts_only_from_the_proxy(tmp_path: Path) -> None:
    sso = {"user_header": "X-Forwarded-Email", "trusted_proxies": ["10.0.0.5/32"], "admins": ["ops@example.com"],
           "viewers": {"ann@example.com": "acme"}}  # fmt: skip
    cfg = config(tmp_path, tenants={"acme": {}}, ui={"sso": sso})
    access = Access(cfg, "0.0.0.0", lambda: KeyStore(cfg.file.storage.url))
    assert viewer(access, request("10.0.0.5", x_forwarded_email="ops@example.com")).admin
    ann = viewer(access, request("10.0.0.5", x_forwarded_email="ann@example.com"))
    assert ann.role == "viewer" and ann.tenant == "acme" and ann.actor == "console:sso:ann@example.com"
    assert viewer(access, request("10.0.0.9", x_forwarded_email="ops@example.com")) is None  # not the proxy
    with pytest.raises(SignInRefused, match="not a console admin or viewer"):
        viewer(access, request("10.0.0.5", x_forwarded_email="eve@example.com"))


def test_sso_needs_the_proxies_named(tmp_path: Path) -> None:
    from owstack.errors import ConfigError

    with pytest.raises(ConfigError, match="trusted_proxies"):
        config(tmp_path, ui={"sso": {"user_header": "X-User", "trusted_proxies": []}})


def test_sessions_are_signed_expire_and_carry_their_own_csrf_token() -> None:
    clock = [NOW]
    sessions = Sessions(b"k" * 32, ttl_s=60, clock=lambda: clock[0])
    session = Session.new("key:0123456789ab", "admin")
    value = sessions.issue(session)
    read = sessions.read(value)
    assert read is not None and read.sub == "key:0123456789ab" and read.role == "admin"
    body, signature = value.split(".")
    assert sessions.read(body[:-2] + "xx." + signature) is None  # altered
    assert Sessions(b"other" * 8, ttl_s=60, clock=lambda: clock[0]).read(value) is None  # another key
    assert sessions.read("garbage") is None and sessions.read(None) is None
    token = sessions.csrf(session)
    assert sessions.csrf_ok(session, token)
    assert not sessions.csrf_ok(Session.new("key:0123456789ab", "admin"), token)  # another session's
    assert not sessions.csrf_ok(session, None) and not sessions.csrf_ok(session, "")
    clock[0] += 61
    assert sessions.read(value) is None  # expired


def test_forged_cookies_and_tokens_with_any_characters_are_refused_not_raised() -> None:
    sessions = Sessions(b"k" * 32, ttl_s=60, clock=lambda: NOW)
    session = Session.new("key:0123456789ab", "admin")
    body, _ = sessions.issue(session).split(".")
    for forged in ("\u00e9\u2603" * 10, "\x00", "\udcff", "\u00ff" * 43):  # hmac.compare_digest raised TypeError
        assert sessions.read(f"{body}.{forged}") is None
        assert not sessions.csrf_ok(session, forged)


def test_ranges_pick_a_grain_that_keeps_charts_short() -> None:
    for name, grain in (("1h", MINUTE), ("6h", MINUTE), ("24h", HOUR), ("7d", HOUR), ("30d", DAY), ("365d", DAY)):
        rng = ranges.parse({"range": name}, now=NOW)
        assert rng.grain == grain and rng.since % grain == 0 and rng.until % grain == 0
        assert rng.until > NOW and len(rng.buckets) <= 400
    ten_years = ranges.parse({"from": "2016-01-01", "to": "2025-12-31"}, now=NOW)
    assert ten_years.grain == DAY and len(ten_years.buckets) == 3653  # any range: a long one costs days, not rows
    week = ranges.parse({"range": "7d"}, now=NOW)
    spans = ranges.pieces(week)  # summed from six days and the hours at either end, exactly the range
    assert spans[0][1] == week.since and spans[-1][2] == week.until
    assert all(a[2] == b[1] for a, b in itertools.pairwise(spans)) and spans[1][0] == DAY
    with pytest.raises(ranges.BadRange, match="range"):
        ranges.parse({"range": "9y"}, now=NOW)
    with pytest.raises(ranges.BadRange, match="to"):
        ranges.parse({"from": "2026-02-01", "to": "2026-01-01"}, now=NOW)
    with pytest.raises(ranges.BadRange, match="from"):
        ranges.parse({"from": "yesterday"}, now=NOW)
    with pytest.raises(ranges.BadRange, match="days apart"):  # 3.65 million day rows to draw: refused
        ranges.parse({"from": "0001-01-01", "to": "9999-12-31"}, now=NOW)
