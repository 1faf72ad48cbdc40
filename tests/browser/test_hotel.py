"""The hotel test (issue 13): a video call between two web phones whose only way out is an
HTTP proxy that allows CONNECT to port 443, UDP dropped.

The browsers run in the hotel's network namespace (tests/support/hotel.py) with
``--proxy-server``, and WebRTC told to send nothing that bypasses the proxy; heron runs in
the world's. The call can only work if the pages, the SIP WebSocket and TURN over TLS all
go through the proxy's CONNECT to port 443: the test proves the hotel is closed otherwise,
that each phone's selected candidate is a TURN relay reached over TLS, that media flows both
ways, and that the proxy carried the connections.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DOMAIN,
    STAFF,
    TlsFiles,
    WebHeron,
    login,
)
from tests.browser.test_phone import CALL_STATS, CALL_TIMEOUT, PHONE, RECORD_PEER_CONNECTIONS
from tests.support.config import render_toml
from tests.support.heron import RunningHeron, merge, provision, serving
from tests.support.hotel import WORLD_ADDRESSES, WORLD_NETWORK, Hotel, connects, hotel_network
from tests.support.tools import missing

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

pytestmark = pytest.mark.interop

HTTPS = 443
HERON_NAME = "heron.hotel.test"
"""The DNS name of heron's one address in the mux test, which the proxy resolves."""


@pytest.fixture(scope="module")
def hotel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotel]:
    names = {HERON_NAME: WORLD_ADDRESSES[0]}
    with hotel_network(tmp_path_factory.mktemp("hotel"), names) as network:
        yield network


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is missing: `make test-deps` installs the test extra")
        raise AssertionError("unreachable") from None  # pragma: no cover
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: `make test-deps` installs Debian's chromium")
    with sync_playwright() as running:
        yield running


@contextmanager
def guest_browser(
    playwright: Playwright, hotel: Hotel, tls: TlsFiles, profile: Path
) -> Iterator[BrowserContext]:
    """Debian's Chromium in the hotel, through the proxy, trusting heron's key only.

    WebRTC gets the IP handling policy an administrator sets for browsers behind a proxy,
    ``disable_non_proxied_udp``: no UDP, TCP (so TURN over TLS) through the proxy only.
    Chromium takes it from the profile's preferences (``--force-webrtc-ip-handling-policy``
    is for content_shell and headless_shell only), so each guest is a browser with a
    profile of its own. Without it Chromium also tries UDP, which the hotel drops, and
    only ends gathering when those tries time out, some 40 s later.
    """
    (profile / "Default").mkdir(parents=True)
    preferences = {"webrtc": {"ip_handling_policy": "disable_non_proxied_udp"}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    args = [
        *CHROMIUM_ARGS,
        f"--ignore-certificate-errors-spki-list={tls.spki}",
        f"--proxy-server={hotel.proxy_url}",
    ]
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=hotel.wrapper(profile.parent, str(CHROMIUM)),
        headless=True,
        args=args,
    )
    try:
        yield context
    finally:
        context.close()


@contextmanager
def world_heron(
    hotel: Hotel, directory: Path, tls: TlsFiles, settings: dict[str, Any]
) -> Iterator[RunningHeron]:
    """heron in the world with the staff users, SIP on 5060, TURN relaying between the
    world's addresses, and the listeners of ``settings``."""
    config = directory / "heron.toml"
    base: dict[str, Any] = {
        "data_dir": str(directory / "var"),
        "domain": DOMAIN,
        "tls": {"certificate": str(tls.certificate), "key": str(tls.key)},
        "sip": {"listen": [f"{WORLD_ADDRESSES[0]}:5060"], "tls_listen": []},
        "xmpp": {"enabled": False},
        "turn": {"allowed_peer_ranges": [WORLD_NETWORK]},
    }
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(render_toml(merge(base, settings)))
    provision(config, {f"{user}@{DOMAIN}": password for user, password in STAFF.items()})
    with serving(config, hotel.in_world()) as running:
        yield running
    log = "".join(running.log)
    assert running.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


def _stats(page: Page, audio: int, video: int) -> dict[str, Any]:
    stats: dict[str, Any] = page.evaluate(CALL_STATS, [audio, video, CALL_TIMEOUT])
    return stats


@contextmanager
def _video_call(
    playwright: Playwright, hotel: Hotel, tls: TlsFiles, server: WebHeron, directory: Path
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """alice calls bob with video, bob answers; two stats samples per side, the second
    once more audio and video came in than in the first (browser-testing.md trap 6).
    The call lasts until the block ends."""
    with ExitStack() as guests:
        pages = []
        for user, password in STAFF.items():
            context = guests.enter_context(guest_browser(playwright, hotel, tls, directory / user))
            context.grant_permissions(["camera", "microphone"], origin=server.base_url)
            context.add_init_script(RECORD_PEER_CONNECTIONS)
            page = context.pages[0]
            login(page, server, user, password, PHONE)
            pages.append(page)
        for page in pages:
            page.wait_for_selector("body[data-registration=registered]", timeout=CALL_TIMEOUT)
        alice, bob = pages
        alice.fill("#target", "bob")
        alice.click("#call-video")
        bob.wait_for_selector("body[data-call=incoming]", timeout=CALL_TIMEOUT)
        bob.click("#answer-video")
        for page in pages:
            page.wait_for_selector("body[data-call=connected]", timeout=CALL_TIMEOUT)
        samples: dict[str, list[dict[str, Any]]] = {}
        for name, page in (("alice", alice), ("bob", bob)):
            samples[name] = [_stats(page, 0, 0)]
        for name, page in (("alice", alice), ("bob", bob)):
            first = samples[name][0]
            samples[name].append(_stats(page, first["audio"], first["video"]))
        yield samples
        alice.click("#hangup")
        for page in pages:
            page.wait_for_selector("body[data-call=ended]", timeout=CALL_TIMEOUT)


def _assert_relayed_over_tls(
    samples: dict[str, list[dict[str, Any]]], relay_address: str, allocations: str
) -> None:
    for name, (first, second) in samples.items():
        assert second["local"] == "relay" and second["remote"] == "relay", (name, second)
        assert second["relayProtocol"] == "tls", (name, second)
        assert second["localAddress"].startswith(f"{relay_address}:"), (name, second)
        assert second["localAddress"] in allocations, (name, second, allocations)
        assert first["audio"] > 0 and first["video"] > 0, (name, first)
        assert second["audio"] > first["audio"] and second["video"] > first["video"], (
            name,
            first,
            second,
        )


def _allocations(server: RunningHeron) -> str:
    listed = server.cli("turn", "allocations")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_hotel_is_closed_but_for_the_proxy_which_connects_to_443_only(hotel: Hotel) -> None:
    world = WORLD_ADDRESSES[0]
    assert hotel.probe("tcp", world, HTTPS).startswith("OSError 101"), "TCP left the hotel"
    assert hotel.probe("udp", world, 3478).startswith("OSError 101"), "UDP left the hotel"
    assert hotel.probe("connect", world, 3478) == "HTTP/1.1 403 Access violation"
    assert connects(hotel.proxy_log, world, 3478), "".join(hotel.proxy_log)


def test_hotel_video_call_relays_over_turn_tls_through_the_proxy_the_handbook_way(
    hotel: Hotel, playwright: Playwright, browser_tls: TlsFiles, tmp_path: Path
) -> None:
    """Each service on 443 of its own address (handbook §11.8.5): the web on the first,
    TURN over TLS on the second."""
    web, turn = WORLD_ADDRESSES
    settings: dict[str, Any] = {
        "turn": {"listen": [f"{turn}:3478"], "tls_listen": [f"{turn}:{HTTPS}"]},
        "web": {"listen": [f"{web}:{HTTPS}"]},
    }
    with world_heron(hotel, tmp_path / "heron", browser_tls, settings) as running:
        server = WebHeron(running, HTTPS, 5060, 3478, HTTPS, host=web)
        with _video_call(playwright, hotel, browser_tls, server, tmp_path) as samples:
            allocations = _allocations(running)
    _assert_relayed_over_tls(samples, turn, allocations)
    assert connects(hotel.proxy_log, web, HTTPS), "".join(hotel.proxy_log)
    assert connects(hotel.proxy_log, turn, HTTPS), "".join(hotel.proxy_log)


def test_hotel_video_call_relays_over_turn_tls_through_the_proxy_all_on_one_port(
    hotel: Hotel, playwright: Playwright, browser_tls: TlsFiles, tmp_path: Path
) -> None:
    """Every service on 443 of one address (the mux): the pages, the SIP WebSocket and
    TURN over TLS all through the one port the proxy lets through.

    Chromium offers no ALPN protocol for TURN over TLS (and no SNI when the ``turns:``
    URL names an address), which the mux hands to TURN; the pages and the WebSocket offer
    h2 and http/1.1, which choose the web component. The configuration is the README's:
    the mux on heron's one address, no service with a listener of its own, no ``mux.sni``.
    """
    world = WORLD_ADDRESSES[0]
    settings: dict[str, Any] = {
        "hostname": HERON_NAME,
        "mux": {"listen": [f"{world}:{HTTPS}"]},
        "turn": {"listen": [], "tls_listen": [], "relay_addresses": [world]},
        "sip": {"listen": [], "tls_listen": []},
        "web": {"listen": []},
    }
    with world_heron(hotel, tmp_path / "heron", browser_tls, settings) as running:
        server = WebHeron(running, HTTPS, HTTPS, HTTPS, HTTPS, host=HERON_NAME)
        with _video_call(playwright, hotel, browser_tls, server, tmp_path) as samples:
            allocations = _allocations(running)
    _assert_relayed_over_tls(samples, world, allocations)
    assert connects(hotel.proxy_log, HERON_NAME, HTTPS), "".join(hotel.proxy_log)
