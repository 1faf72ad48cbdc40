"""The web phone through the port-443 mux (issue 13): Chromium loads /phone from the mux
port and registers over WSS there, the page's own TLS with ALPN ``h2``/``http/1.1``
being what names the web component. heron keeps its other listeners; the browser is
pointed at the mux port only, and the WebSocket URL /config.js gives it follows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import LOCALHOST, TlsFiles, WebHeron, login, web_heron
from tests.support.config import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, WebSocket

pytestmark = pytest.mark.interop

USERS = {"carol": "carol-mux-secret"}
TIMEOUT = 20_000
"""Milliseconds the registration may take."""


@pytest.fixture(scope="module")
def mux_phone_heron(
    tmp_path_factory: pytest.TempPathFactory, browser_tls: TlsFiles
) -> Iterator[WebHeron]:
    """heron with the mux on a free port; the handle's ``web_port`` is the mux port, so
    every URL the test opens goes through it."""
    port = free_port()
    settings = {"mux": {"listen": [f"{LOCALHOST}:{port}"]}}
    directory = tmp_path_factory.mktemp("heron-mux-phone")
    with web_heron(directory, browser_tls, USERS, settings) as server:
        yield dataclasses.replace(server, web_port=port)


def test_phone_registers_over_wss_through_the_mux(
    browser: Browser, mux_phone_heron: WebHeron
) -> None:
    context = browser.new_context()
    try:
        context.grant_permissions(["camera", "microphone"], origin=mux_phone_heron.base_url)
        page = context.new_page()
        sockets: list[WebSocket] = []

        def opened(socket: WebSocket) -> None:
            sockets.append(socket)

        page.on("websocket", opened)
        login(page, mux_phone_heron, "carol", USERS["carol"], "/phone")
        page.wait_for_selector("body[data-registration=registered]", timeout=TIMEOUT)
        urls = [socket.url for socket in sockets]
    finally:
        context.close()

    assert urls == [f"wss://{LOCALHOST}:{mux_phone_heron.web_port}/sip"], urls
