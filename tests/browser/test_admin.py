"""The admin page in a real browser: an admin adds a user who then registers over SIP;
a user without admin rights is refused.

The SIP check uses tests/interop/sip/wire.py (digest computed outside heron) over
``wss://.../sip``, in a thread of its own since Playwright's sync API owns this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import DOMAIN, TlsFiles, WebHeron, login, web_heron
from tests.interop.sip.wire import UserAgent, WebSocketChannel, trusting

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.interop

USERS = {"root": "root-web-secret", "clerk": "clerk-web-secret"}
TIMEOUT = 10_000
"""Milliseconds a page step may take."""


@pytest.fixture(scope="module")
def admin_heron(
    tmp_path_factory: pytest.TempPathFactory, browser_tls: TlsFiles
) -> Iterator[WebHeron]:
    """heron with root as a config admin and clerk as a plain user."""
    settings = {"admins": [f"root@{DOMAIN}"]}
    with web_heron(tmp_path_factory.mktemp("heron-admin"), browser_tls, USERS, settings) as server:
        yield server


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def sip_register(server: WebHeron, certificate: Path, user: str, password: str) -> int:
    async def register() -> int:
        url = f"wss://localhost:{server.web_port}/sip"
        channel = await WebSocketChannel.connect(url, trusting(str(certificate)))
        try:
            _, final = await UserAgent(channel, user, password).register()
        finally:
            await channel.close()
        return final.status or 0

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, register()).result(timeout=30)


def test_admin_adds_a_user_who_can_then_register(
    page: Page, admin_heron: WebHeron, browser_tls: TlsFiles, artifacts: Path
) -> None:
    login(page, admin_heron, "root", USERS["root"], "/admin")
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT)
    assert page.text_content("#whoami") == f"root@{DOMAIN}"
    page.fill("#add-user input[name=address]", f"newbie@{DOMAIN}")
    page.fill("#add-user input[name=password]", "newbie-secret")
    page.click("#add-user button[type=submit]")
    row = page.wait_for_selector(f'tr[data-address="newbie@{DOMAIN}"]', timeout=TIMEOUT)
    assert row is not None
    assert "Added newbie@localhost" in (page.text_content("#status") or "")
    assert sip_register(admin_heron, browser_tls.certificate, "newbie", "newbie-secret") == 200
    registrations = page.locator("table[data-source='/api/registrations'] td", has_text="newbie")
    registrations.first.wait_for(timeout=TIMEOUT)  # the page polls the live list
    page.locator("polyline.sip").wait_for(state="attached", timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "admin.png"), full_page=True)


def test_admin_deletes_a_user_after_confirming(page: Page, admin_heron: WebHeron) -> None:
    login(page, admin_heron, "root", USERS["root"], "/admin")
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT)
    page.fill("#add-user input[name=address]", f"temp@{DOMAIN}")
    page.fill("#add-user input[name=password]", "temp-secret")
    page.click("#add-user button[type=submit]")
    row = page.locator(f'tr[data-address="temp@{DOMAIN}"]')
    row.wait_for(timeout=TIMEOUT)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached", timeout=TIMEOUT)
    assert "Deleted temp@localhost" in (page.text_content("#status") or "")


def test_non_admin_is_refused_the_admin_page(page: Page, admin_heron: WebHeron) -> None:
    login(page, admin_heron, "clerk", USERS["clerk"], "/phone")
    response = page.goto(admin_heron.url("/admin"))
    assert response is not None and response.status == 403
    assert page.evaluate("fetch('/api/users').then((r) => r.status)") == 403


def test_wrong_password_stays_on_the_login_page(page: Page, admin_heron: WebHeron) -> None:
    page.goto(admin_heron.url("/login?next=/admin"))
    page.fill("input[name=address]", f"root@{DOMAIN}")
    page.fill("input[name=password]", "not the password")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/login")
    assert "Wrong address or password" in (page.text_content(".error") or "")
    assert page.input_value("input[name=next]") == "/admin"
