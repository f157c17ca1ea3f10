"""Fixtures for the console tests: the running stack (console_stack.py) and Debian's chromium driven by
Playwright (never a downloaded browser: `executable_path=/usr/bin/chromium`; `make install` puts it there).

    stack          the running gateway, its database URL and the keys (admin, acme, globex)
    browser        one chromium per test module (skipped, saying why, without /usr/bin/chromium or playwright);
                   module-scoped so that Playwright's event loop is gone before the next module runs, whatever
                   the order (package scope left it running for a module of another package run after it)
    signed_in      a new browser context signed in with a key: `signed_in(stack.admin_key)`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from console_stack import Stack, filed, make_traffic, stack_config

from owstack import storage
from procs import run_gateway, run_upstream

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from owstack.tenancy.keys import KeyStore

    tmp = tmp_path_factory.mktemp("console")
    with run_upstream(tmp) as upstream:
        config = stack_config(tmp, upstream)
        url = config["storage"]["url"]
        keys = KeyStore(url)
        admin, _ = keys.create("console-admin", admin=True, label="test admin")
        acme, _ = keys.create("acme", label="acme app")
        globex, _ = keys.create("globex", label="globex app")
        storage.dispose(url)
        with run_gateway(tmp, config) as gateway:
            config_file = tmp / "console.yaml"
            config_file.write_text(yaml.safe_dump(config))
            stack = Stack(gateway, url, admin, acme, globex, tmp, config_file)
            make_traffic(stack)
            stack.rows = filed(url, 13)
            yield stack
        storage.dispose(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make install` installs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the [dev] extra) is not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def signed_in(browser: Any, stack: Stack) -> Iterator[Callable[..., Any]]:
    """`signed_in(key)`: a fresh browser context (its own cookies) signed in through the sign-in form."""
    contexts: list[Any] = []

    def sign_in(key: str, **options: Any) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
        contexts.append(context)
        page = context.new_page()
        page.goto(stack.gateway.url + "/ui/")
        assert "/ui/login" in page.url
        page.fill("#key", key)
        page.click("form[action='/ui/login'] button[type=submit]")
        page.wait_for_url(stack.gateway.url + "/ui/")
        return page

    yield sign_in
    for context in contexts:
        context.close()
