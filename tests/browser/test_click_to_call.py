"""Click-to-call in a real browser: an anonymous visitor calls ``sales`` from /call/sales.

The staff phone is roland logged in to /phone in a browser context of his own; the
visitor is another context with no login at all. ``web.click_to_call`` maps ``sales`` to
roland, so the visitor's INVITE to ``sip:sales@localhost`` rings his phone; any other
address the visitor's JsSIP tries (roland directly, another domain) is refused by heron's
SIP proxy, which the test drives from the visitor's own page as a hostile visitor would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import DOMAIN, TlsFiles, WebHeron, login, web_heron

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.interop

STAFF = {"roland": "roland-web-secret"}
CALL_TIMEOUT = 20_000
"""Milliseconds a call step may take."""

RECORD_PEER_CONNECTIONS = """
window.__peerConnections = [];
window.RTCPeerConnection = class extends window.RTCPeerConnection {
  constructor(...args) { super(...args); window.__peerConnections.push(this); }
};
"""
"""An init script: the test reads getStats of the page's connection, no hook in call.js."""

AUDIO_RECEIVED = """
async () => {
  const stats = await window.__peerConnections.at(-1).getStats();
  let bytes = 0;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") bytes += s.bytesReceived;
  });
  return bytes > 0;
}
"""

ANONYMOUS_CALL = """
async (target) => {
  const config = await (await fetch("/call/sales/config.json")).json();
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(`wss://${location.host}/sip`)],
    uri: config.identity.uri,
    register: false,
  });
  return await new Promise((resolve) => {
    ua.on("connected", () => {
      ua.call(target, {
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: config.ice_servers },
        eventHandlers: {
          failed: (e) => { ua.stop(); resolve(e.message ? e.message.status_code : e.cause); },
          confirmed: () => { ua.stop(); resolve("connected"); },
        },
      });
    });
    ua.start();
  });
}
"""
"""What a hostile visitor can do from the page: JsSIP's anonymous UA calling any target;
resolves to the final status heron answered."""

FETCH = """
async (path) => {
  const response = await fetch(path, { cache: "no-store" });
  return { status: response.status, cache: response.headers.get("cache-control"),
           text: await response.text() };
}
"""
"""A same-origin fetch from the page (Playwright's own request client would not trust
the test certificate, which only Chromium was told to)."""


@pytest.fixture(scope="module")
def call_heron(
    tmp_path_factory: pytest.TempPathFactory, browser_tls: TlsFiles
) -> Iterator[WebHeron]:
    settings = {"web": {"click_to_call": {"sales": f"roland@{DOMAIN}"}}}
    directory = tmp_path_factory.mktemp("heron-click-to-call")
    with web_heron(directory, browser_tls, STAFF, settings) as server:
        yield server


@pytest.fixture
def staff(browser: Browser, call_heron: WebHeron) -> Iterator[Page]:
    """roland's phone: logged in to /phone and registered."""
    context = browser.new_context()
    try:
        context.grant_permissions(["microphone", "camera"], origin=call_heron.base_url)
        page = context.new_page()
        login(page, call_heron, "roland", STAFF["roland"], "/phone")
        page.wait_for_selector("body[data-registration=registered]", timeout=CALL_TIMEOUT)
        yield page
    finally:
        context.close()


@pytest.fixture
def visitor(browser: Browser, call_heron: WebHeron) -> Iterator[Page]:
    """A visitor's fresh context on a phone-sized screen: no login, no cookie."""
    context = browser.new_context(viewport={"width": 390, "height": 600})
    try:
        context.grant_permissions(["microphone"], origin=call_heron.base_url)
        context.add_init_script(RECORD_PEER_CONNECTIONS)
        yield context.new_page()
    finally:
        context.close()


def test_anonymous_visitor_rings_the_staff_phone_behind_a_public_name(
    staff: Page, visitor: Page, call_heron: WebHeron, artifacts: Path
) -> None:
    visitor.goto(call_heron.url("/call/sales"))
    assert visitor.text_content("h1") == "Call sales"
    visitor.screenshot(path=artifacts / "1-visitor-ready.png")

    visitor.click("#call")
    staff.wait_for_selector("body[data-call=incoming]", timeout=CALL_TIMEOUT)
    visitor.wait_for_selector("body[data-state=ringing]", timeout=CALL_TIMEOUT)
    caller = staff.text_content("#caller") or ""
    assert "anonymous@anonymous.invalid" in caller, caller
    staff.screenshot(path=artifacts / "2-staff-incoming.png")

    staff.click("#answer-audio")
    visitor.wait_for_selector("body[data-state=connected]", timeout=CALL_TIMEOUT)
    staff.wait_for_selector("body[data-call=connected]", timeout=CALL_TIMEOUT)
    # Media flows: the visitor hears the staff phone's (fake) microphone.
    visitor.wait_for_function(AUDIO_RECEIVED, timeout=CALL_TIMEOUT, polling=200)
    visitor.screenshot(path=artifacts / "3-visitor-connected.png")

    visitor.click("#hangup")
    visitor.wait_for_selector("body[data-state=ended]", timeout=CALL_TIMEOUT)
    staff.wait_for_selector("body[data-call=ended]", timeout=CALL_TIMEOUT)
    assert visitor.text_content("#status") == "Call ended."
    visitor.screenshot(path=artifacts / "4-visitor-ended.png")


def test_anonymous_visitor_cannot_call_any_other_address(
    staff: Page, visitor: Page, call_heron: WebHeron
) -> None:
    response = visitor.goto(call_heron.url("/call/sales"))
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy

    assert visitor.evaluate(ANONYMOUS_CALL, f"sip:roland@{DOMAIN}") == 403
    assert visitor.evaluate(ANONYMOUS_CALL, "sip:someone@example.com") == 403
    assert staff.get_attribute("body", "data-call") == "idle"
    assert visitor.evaluate(FETCH, "/call/roland")["status"] == 404


def test_config_gives_short_lived_turn_credentials_only(
    visitor: Page, call_heron: WebHeron
) -> None:
    visitor.goto(call_heron.url("/call/sales"))
    config = visitor.evaluate(FETCH, "/call/sales/config.json")
    assert config["status"] == 200 and config["cache"] == "no-store", config
    body = json.loads(config["text"])
    assert body["target"] == f"sip:sales@{DOMAIN}"
    assert body["identity"]["uri"] == "sip:anonymous@anonymous.invalid"
    turn = body["ice_servers"][-1]
    expiry, _, user = turn["username"].partition(":")
    now = time.time()
    assert now < int(expiry) <= now + 300 + 5, turn
    assert user.startswith("anonymous-"), turn
    assert STAFF["roland"] not in config["text"]


def test_embedded_button_opens_the_call_page(browser: Browser, call_heron: WebHeron) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        # Another site's page, embedding the snippet with a label of its own.
        script = call_heron.url("/call/sales/button.js")
        page.set_content(f'<p>Falcot</p><script src="{script}" data-label="Talk to us"></script>')
        button = page.wait_for_selector("button.heron-call-button")
        assert button is not None and button.text_content() == "Talk to us"
        with context.expect_page() as opened:
            button.click()
        popup = opened.value
        popup.wait_for_load_state()
        assert popup.url == call_heron.url("/call/sales")
        assert popup.text_content("h1") == "Call sales"
    finally:
        context.close()
