"""Debian's headless Chromium talks to the media bridge directly (no SIP): its ICE agent,
DTLS and SRTP against heron's ICE-lite leg, with a desk phone played by a UDP socket.

The browser's audio is an oscillator (no microphone needed on about:blank); the phone
sends G.711. Chromium gathers candidates on loopback only with
``--allow-loopback-in-peer-connection`` (shared/browser-testing.md, trap 1).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from heron.sip.media import MediaLeg, Side, Transport
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.media import Phone, host_networks, loopback_bridge, phones, port_of, rtp
from tests.support.tools import missing

if TYPE_CHECKING:
    from playwright.async_api import Page

LEG = MediaLeg("chromium@test", "z9hG4bK-c")
TIMEOUT = 30.0
OFFER = """async () => {
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const out = audio.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.addTrack(out.stream.getAudioTracks()[0], out.stream);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(done => {
    if (pc.iceGatheringState === "complete") done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  return pc.localDescription.sdp;
}"""
INBOUND = """async () => {
  let packets = 0;
  (await window.pc.getStats()).forEach(report => {
    if (report.type === "inbound-rtp") packets += report.packetsReceived;
  });
  return [window.pc.connectionState, packets];
}"""


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright is missing: `make test-deps` installs the test extra")
        raise AssertionError("unreachable") from None  # pragma: no cover
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: `make test-deps` installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def keep_sending(phone: Phone, port: int) -> None:
    for sequence in range(100_000):
        phone.send(rtp(sequence, bytes([0x90, 0x10] * 80), ssrc=0xCAFE), port)
        await asyncio.sleep(0.02)


async def received_by_chromium(page: Page) -> None:
    """Until Chromium is connected and counts inbound RTP (it polls its own stats)."""
    while True:
        state, packets = await page.evaluate(INBOUND)
        if state == "connected" and packets > 0:
            return
        await asyncio.sleep(0.2)


async def test_chromium_offers_to_a_desk_phone_and_audio_flows_both_ways() -> None:
    bridge = loopback_bridge(allowed_destinations=host_networks())
    async with chromium_page() as page:
        offer = (await page.evaluate(OFFER)).encode()
        with phones(1) as (phone,):
            toward_phone = bridge.offer(LEG, Side.CALLER, offer, Transport.RTP)
            answer = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0 101"))
            await page.evaluate(
                "sdp => window.pc.setRemoteDescription({type: 'answer', sdp})", answer.decode()
            )
            while True:
                data, _ = await phone.receive()
                if data[1] & 0x7F == 0 and len(data) == 172:
                    break
            sender = asyncio.create_task(keep_sending(phone, port_of(toward_phone)))
            try:
                await asyncio.wait_for(received_by_chromium(page), TIMEOUT)
            finally:
                sender.cancel()
    assert bridge.stats.drops["srtp"] == 0 and bridge.stats.drops["stun"] == 0
    bridge.close()
    assert bridge.ports == 0


async def test_chromium_calls_the_echo_and_hears_itself() -> None:
    bridge = loopback_bridge(allowed_destinations=host_networks())
    async with chromium_page() as page:
        offer = (await page.evaluate(OFFER)).encode()
        answer = bridge.echo(LEG, offer)
        await page.evaluate(
            "sdp => window.pc.setRemoteDescription({type: 'answer', sdp})", answer.decode()
        )
        await asyncio.wait_for(received_by_chromium(page), TIMEOUT)
    assert bridge.stats.packets[Side.CALLER] > 0
    bridge.delete(LEG)
    assert bridge.ports == 0
