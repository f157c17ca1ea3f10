"""The console in a real browser (Debian's chromium through Playwright) against a running `owstack serve`
whose ledger holds real requests: every page loads with no console error, failed request or CSP violation,
in a handful of requests, and its charts draw; a key made in the console authenticates and stops once
revoked; a forged form is refused; a tenant's viewer sees that tenant only.

The first two tests count the stack's requests; the tests after them make more (the order matters).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from console_stack import Stack

PAGES = ("/ui/", "/ui/usage", "/ui/backends", "/ui/tenants", "/ui/requests", "/ui/compliance", "/ui/security")
CHARTS = {"/ui/": 3, "/ui/usage": 2, "/ui/security": 1}
#: the page, its script and its stylesheet (cached after the first page)
MAX_REQUESTS = 5

DRAWN = """() => Array.from(document.querySelectorAll('figure.chart.drawn canvas')).map(c => {
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  return painted;
})"""


def watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    return problems


def test_every_page_loads_clean_and_draws_its_charts(signed_in: Any, stack: Stack) -> None:
    page = signed_in(stack.admin_key)
    problems = watch(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for path in PAGES:
        requests.clear()
        page.goto(stack.gateway.url + path)
        page.wait_for_load_state("load")
        assert page.locator("main h1").count() == 1, path
        assert len(requests) <= MAX_REQUESTS, (path, requests)
        expected = CHARTS.get(path, 0)
        if expected:
            page.wait_for_function(f"() => document.querySelectorAll('figure.chart.drawn').length >= {expected}")
            painted = page.evaluate(DRAWN)
            assert len(painted) >= expected and all(n > 500 for n in painted), (path, painted)
    assert problems == []
    # the numbers are the requests made: 12 served (and one refused key) across the two tenants
    page.goto(stack.gateway.url + "/ui/usage?by=tenant&range=24h")
    rows = {
        r.locator("th").inner_text(): r.locator("td").first.inner_text()
        for r in page.locator("table.usage tbody tr").all()
    }
    assert rows["acme"] == "8" and rows["globex"] == "4" and rows["total"] == "13"


def test_a_viewer_of_one_tenant_sees_only_that_tenant(signed_in: Any, stack: Stack) -> None:
    page = signed_in(stack.acme_key)
    problems = watch(page)
    base = stack.gateway.url
    page.goto(base + "/ui/usage?by=tenant&tenant=globex&range=24h")  # asks for another tenant and a tenant view
    assert "globex" not in page.locator("main").inner_text()
    total = page.locator("table.usage tr.total td").first.inner_text()
    assert total == "8"
    page.goto(base + "/ui/requests?tenant=globex")
    log = page.locator("#log tbody").inner_text()
    assert "globex" not in log and "acme" in log
    page.goto(base + "/ui/tenants")
    assert page.locator("section.tenant").count() == 1 and "globex" not in page.locator("main").inner_text()
    assert page.locator("#create-key").count() == 0
    other = stack.rows["globex"][0]
    assert page.goto(base + f"/ui/requests/{other}").status == 404
    assert page.goto(base + f"/ui/requests/{stack.rows['acme'][0]}").status == 200
    for admin_only in ("/ui/compliance", "/ui/security"):
        assert page.goto(base + admin_only).status == 403
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    made = httpx.post(base + "/ui/keys/create", data={"tenant": "acme", "csrf": token}, cookies=cookies)
    assert made.status_code == 403
    assert [p for p in problems if "403" not in p and "404" not in p] == []


def test_the_opt_in_refresh_redraws_without_reloading(signed_in: Any, stack: Stack) -> None:
    page = signed_in(stack.admin_key)
    problems = watch(page)
    page.goto(stack.gateway.url + "/ui/?refresh=on")
    page.wait_for_function("() => document.querySelectorAll('figure.chart.drawn').length >= 3")
    page.evaluate("document.querySelector('main h1').dataset.before = 'yes'")
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true", timeout=60_000) as got:
        pass
    assert got.value.status == 200
    page.wait_for_function("() => !document.querySelector('main h1').dataset.before")  # main was swapped...
    page.wait_for_function("() => document.querySelectorAll('figure.chart.drawn').length >= 3")  # ...and redrawn
    assert page.evaluate("document.querySelectorAll('header.top').length") == 1  # the layout was not
    assert problems == []


def _new_key(page: Any, stack: Stack, tenant: str) -> str:
    page.goto(stack.gateway.url + "/ui/tenants")
    page.select_option("#create-key select[name=tenant]", tenant)
    page.fill("#create-key input[name=label]", "made in the browser")
    page.click("#create-key button[type=submit]")
    return str(page.locator("#new-key-value").inner_text()).strip()


def _answers(stack: Stack, key: str) -> bool:
    try:
        stack.client(key).chat.completions.create(model="edge", messages=[{"role": "user", "content": "hi"}])
    except openai.AuthenticationError:
        return False
    return True


def _until(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_key_made_in_the_console_works_until_it_is_revoked_or_rotated(signed_in: Any, stack: Stack) -> None:
    page = signed_in(stack.admin_key)
    key = _new_key(page, stack, "acme")
    key_id = key.split("-")[1]
    assert _answers(stack, key)
    page.goto(stack.gateway.url + "/ui/tenants")
    page.click(f"tr[data-key='{key_id}'] form[action='/ui/keys/rotate'] button")
    rotated = str(page.locator("#new-key-value").inner_text()).strip()
    assert rotated != key and _answers(stack, rotated)
    assert _until(lambda: not _answers(stack, key))  # the rotated key stops within about a second
    page.goto(stack.gateway.url + "/ui/tenants")
    page.click(f"tr[data-key='{rotated.split('-')[1]}'] form[action='/ui/keys/revoke'] button")
    page.wait_for_url("**/ui/tenants?done=revoked-*")
    assert _until(lambda: not _answers(stack, rotated))


def test_a_forged_form_is_refused(signed_in: Any, browser: Any, stack: Stack) -> None:
    from owstack.tenancy.keys import KeyStore

    page = signed_in(stack.admin_key)
    before = len(KeyStore(stack.url, migrate=False).list())
    target = stack.gateway.url + "/ui/keys/create"
    # another site's page, in the admin's browser, posting to the console
    page.set_content(
        f'<form method="post" action="{target}"><input name="tenant" value="acme"><input name="csrf" value="x"></form>'
    )
    with page.expect_navigation():
        page.evaluate("document.forms[0].submit()")
    assert "refused" in page.content()
    # the admin's own cookie, from this origin, but without the session's token
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(target, data={"tenant": "acme", "csrf": "forged"}, cookies=cookies)
    assert forged.status_code == 403
    assert len(KeyStore(stack.url, migrate=False).list()) == before


@pytest.mark.parametrize("width", [390])
def test_pages_fit_a_phone(browser: Any, stack: Stack, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(stack.gateway.url + "/ui/login")
        page.fill("#key", stack.admin_key)
        page.click("form[action='/ui/login'] button[type=submit]")
        page.wait_for_url(stack.gateway.url + "/ui/")
        for path in ("/ui/", "/ui/tenants"):
            page.goto(stack.gateway.url + path)
            # the page itself does not scroll sideways: wide tables scroll inside their own box
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, path
    finally:
        context.close()
