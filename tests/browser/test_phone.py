"""The staff web phone in a real browser: two users call each other through heron's TURN.

Debian's headless Chromium with fake camera and microphone; each user has a browser
context of their own (own cookies, own WebRTC stack). The ICE transport policy is
``relay``, so the only candidates are heron's relayed ones and the media provably
passes through heron's TURN server, which the server's own allocation list confirms.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from heron.config import Config
from heron.credentials import TurnSecret, ice_servers, load_or_create_secret, web_phone_secret
from heron.web.phone import TURN_TTL
from tests.browser.conftest import DOMAIN, LOCALHOST, STAFF, TlsFiles, WebHeron, login, web_heron
from tests.support.config import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.interop

PHONE = "/phone?ice_policy=relay"
CALL_TIMEOUT = 20_000
"""Milliseconds a call step may take: relay gathering and answer take about a second here."""

RECORD_PEER_CONNECTIONS = """
window.__peerConnections = [];
window.RTCPeerConnection = class extends window.RTCPeerConnection {
  constructor(...args) { super(...args); window.__peerConnections.push(this); }
};
"""
"""An init script, so the test reads getStats of the page's connection without any hook
in the phone's own code."""

CALL_STATS = """
async ([audio, video, timeout]) => {
  // getStats of the page's connection, polled until more audio and video bytes came in
  // than the given counts (or the timeout passes).
  const sample = async () => {
    const pc = window.__peerConnections.at(-1);
    const stats = await pc.getStats();
    let transport = null, a = 0, v = 0;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) transport = s;
      if (s.type === "inbound-rtp") {
        if (s.kind === "audio") a += s.bytesReceived; else v += s.bytesReceived;
      }
    });
    const pair = transport && stats.get(transport.selectedCandidatePairId);
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    return {
      policy: pc.getConfiguration().iceTransportPolicy,
      local: local ? local.candidateType : null,
      localAddress: local ? `${local.address}:${local.port}` : null,
      relayProtocol: local ? local.relayProtocol : null,
      remote: remote ? remote.candidateType : null,
      audio: a, video: v,
    };
  };
  const deadline = Date.now() + timeout;
  for (;;) {
    const stats = await sample();
    if ((stats.audio > audio && stats.video > video) || Date.now() > deadline) return stats;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
"""


@pytest.fixture
def phones(browser: Browser, phone_heron: WebHeron) -> Iterator[tuple[Page, Page]]:
    """alice on a phone-sized screen, bob on a desktop one, each logged in to /phone."""
    sizes = ({"width": 390, "height": 844}, {"width": 1024, "height": 768})
    contexts: list[BrowserContext] = []
    pages = []
    try:
        for user, viewport in zip(STAFF, sizes, strict=True):
            context = browser.new_context(viewport=viewport)
            contexts.append(context)
            context.grant_permissions(["camera", "microphone"], origin=phone_heron.base_url)
            context.add_init_script(RECORD_PEER_CONNECTIONS)
            page = context.new_page()
            login(page, phone_heron, user, STAFF[user], PHONE)
            pages.append(page)
        for page in pages:
            page.wait_for_selector("body[data-registration=registered]", timeout=CALL_TIMEOUT)
        yield pages[0], pages[1]
    finally:
        for context in contexts:
            context.close()


def _stats(page: Page, audio: int, video: int) -> dict[str, Any]:
    """Call stats once more than ``audio`` and ``video`` bytes came in (or the timeout passed)."""
    stats: dict[str, Any] = page.evaluate(CALL_STATS, [audio, video, CALL_TIMEOUT])
    return stats


def _allocations(server: WebHeron) -> str:
    listed = server.heron.cli("turn", "allocations")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_video_call_between_two_staff_phones_is_relayed_by_heron_turn(
    phones: tuple[Page, Page], phone_heron: WebHeron, artifacts: Path
) -> None:
    alice, bob = phones
    alice.screenshot(path=artifacts / "1-alice-ready-phone-size.png", full_page=True)

    alice.fill("#target", "bob")
    alice.click("#call-video")
    bob.wait_for_selector("body[data-call=incoming]", timeout=CALL_TIMEOUT)
    alice.wait_for_selector("body[data-call=ringing]", timeout=CALL_TIMEOUT)
    assert f"alice@{DOMAIN}" in bob.text_content("#caller")  # type: ignore[operator]
    bob.screenshot(path=artifacts / "2-bob-incoming.png")

    bob.click("#answer-video")
    for page in (alice, bob):
        page.wait_for_selector("body[data-call=connected]", timeout=CALL_TIMEOUT)
    # Bytes may still be 0 right after the answer under load (trap 6): first wait for
    # media on both sides, then prove it keeps flowing between two samples.
    first = {name: _stats(page, 0, 0) for name, page in (("alice", alice), ("bob", bob))}
    second = {
        name: _stats(page, first[name]["audio"], first[name]["video"])
        for name, page in (("alice", alice), ("bob", bob))
    }

    allocations = _allocations(phone_heron)
    for name in ("alice", "bob"):
        stats = second[name]
        assert stats["policy"] == "relay", stats
        assert stats["local"] == "relay", stats
        assert stats["remote"] == "relay", stats
        assert stats["relayProtocol"] in ("udp", "tcp", "tls"), stats
        assert stats["localAddress"].startswith(f"{LOCALHOST}:"), stats
        # The relayed address is one of heron's own live allocations.
        assert stats["localAddress"] in allocations, (stats, allocations)
        assert first[name]["audio"] > 0 and first[name]["video"] > 0, first
        assert stats["audio"] > first[name]["audio"] and stats["video"] > first[name]["video"]
    alice.screenshot(path=artifacts / "3-alice-in-call-phone-size.png", full_page=True)
    bob.screenshot(path=artifacts / "4-bob-in-call.png")

    # Mute stays local; hold is a re-INVITE through heron's record-routed dialog.
    alice.click("#mute")
    assert alice.get_attribute("#mute", "aria-pressed") == "true"
    alice.click("#hold")
    alice.wait_for_selector("body[data-call=held]", timeout=CALL_TIMEOUT)
    bob.wait_for_selector("body[data-call=held]", timeout=CALL_TIMEOUT)
    assert bob.text_content("#call-state") == "Held by the other side"
    alice.click("#hold")
    for page in (alice, bob):
        page.wait_for_selector("body[data-call=connected]", timeout=CALL_TIMEOUT)

    alice.click("#hangup")
    for page in (alice, bob):
        page.wait_for_selector("body[data-call=ended]", timeout=CALL_TIMEOUT)
    assert alice.text_content("#last-call") == f"You ended the call with bob@{DOMAIN}."
    assert bob.text_content("#last-call") == f"alice <alice@{DOMAIN}> ended the call."
    assert bob.is_visible("#dial") and not bob.is_visible("#call")
    bob.screenshot(path=artifacts / "5-bob-call-ended.png")


FETCH = """
async ([path]) => {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  return { status: response.status, headers: Object.fromEntries(response.headers),
           body: await response.text() };
}
"""


def _fetch(page: Page, path: str) -> dict[str, Any]:
    """GET ``path`` from inside the page: the browser's own TLS trust and cookies."""
    fetched: dict[str, Any] = page.evaluate(FETCH, [path])
    return fetched


def _script_config(script: str) -> dict[str, Any]:
    match = re.fullmatch(r"window\.HERON_CONFIG = Object\.freeze\((.*)\);\n", script, re.S)
    assert match is not None, script
    config: dict[str, Any] = json.loads(match[1])
    return config


def _public_only(config: dict[str, Any], server: WebHeron) -> None:
    assert config["identity"] is None
    assert config["ice_servers"] == [{"urls": [f"stun:{LOCALHOST}:{server.turn_port}"]}]
    assert "credential" not in json.dumps(config) and "password" not in json.dumps(config)


def test_phone_page_needs_a_login_and_sends_a_strict_policy(
    browser: Browser, phone_heron: WebHeron
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(phone_heron.url(PHONE))
        redirected = urlsplit(page.url)
        assert redirected.path == "/login" and parse_qs(redirected.query)["next"] == [PHONE]
        login(page, phone_heron, "alice", STAFF["alice"], PHONE)
        headers = _fetch(page, "/phone")["headers"]
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["cache-control"] == "no-store"
    finally:
        context.close()


def test_config_js_gives_short_lived_credentials_and_never_the_password(
    browser: Browser, phone_heron: WebHeron
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        login(page, phone_heron, "alice", STAFF["alice"], PHONE)
        script = _fetch(page, "/config.js")
        assert script["headers"]["cache-control"] == "no-store"
        assert STAFF["alice"] not in script["body"]
        config = _script_config(script["body"])
    finally:
        context.close()
    now = time.time()
    assert config["websocket"] == f"wss://{LOCALHOST}:{phone_heron.web_port}/sip"
    assert config["domain"] == DOMAIN
    identity = config["identity"]
    assert identity["uri"] == f"sip:alice@{DOMAIN}"
    stamp, _, user = identity["authorization_user"].partition(":")
    expiry, _, grant = stamp.partition(".")  # expiry.grant:user, the grant ends with the session
    assert user == "alice" and grant and now < int(expiry) <= now + 24 * 3600
    turn = config["ice_servers"][-1]
    assert turn["urls"] == [
        f"turn:{LOCALHOST}:{phone_heron.turn_port}?transport=udp",
        f"turn:{LOCALHOST}:{phone_heron.turn_port}?transport=tcp",
        f"turns:{LOCALHOST}:{phone_heron.turn_tls_port}?transport=tcp",
    ]
    expiry, _, user = turn["username"].partition(":")
    assert user == f"alice@{DOMAIN}" and now < int(expiry) <= now + 3600 + 5
    assert turn["credential"] != STAFF["alice"]


def test_config_without_login_or_from_another_site_is_public_only(
    browser: Browser, phone_heron: WebHeron
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(phone_heron.url("/healthz"))
        _public_only(_script_config(_fetch(page, "/config.js")["body"]), phone_heron)
        login(page, phone_heron, "alice", STAFF["alice"], PHONE)
        cookies = {c["name"]: c["value"] for c in context.cookies(phone_heron.base_url)}
    finally:
        context.close()
    # A browser sends no SameSite=Strict cookie to a cross-site <script src>; should one
    # come all the same, Sec-Fetch-Site still keeps the credentials home.
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    assert _config_json(phone_heron, {"Cookie": cookie})["identity"] is not None
    cross_site = _config_json(phone_heron, {"Cookie": cookie, "Sec-Fetch-Site": "cross-site"})
    _public_only(cross_site, phone_heron)


def _config_json(
    server: WebHeron, headers: dict[str, str], path: str = "/config.json"
) -> dict[str, Any]:
    request = urllib.request.Request(server.url(path), headers=headers)
    unverified = ssl._create_unverified_context()  # our own test server, on loopback
    with urllib.request.urlopen(request, context=unverified, timeout=10) as response:
        config: dict[str, Any] = json.loads(response.read())
    return config


REGISTER_AS = """
([websocket, uri, user, password]) => new Promise((resolve) => {
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(websocket)], uri, register: true,
    authorization_user: user, password,
  });
  const done = (result) => { ua.stop(); resolve(result); };
  ua.on("registered", () => done({ registered: true }));
  ua.on("registrationFailed", (e) => done({
    registered: false, cause: e.cause, status: e.response ? e.response.status_code : null,
  }));
  ua.start();
})
"""
"""A second JsSIP user agent in the page, registering with the credentials given."""


def test_sip_refuses_expired_or_borrowed_web_phone_credentials(
    browser: Browser, phone_heron: WebHeron
) -> None:
    secret_file = phone_heron.heron.config.parent / "var" / "sip_secret"
    secret = web_phone_secret(load_or_create_secret(secret_file))
    now = time.time()
    websocket = f"wss://{LOCALHOST}:{phone_heron.web_port}/sip"
    bob_context = browser.new_context()
    try:
        bob = bob_context.new_page()
        login(bob, phone_heron, "bob", STAFF["bob"], PHONE)
        bobs = _script_config(_fetch(bob, "/config.js")["body"])["identity"]
    finally:
        bob_context.close()
    context = browser.new_context()
    try:
        page = context.new_page()
        login(page, phone_heron, "alice", STAFF["alice"], PHONE)
        alices = _script_config(_fetch(page, "/config.js")["body"])["identity"]
        # Signed with the server's own key, but past its expiry.
        expired = f"{int(now) - 60}.{alices['authorization_user'].partition('.')[2]}"
        attempts = {
            "expired": (f"sip:alice@{DOMAIN}", expired, secret.password(expired)),
            "borrowed": (f"sip:alice@{DOMAIN}", bobs["authorization_user"], bobs["password"]),
            "forged": (f"sip:alice@{DOMAIN}", f"{int(now) + 600}:alice", bobs["password"]),
            "control": (f"sip:alice@{DOMAIN}", alices["authorization_user"], alices["password"]),
        }
        results = {
            name: page.evaluate(REGISTER_AS, [websocket, *attempt])
            for name, attempt in attempts.items()
        }
    finally:
        context.close()
    assert results["control"] == {"registered": True}
    assert results["expired"]["status"] == 401, results
    assert results["forged"]["status"] == 401, results
    # bob's credential is good, for bob only (RFC 3261 §10.3 step 6); alice is never
    # called here, so the control's binding forks no other test's call.
    assert results["borrowed"]["status"] == 403, results


# --- where /config.js points browsers (no browser needed) ----------------------------------


def test_served_configs_lead_with_turn_on_the_mux_port(
    tmp_path: Path, browser_tls: TlsFiles
) -> None:
    """A running heron with ``[mux] listen``: /call/NAME/config.json (click-to-call) lists
    TURN over TLS and over UDP on the mux port before its own TURN ports."""
    mux_port = free_port()
    settings = {
        "mux": {"listen": [f"{LOCALHOST}:{mux_port}"]},
        "web": {"click_to_call": {"sales": f"alice@{DOMAIN}"}},
    }
    with web_heron(tmp_path / "heron", browser_tls, STAFF, settings) as server:
        call = _config_json(server, {}, "/call/sales/config.json")
        public = _config_json(server, {})
    assert call["ice_servers"][-1]["urls"] == [
        f"turns:{LOCALHOST}:{mux_port}?transport=tcp",
        f"turn:{LOCALHOST}:{mux_port}?transport=udp",
        f"turn:{LOCALHOST}:{server.turn_port}?transport=udp",
        f"turn:{LOCALHOST}:{server.turn_port}?transport=tcp",
        f"turns:{LOCALHOST}:{server.turn_tls_port}?transport=tcp",
    ]
    _public_only(public, server)


SECRET = TurnSecret(b"0123456789abcdef0123")


def _urls(turn: dict[str, Any], now: float = 1_000_000.0) -> list[str]:
    config = Config.model_validate({"hostname": "turn.example.org", "turn": turn})
    servers = ice_servers(config, SECRET, "alice@example.org", now=now, ttl=TURN_TTL)
    return [url for server in servers for url in server["urls"]]


def test_ice_servers_name_the_host_for_a_wildcard_listener_and_turns_for_tls() -> None:
    assert _urls({"listen": ["0.0.0.0:3478"], "tls_listen": ["0.0.0.0:5349"]}) == [
        "stun:turn.example.org:3478",
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:5349?transport=tcp",
    ]


def test_ice_servers_prefer_the_external_address_then_a_specific_listen_address() -> None:
    external = {"listen": ["0.0.0.0:3478"], "tls_listen": [], "external_address": "192.0.2.7"}
    assert _urls(external)[0] == "stun:192.0.2.7:3478"
    assert _urls({"listen": ["[2001:db8::1]:3478"], "tls_listen": []})[0] == (
        "stun:[2001:db8::1]:3478"
    )
    # localhost also resolves to ::1, where an IPv4 listener is not (browser-testing.md trap 4).
    assert _urls({"listen": ["localhost:3478"], "tls_listen": []})[0] == "stun:127.0.0.1:3478"


def test_ice_servers_turn_credentials_expire_within_the_hour_and_check_out() -> None:
    config = Config.model_validate({"turn": {"listen": ["127.0.0.1:3478"], "tls_listen": []}})
    turn = ice_servers(config, SECRET, "alice@localhost", now=1_000_000.0, ttl=TURN_TTL)[-1]
    assert turn["username"] == f"{1_000_000 + TURN_TTL}:alice@localhost"
    assert TURN_TTL <= 3600
    assert turn["credential"] == SECRET.password(turn["username"])
    assert (
        SECRET.long_term_keys(turn["username"], "localhost", now=1_000_000 + TURN_TTL + 1) is None
    )


def test_ice_servers_without_turn_are_none() -> None:
    config = Config.model_validate({"turn": {"enabled": False}})
    assert ice_servers(config, SECRET, "alice@localhost", now=0.0, ttl=TURN_TTL) == []


def test_ice_servers_put_turn_over_tls_and_udp_on_the_mux_port_first() -> None:
    """Issue 13: turns:HOST:443 and turn:HOST:443 (UDP) lead, HOST chosen as for any
    TURN listener (here the host name, for a wildcard)."""
    config = Config.model_validate(
        {
            "hostname": "turn.example.org",
            "turn": {"listen": ["0.0.0.0:3478"], "tls_listen": ["0.0.0.0:5349"]},
            "mux": {"listen": ["0.0.0.0:443"]},
        }
    )
    servers = ice_servers(config, SECRET, "alice@example.org", now=0.0, ttl=TURN_TTL)
    assert servers[0] == {"urls": ["stun:turn.example.org:3478"]}
    assert servers[1]["urls"] == [
        "turns:turn.example.org:443?transport=tcp",
        "turn:turn.example.org:443?transport=udp",
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:5349?transport=tcp",
    ]
    anonymous = ice_servers(config, None, None, now=0.0, ttl=TURN_TTL)
    assert anonymous == [{"urls": ["stun:turn.example.org:3478"]}]


def test_ice_servers_with_every_service_on_the_mux_port_alone() -> None:
    config = Config.model_validate(
        {
            "turn": {"listen": [], "tls_listen": [], "external_address": "192.0.2.7"},
            "mux": {"listen": ["10.0.0.5:443"]},
        }
    )
    servers = ice_servers(config, SECRET, "alice@localhost", now=0.0, ttl=TURN_TTL)
    assert [url for server in servers for url in server["urls"]] == [
        "stun:192.0.2.7:443",
        "turns:192.0.2.7:443?transport=tcp",
        "turn:192.0.2.7:443?transport=udp",
    ]
    off = config.model_copy(update={"turn": config.turn.model_copy(update={"enabled": False})})
    assert ice_servers(off, SECRET, "alice@localhost", now=0.0, ttl=TURN_TTL) == []
