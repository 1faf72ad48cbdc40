"""Debian's headless Chromium talks to the media bridge directly (no SIP): its ICE agent,
DTLS and SRTP against heron's ICE-lite leg, with a desk phone played by a UDP socket;
Chromium offering (heron answers passive), answering (it says active) and calling the echo.

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
PLAYER = """() => {
  // Chromium measures received audio (totalAudioEnergy) only where it is played out.
  window.play = (event) => {
    window.player = new Audio();
    window.player.srcObject = new MediaStream([event.track]);
    window.player.play();
  };
}"""
OFFER = """async () => {
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const out = audio.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.ontrack = play;
  pc.addTrack(out.stream.getAudioTracks()[0], out.stream);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(done => {
    if (pc.iceGatheringState === "complete") done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  return pc.localDescription.sdp;
}"""
INBOUND = """async () => {
  let energy = 0;
  (await window.pc.getStats()).forEach(report => {
    if (report.type === "inbound-rtp") energy += report.totalAudioEnergy || 0;
  });
  return [window.pc.connectionState, energy];
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
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = await browser.new_page()
            await page.evaluate(PLAYER)
            yield page
        finally:
            await browser.close()


async def keep_sending(phone: Phone, port: int) -> None:
    for sequence in range(100_000):
        phone.send(rtp(sequence, bytes([0x90, 0x10] * 80), ssrc=0xCAFE), port)
        await asyncio.sleep(0.02)


async def received_by_chromium(page: Page) -> None:
    """Until Chromium is connected and plays received audio with energy (as its own stats
    say)."""
    while True:
        state, energy = await page.evaluate(INBOUND)
        if state == "connected" and energy > 0:
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


ANSWER = """async (offer) => {
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const out = audio.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.ontrack = play;
  await pc.setRemoteDescription({type: "offer", sdp: offer});
  pc.getTransceivers()[0].sender.replaceTrack(out.stream.getAudioTracks()[0]);
  pc.getTransceivers()[0].direction = "sendrecv";
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise(done => {
    if (pc.iceGatheringState === "complete") done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  return pc.localDescription.sdp;
}"""


async def test_a_desk_phone_offers_to_chromium_which_answers_active() -> None:
    bridge = loopback_bridge(allowed_destinations=host_networks())
    async with chromium_page() as page:
        with phones(1) as (phone,):
            offer = bridge.offer(LEG, Side.CALLER, phone.sdp(codecs="0 8 101"), Transport.WEBRTC)
            answer = (await page.evaluate(ANSWER, offer.decode())).encode()
            assert b"a=setup:active" in answer
            toward_phone = bridge.answer(LEG, Side.CALLEE, answer)
            sender = asyncio.create_task(keep_sending(phone, port_of(toward_phone)))
            try:
                await asyncio.wait_for(received_by_chromium(page), TIMEOUT)
                while True:
                    data, _ = await phone.receive()
                    if data[1] & 0x7F in (0, 8) and len(data) == 172:
                        break
            finally:
                sender.cancel()
    bridge.close()
