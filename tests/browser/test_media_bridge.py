"""The web phone and a desk phone talk through heron's media bridge (issue 14).

The web phone (Debian's headless Chromium, JsSIP over WebSocket) speaks ICE + DTLS-SRTP;
the desk phone (baresip, registered over UDP) speaks plain RTP, G.711 only. Only heron's
bridge joins them. Chromium's fake microphone plays a WAV of ``BROWSER_HZ`` and baresip's
a WAV of ``DESK_HZ``, so every direction is proved by finding the other side's tone:
sox and a Goertzel filter on baresip's recording, and in the browser the remote track's
spectrum (Web Audio) and ``getStats`` audio energy. Hold, resume and hang-up from either
side must leave the bridge with no call and no port (``media.counters``), and a call
between two web phones must not enter the bridge at all.

The page is driven as a person would; the only hooks are init scripts that keep the
page's RTCPeerConnection for getStats and ask for a raw microphone (no echo cancelling,
noise suppression or gain control, which would treat a steady tone as noise).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from heron.control import query
from tests.browser.conftest import DOMAIN, LOCALHOST, STAFF, TlsFiles, WebHeron, login, web_heron
from tests.browser.test_phone import RECORD_PEER_CONNECTIONS
from tests.support.baresip import Baresip, baresip
from tests.support.config import free_port
from tests.support.tone import make_tone, tone_report

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.interop

BROWSER_HZ = 440
DESK_HZ = 1000
DESK = ("carol", "carol-desk-secret")
ECHO = "600"
MEDIA_PORTS = 40
CALL_TIMEOUT = 20_000
"""Milliseconds a call step may take in the browser."""
SETTLE_SECONDS = 10.0
"""How long the bridge may take to free a call's ports after the BYE went through."""
HEARD_SECONDS = 1.0
"""Seconds of baresip's recording that must hold the browser's tone."""
TONE_SECONDS = 300
"""baresip ends a call when its source file ends: longer than any call here."""

RAW_MICROPHONE = """
const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => getUserMedia(
  constraints && constraints.audio
    ? { ...constraints,
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } }
    : constraints);
"""

INBOUND_AUDIO = """
async ([energy, timeout]) => {
  // The page's inbound audio once its totalAudioEnergy passed ``energy`` (or the timeout).
  const sample = async () => {
    const pc = window.__peerConnections.at(-1);
    const stats = await pc.getStats();
    let found = { energy: 0, level: 0, bytes: 0, codec: null };
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        const codec = s.codecId && stats.get(s.codecId);
        found = { energy: s.totalAudioEnergy || 0, level: s.audioLevel || 0,
                  bytes: s.bytesReceived, codec: codec ? codec.mimeType : null };
      }
    });
    return found;
  };
  const deadline = Date.now() + timeout;
  for (;;) {
    const found = await sample();
    if (found.energy > energy || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
"""

REMOTE_PEAKS = """
async ([count, timeout]) => {
  // The loudest frequency of the remote audio track, ``count`` times 200 ms apart.
  const pc = window.__peerConnections.at(-1);
  const receiver = pc.getReceivers().find((r) => r.track && r.track.kind === "audio");
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(new MediaStream([receiver.track])).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const peaks = [];
  const deadline = Date.now() + timeout;
  while (peaks.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    if (bins[best] > -70) peaks.push(best * context.sampleRate / analyser.fftSize);
  }
  await context.close();
  return peaks;
}
"""


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tones")
    return {
        # Chromium loops its fake capture file; 48 kHz is its capture rate.
        "browser": make_tone(directory / "browser.wav", 48000, 5, BROWSER_HZ),
        "desk": make_tone(directory / "desk.wav", 8000, TONE_SECONDS, DESK_HZ),
    }


@pytest.fixture(scope="module")
def browser_args(tones: dict[str, Path]) -> list[str]:
    return [
        f"--use-file-for-fake-audio-capture={tones['browser']}",
        "--autoplay-policy=no-user-gesture-required",  # Web Audio on the remote track
    ]


@pytest.fixture(scope="module")
def media_heron(
    tmp_path_factory: pytest.TempPathFactory, browser_tls: TlsFiles
) -> Iterator[WebHeron]:
    """heron with the bridge on loopback, the echo number, and a desk phone account."""
    ports = [free_port() for _ in range(MEDIA_PORTS)]
    settings = {
        "sip": {
            "echo": ECHO,
            "digest_algorithms": ["MD5"],  # baresip 1.0 fails on SHA-256 challenges
        },
        "media": {
            "address": LOCALHOST,
            "port_min": ports[0],
            "port_max": ports[-1],
            "allowed_destinations": ["127.0.0.0/8"],
        },
    }
    users = {**STAFF, DESK[0]: DESK[1]}
    directory = tmp_path_factory.mktemp("heron-media")
    with web_heron(directory, browser_tls, users, settings) as server:
        yield server


@pytest.fixture
def desk(media_heron: WebHeron, tones: dict[str, Path], tmp_path: Path) -> Iterator[Baresip]:
    """carol's baresip, answering by itself."""
    proxy = (LOCALHOST, media_heron.sip_port)
    with baresip(tmp_path / "carol", f"{DESK[0]}@{DOMAIN}", DESK[1], proxy, tones["desk"]) as phone:
        yield phone


@pytest.fixture
def phones(browser: Browser, media_heron: WebHeron) -> Iterator[dict[str, Page]]:
    """alice and bob logged in to /phone, each in a browser context of their own."""
    contexts: list[BrowserContext] = []
    pages = {}
    try:
        for user, password in STAFF.items():
            context = browser.new_context()
            contexts.append(context)
            context.grant_permissions(["microphone", "camera"], origin=media_heron.base_url)
            context.add_init_script(RECORD_PEER_CONNECTIONS)
            context.add_init_script(RAW_MICROPHONE)
            page = context.new_page()
            login(page, media_heron, user, password, "/phone")
            pages[user] = page
        for page in pages.values():
            page.wait_for_selector("body[data-registration=registered]", timeout=CALL_TIMEOUT)
        yield pages
    finally:
        for context in contexts:
            context.close()


def media_counters(server: WebHeron) -> dict[str, Any]:
    """The bridge's ``media.counters`` row: calls, ports, calls_total, packets..."""
    data = Path(server.heron.config).parent / "var"
    # In a thread of its own: Playwright's sync API keeps this thread's event loop running.
    with ThreadPoolExecutor(1) as pool:
        rows = pool.submit(asyncio.run, query(data, "media.counters")).result()
    row: dict[str, Any] = rows[0]
    return row


def bridge_emptied(server: WebHeron) -> dict[str, Any]:
    """The counters once the bridge holds no call and no port (or as they are at the end
    of SETTLE_SECONDS): the proxy deletes the leg as the BYE or CANCEL passes."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        counters = media_counters(server)
        if (counters["calls"], counters["ports"]) == (0, 0) or time.monotonic() > deadline:
            return counters
        time.sleep(0.2)


def dial(page: Page, target: str) -> None:
    page.fill("#target", target)
    page.click("#call-audio")


def wait_call(page: Page, state: str) -> None:
    page.wait_for_selector(f"body[data-call={state}]", timeout=CALL_TIMEOUT)


def inbound_audio(page: Page, energy: float = 0.0) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(INBOUND_AUDIO, [energy, CALL_TIMEOUT])
    return found


def remote_peak(page: Page) -> float:
    """The median loudest frequency the page hears from the other side."""
    peaks: list[float] = page.evaluate(REMOTE_PEAKS, [10, CALL_TIMEOUT])
    assert peaks, "no audible remote audio"
    return statistics.median(peaks)


def hears(page: Page, frequency: int) -> None:
    """The page's remote audio carries energy, growing, and its loudest pitch is ``frequency``."""
    first = inbound_audio(page)
    assert first["energy"] > 0, first
    second = inbound_audio(page, first["energy"])
    assert second["energy"] > first["energy"] and second["level"] > 0, second
    assert second["codec"] in ("audio/PCMU", "audio/PCMA"), second  # what baresip speaks
    peak = remote_peak(page)
    assert abs(peak - frequency) < 20, peak


def test_web_phone_calls_desk_phone_which_hears_the_browser_tone(
    phones: dict[str, Page], desk: Baresip, media_heron: WebHeron
) -> None:
    alice = phones["alice"]
    before = media_counters(media_heron)
    dial(alice, DESK[0])
    desk.event("CALL_ESTABLISHED")  # baresip answers by itself
    wait_call(alice, "connected")
    desk.event("CALL_RTPESTAB")  # RTP reached baresip from the bridge
    during = media_counters(media_heron)
    assert during["calls"] == 1 and during["ports"] > 0, during
    assert during["calls_total"] == before["calls_total"] + 1, (before, during)
    hears(alice, DESK_HZ)
    for _ in range(2):  # a report every few seconds: seconds of audio recorded
        desk.event("CALL_RTCP")

    alice.click("#hangup")
    wait_call(alice, "ended")
    desk.event("CALL_CLOSED")
    after = bridge_emptied(media_heron)
    assert (after["calls"], after["ports"]) == (0, 0), after

    (recording,) = desk.received()
    heard = tone_report(recording, BROWSER_HZ)
    assert heard.tone_seconds >= HEARD_SECONDS, heard
    assert tone_report(recording, DESK_HZ).tone_seconds == 0  # not its own sound back


def test_desk_phone_calls_web_phone_hold_resume_from_both_sides_and_hangs_up(
    phones: dict[str, Page], desk: Baresip, media_heron: WebHeron
) -> None:
    alice = phones["alice"]
    desk.dial(f"sip:alice@{DOMAIN}")
    wait_call(alice, "incoming")
    alice.click("#answer-audio")
    wait_call(alice, "connected")
    desk.event("CALL_ESTABLISHED")
    hears(alice, DESK_HZ)
    during = media_counters(media_heron)
    assert during["calls"] == 1 and during["ports"] > 0, during

    # The desk phone holds (re-INVITE a=sendonly through the bridge), then resumes.
    desk.run("hold")
    wait_call(alice, "held")
    desk.run("resume")
    wait_call(alice, "connected")
    # The web phone holds and resumes.
    alice.click("#hold")
    wait_call(alice, "held")
    desk.logged("got re-INVITE")
    alice.click("#hold")
    wait_call(alice, "connected")
    desk.logged("got re-INVITE")
    energy = inbound_audio(alice)["energy"]
    assert inbound_audio(alice, energy)["energy"] > energy  # audio flows again
    assert media_counters(media_heron)["calls"] == 1

    desk.run("hangup")
    wait_call(alice, "ended")
    assert alice.text_content("#last-call") == f"carol@{DOMAIN} ended the call."
    after = bridge_emptied(media_heron)
    assert (after["calls"], after["ports"]) == (0, 0), after

    (recording,) = desk.received()
    assert tone_report(recording, BROWSER_HZ).tone_seconds >= HEARD_SECONDS


def test_web_phone_calls_the_echo_number_and_hears_its_own_tone(
    phones: dict[str, Page], media_heron: WebHeron
) -> None:
    alice = phones["alice"]
    dial(alice, ECHO)
    wait_call(alice, "connected")
    first = inbound_audio(alice)
    assert first["energy"] > 0, first
    assert inbound_audio(alice, first["energy"])["energy"] > first["energy"]
    peak = remote_peak(alice)
    assert abs(peak - BROWSER_HZ) < 20, peak
    assert media_counters(media_heron)["calls"] == 1

    alice.click("#hangup")
    wait_call(alice, "ended")
    after = bridge_emptied(media_heron)
    assert (after["calls"], after["ports"]) == (0, 0), after


def test_two_web_phones_call_each_other_without_the_bridge(
    phones: dict[str, Page], media_heron: WebHeron
) -> None:
    alice, bob = phones["alice"], phones["bob"]
    before = media_counters(media_heron)
    dial(alice, "bob")
    wait_call(bob, "incoming")
    bob.click("#answer-audio")
    for page in (alice, bob):
        wait_call(page, "connected")
    for page in (alice, bob):
        found = inbound_audio(page)
        assert found["energy"] > 0, found
        assert abs(remote_peak(page) - BROWSER_HZ) < 20
    during = media_counters(media_heron)
    assert during["calls"] == 0 and during["calls_total"] == before["calls_total"], during
    alice.click("#hangup")
    for page in (alice, bob):
        wait_call(page, "ended")
    assert media_counters(media_heron)["calls_total"] == before["calls_total"]
