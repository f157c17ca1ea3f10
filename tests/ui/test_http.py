"""The console over plain HTTP against the running stack: server-rendered pages under a strict CSP that work
without JavaScript, numbers equal to the raw ledger's, every admin action in the audit log, `owstack
console` serving the same database alone (and checking the audit chain), and the CLI's admin keys."""

from __future__ import annotations

import base64
import csv
import io
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from console_stack import Stack

from owstack.compliance.segments import list_segments, list_streams
from owstack.metering.report import usage
from owstack.metering.rollups import HOUR
from owstack.ui.web import CSP
from procs import Proc, free_port, spawn, wait_http

PAGES = (
    "/ui/",
    "/ui/usage",
    "/ui/backends",
    "/ui/tenants",
    "/ui/requests",
    "/ui/compliance",
    "/ui/security",
    "/ui/about",
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\s(on[a-z]+|style)\s*=", re.IGNORECASE)


def signed_in(base: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post("/ui/login", data={"key": key, "csrf": token.group(1), "next": "/ui/"})
    assert done.status_code == 303 and done.headers["location"] == "/ui/", done.text
    return client


def csrf(client: httpx.Client, path: str = "/ui/tenants") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with closing(signed_in(stack.gateway.url, stack.admin_key)) as client:
        yield client


def test_pages_are_server_rendered_under_a_strict_policy(admin: httpx.Client, stack: Stack) -> None:
    assert httpx.get(stack.gateway.url + "/ui/", follow_redirects=False).status_code == 303  # not signed in
    for path in PAGES:
        page = admin.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == CSP and "unsafe" not in CSP
        assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
        assert not INLINE_SCRIPT.search(page.text) and not INLINE_HANDLER.search(page.text), path
    overview = admin.get("/ui/").text  # without JavaScript: the charts' numbers are tables
    assert overview.count('<figure class="chart"') == 3 and "<table>" in overview
    asset = re.search(r'src="(/ui/static/console\.[0-9a-f]{12}\.js)"', overview)
    assert asset is not None
    script = admin.get(asset.group(1))
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
    assert "htmx" in script.text and "uPlot" in script.text


def test_usage_equals_the_raw_ledger(admin: httpx.Client, stack: Stack) -> None:
    now = datetime.now(UTC)
    since = datetime.fromtimestamp((int(now.timestamp()) // HOUR + 1) * HOUR, UTC) - timedelta(hours=24)
    raw = {g.key: g for g in usage(stack.url, since=since, by="tenant").groups}  # files the journal first
    exported = admin.get("/ui/usage.csv", params={"by": "tenant", "range": "24h"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = {r["tenant"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert set(rows) == set(raw) | {"total"} and {"acme", "globex"} <= set(rows)
    for tenant, group in raw.items():
        row = rows[tenant]
        assert int(row["requests"]) == group.requests and int(row["errors"]) == group.errors
        assert int(row["prompt_tokens"]) == group.prompt_tokens
        assert float(row["cost_usd"]) == pytest.approx(group.cost_usd)
        assert float(row["counterfactual_usd"]) == pytest.approx(group.counterfactual_usd)
        if group.latency_p50_s:
            estimate = float(row["latency_p50_s"])
            assert group.latency_p50_s / 2**0.5 <= estimate <= group.latency_p50_s * 2**0.5


def _audit_records(home: Path) -> list[dict[str, Any]]:
    records = []
    for stream in list_streams(home / "owstack-audit"):
        for _, path in list_segments(stream):
            records += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return records


def test_every_admin_action_is_an_audit_record(admin: httpx.Client, stack: Stack) -> None:
    made = admin.post("/ui/keys/create", data={"csrf": csrf(admin), "tenant": "globex", "label": "audited"})
    assert made.status_code == 200
    key_id = re.search(r'id="new-key-value">ows-([0-9a-f]{12})-', made.text)
    assert key_id is not None
    revoked = admin.post("/ui/keys/revoke", data={"csrf": csrf(admin), "key_id": key_id.group(1)})
    assert revoked.status_code == 303
    records = _audit_records(stack.home)
    kinds = [(r["type"], (r.get("details") or {}).get("key_id")) for r in records]
    assert ("admin.key.created", key_id.group(1)) in kinds and ("admin.key.revoked", key_id.group(1)) in kinds
    assert any(r["type"] == "admin.console.signed_in" and r["details"]["role"] == "admin" for r in records)
    created = next(r for r in records if r["type"] == "admin.key.created" and r["details"]["key_id"] == key_id.group(1))
    assert created["details"]["via"] == "console" and created["actor"]["tenant"] == "globex"
    assert "ows-" not in orjson.dumps(records).decode()  # no secret in the log


@pytest.fixture(scope="module")
def alone(stack: Stack) -> Iterator[Proc]:
    port = free_port()
    log = stack.home / f"console-{port}.log"
    cmd = [sys.executable, "-m", "owstack", "console", "--config", str(stack.config), "--port", str(port)]
    proc = spawn(cmd, log, cwd=stack.home)
    served = Proc(proc, port, log)
    try:
        wait_http(served.url + "/ui/login", proc, log)
        yield served
    finally:
        served.stop()


def test_the_console_alone_reads_the_same_database_and_checks_the_chain(alone: Proc, stack: Stack) -> None:
    with closing(signed_in(alone.url, stack.admin_key)) as client:
        both = [client.get("/ui/usage.csv", params={"by": "tenant"}).text]
        with closing(signed_in(stack.gateway.url, stack.admin_key)) as through_gateway:
            both.append(through_gateway.get("/ui/usage.csv", params={"by": "tenant"}).text)
        assert both[0] == both[1]
        assert "Served by <code>owstack console</code>" in client.get("/ui/backends").text
        started = client.post("/ui/compliance/verify", data={"csrf": csrf(client, "/ui/compliance")})
        assert started.status_code == 303
        deadline = time.monotonic() + 60
        while "running" in (page := client.get("/ui/compliance").text) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert re.search(r'class="badge ok">intact</span> \d+ records', page), page
    assert any(r["type"] == "admin.console.audit_verified" and r["details"]["ok"] for r in _audit_records(stack.home))


def test_keys_create_admin_makes_a_console_only_key(stack: Stack) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "owstack", "keys", "create", "--admin", "--config", str(stack.config)],
        capture_output=True, text=True, cwd=stack.home, timeout=60, check=True,
    )  # fmt: skip
    key = made.stdout.strip()
    with closing(signed_in(stack.gateway.url, key)) as client:
        assert 'title="console:key:' in client.get("/ui/").text and client.get("/ui/compliance").status_code == 200
    refused = httpx.post(
        stack.gateway.base_url + "/chat/completions",
        json={"model": "edge", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 401  # its tenant is not a configured one: no model traffic


def test_the_documents_download(admin: httpx.Client) -> None:
    annex = admin.get("/ui/compliance/annex-iv.zip")
    assert annex.status_code == 200 and annex.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(annex.content)).namelist()
    assert "annex-iv/README.md" in names and len(names) > 2
    bom = admin.get("/ui/compliance/bom.json")
    assert bom.status_code == 200 and bom.json()["bomFormat"] == "CycloneDX"
    assert "attachment" in bom.headers["content-disposition"]


def test_the_request_log_pages_by_cursor(stack: Stack) -> None:
    from owstack import storage
    from owstack.ui.data import requests

    with storage.engine(stack.url).connect() as conn:
        everything = requests.page(conn, requests.Filters(), None, limit=1000).rows
        seen, cursor = [], None
        while True:
            page = requests.page(conn, requests.Filters(), cursor, limit=5)
            seen += [r["id"] for r in page.rows]
            if page.older is None:
                break
            cursor = page.older
        errors = requests.page(conn, requests.Filters(status="errors"), None, limit=1000).rows
    assert seen == [r["id"] for r in everything] and len(seen) == len(set(seen)) >= 13  # each once, newest first
    times = [r["received_at"] for r in everything]
    assert times == sorted(times, reverse=True)
    assert errors and all(r["status"] >= 400 for r in errors)
    with pytest.raises(ValueError, match="cursor"):
        requests.decode_cursor("not-a-cursor")


def test_rebuild_rollups_gives_back_the_same_sums(stack: Stack) -> None:
    from owstack import storage
    from owstack.metering.rollups import ledger_rollups

    def sums() -> list[Any]:
        with storage.engine(stack.url).connect() as conn:
            return sorted(conn.execute(sa.select(ledger_rollups)).all())

    before = sums()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "owstack", "console", "--config", str(stack.config), "rebuild-rollups"],
        capture_output=True, text=True, cwd=stack.home, timeout=120, check=True,
    )  # fmt: skip
    assert "rebuilt the rollups" in rebuilt.stdout
    after = sums()
    assert [r[:8] for r in after] == [r[:8] for r in before] and before
    assert [r[8] for r in after] == [r[8] for r in before]  # requests per rollup row


def test_hostile_input_is_a_4xx_never_a_500_or_a_busy_console(admin: httpx.Client, stack: Stack) -> None:
    cursor = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", 99999999999999999999999]').decode()
    session = admin.cookies["owstack_console"]
    forged = session.split(".")[0] + "." + "\u00e9" * 43
    asks = {
        "/ui/?from=0001-01-01&to=9999-12-31": 400,  # 3.65 million days: minutes of the console's one thread
        "/ui/usage?from=2000-01-01&to=2025-12-31": 400,
        "/ui/requests?status=99999999999999999999999": 400,  # too large for SQLite: OverflowError
        f"/ui/requests?before={cursor}": 400,
        "/ui/requests/99999999999999999999999999": 404,
        "/ui/requests/%C2%B2": 404,  # "²".isdigit(), but not int("²")
    }
    for path, status in asks.items():
        assert admin.get(path).status_code == status, path
    token = csrf(admin)
    for form in ({"csrf": "\u00e9\u2603"}, {"csrf": token + "\u00e9"}):  # hmac.compare_digest raised TypeError
        refused = admin.post("/ui/theme", data={**form, "theme": "dark"})
        assert refused.status_code == 403 and "CSRF" in refused.text
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as stranger:
        page = stranger.get("/ui/", headers={"cookie": f"owstack_console={forged}".encode()})
        assert page.status_code == 303 and "/ui/login" in page.headers["location"]  # a forged cookie: not signed in
        token = csrf(stranger, "/ui/login")
        for target in ("/ui/\r\nSet-Cookie: a=b", "/ui/\u2603"):  # a CR LF in Location: the server dropped the line
            themed = stranger.post("/ui/theme", data={"csrf": token, "theme": "dark", "next": target})
            assert themed.status_code == 303 and themed.headers["location"] == "/ui/", target
    assert "Traceback" not in stack.gateway.log()
