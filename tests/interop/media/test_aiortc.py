"""aiortc's RTCPeerConnection (a WebRTC client nobody here wrote) through the bridge to a desk
phone played by a plain UDP socket: ICE-lite, DTLS-SRTP and RTP ⇄ SRTP over real sockets."""

from __future__ import annotations

import array
import asyncio
import fractions
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

from heron.media.bridge import Bridge
from heron.media.call import Drop
from heron.sip.media import MediaLeg, Side, Transport
from heron.stun import Message, MessageClass, Method, Username
from tests.support.media import Phone, host_networks, loopback_bridge, phones, port_of, rtp

pytestmark = pytest.mark.interop

LEG = MediaLeg("webrtc-1@test", "z9hG4bK-w")
TIMEOUT = 20.0
LOUD = 16000
ULAW_OF_LOUD = {0x90, 0x10}
"""G.711 μ-law of +16000 and -16000 (ITU-T G.711 table 2a)."""
LOUD_ULAW = bytes([0x90, 0x10] * 80)
"""20 ms of the square wave, as a phone sends it."""


class SquareWave(MediaStreamTrack):
    """20 ms frames of a loud 8 kHz square wave, as fast as the encoder takes them."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.02)  # the track's own pacing, as a microphone's
        frame = AudioFrame(format="s16", layout="mono", samples=160)
        frame.planes[0].update(array.array("h", [LOUD, LOUD, -LOUD, -LOUD] * 40).tobytes())
        frame.sample_rate = 8000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 8000)
        self._pts += 160
        return frame


async def received_track(pc: RTCPeerConnection) -> asyncio.Future[MediaStreamTrack]:
    found: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if not found.done():
            found.set_result(track)

    return found


async def loud_frame(track: MediaStreamTrack) -> None:
    """Wait for a received frame with energy (the first ones may be a jitter buffer's)."""
    while True:
        frame = await asyncio.wait_for(track.recv(), TIMEOUT)
        samples = array.array("h", bytes(frame.planes[0]))
        if max(map(abs, samples), default=0) > LOUD // 2:
            return


async def phone_rtp(phone: Phone) -> bytes:
    while True:
        data, _ = await phone.receive()
        if len(data) > 12 and data[1] & 0x7F == 0:
            return data


@asynccontextmanager
async def browser_and_bridge(offer: bool = True) -> AsyncIterator[Browser]:
    """aiortc with a loud track, a bridge allowed to answer its candidates (on this host's
    interfaces), and aiortc's offer made when ``offer``; both closed afterwards."""
    bridge = loopback_bridge(allowed_destinations=host_networks())
    pc = RTCPeerConnection()
    try:
        track = await received_track(pc)
        if offer:
            pc.addTrack(SquareWave())
            await pc.setLocalDescription(await pc.createOffer())
        yield Browser(bridge, pc, track)
    finally:
        await pc.close()
        bridge.close()


@dataclass
class Browser:
    bridge: Bridge
    pc: RTCPeerConnection
    track: asyncio.Future[MediaStreamTrack]

    @property
    def sdp(self) -> bytes:
        return self.pc.localDescription.sdp.encode()

    async def take(self, sdp: bytes, kind: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp.decode(), kind))


async def test_aiortc_offers_and_a_desk_phone_answers_audio_both_ways() -> None:
    async with browser_and_bridge() as browser:
        bridge = browser.bridge
        with phones(1) as (phone,):
            toward_phone = bridge.offer(LEG, Side.CALLER, browser.sdp, Transport.RTP)
            assert b"RTP/AVP" in toward_phone and b"a=ice" not in toward_phone
            assert b"a=fingerprint" not in toward_phone
            answer = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0 101"))
            assert b"UDP/TLS/RTP/SAVPF" in answer and b"a=ice-lite" in answer
            await browser.take(answer, "answer")

            packet = await asyncio.wait_for(phone_rtp(phone), TIMEOUT)
            assert set(packet[12:]) <= ULAW_OF_LOUD  # G.711 bytes as aiortc encoded them
            sender = asyncio.create_task(send_rtp(phone, port_of(toward_phone)))
            try:
                await loud_frame(await browser.track)
            finally:
                sender.cancel()
        assert bridge.stats.drops[Drop.SRTP] == 0


async def send_rtp(phone: Phone, port: int, payload: bytes = LOUD_ULAW) -> None:
    """A phone's 20 ms packets until cancelled."""
    sequence = 0
    while True:
        phone.rtp.sendto(rtp(sequence, payload, ssrc=0xCAFE), ("127.0.0.1", port))
        sequence += 1
        await asyncio.sleep(0.02)


async def test_a_desk_phone_offers_and_aiortc_answers() -> None:
    async with browser_and_bridge(offer=False) as browser:
        with phones(1) as (phone,):
            offer = browser.bridge.offer(LEG, Side.CALLER, phone.sdp("0 101"), Transport.WEBRTC)
            assert b"a=setup:actpass" in offer
            await browser.take(offer, "offer")
            browser.pc.addTrack(SquareWave())
            await browser.pc.setLocalDescription(await browser.pc.createAnswer())
            answer = browser.bridge.answer(LEG, Side.CALLEE, browser.sdp)
            assert b"RTP/AVP" in answer
            sender = asyncio.create_task(send_rtp(phone, port_of(answer)))
            try:
                await loud_frame(await browser.track)
                packet = await asyncio.wait_for(phone_rtp(phone), TIMEOUT)
                assert set(packet[12:]) <= ULAW_OF_LOUD
            finally:
                sender.cancel()


async def test_echo_returns_aiortc_its_own_audio() -> None:
    async with browser_and_bridge() as browser:
        await browser.take(browser.bridge.echo(LEG, browser.sdp), "answer")
        await loud_frame(await browser.track)
        assert browser.bridge.stats.packets[Side.CALLER] > 0
        browser.bridge.delete(LEG)
        assert browser.bridge.ports == 0


async def test_hold_by_aiortc_keeps_the_ports_and_hostile_packets_do_not_break_the_call() -> None:
    async with browser_and_bridge() as browser:
        bridge = browser.bridge
        with phones(2) as (phone, attacker):
            toward_phone = bridge.offer(LEG, Side.CALLER, browser.sdp, Transport.RTP)
            answer = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0"))
            await browser.take(answer, "answer")
            await asyncio.wait_for(phone_rtp(phone), TIMEOUT)
            ports = bridge.ports

            toward_browser = port_of(answer)
            wrong_check = Message(
                Method.BINDING, MessageClass.REQUEST, bytes(12), (Username("nope:nope"),)
            ).encode(b"wrong password", fingerprint=True)
            client_hello = bytes([22, 0xFE, 0xFD]) + bytes(10) + bytes([0, 50]) + bytes(50)
            for junk in (wrong_check, client_hello, os.urandom(300), rtp(1, b"x" * 40), b"\x00"):
                attacker.send(junk, toward_browser)
            sender = asyncio.create_task(send_rtp(phone, port_of(toward_phone)))
            try:
                await loud_frame(await browser.track)
            finally:
                sender.cancel()
            assert bridge.stats.drops[Drop.STUN] >= 1 and bridge.stats.drops[Drop.SOURCE] >= 2

            (transceiver,) = browser.pc.getTransceivers()
            transceiver.direction = "sendonly"
            await browser.pc.setLocalDescription(await browser.pc.createOffer())
            held = bridge.offer(LEG, Side.CALLER, browser.sdp, Transport.RTP)
            assert b"a=sendonly" in held and port_of(held) == port_of(toward_phone)
            resumed = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0", direction="recvonly"))
            assert b"a=recvonly" in resumed and port_of(resumed) == toward_browser
            await browser.take(resumed, "answer")
            assert bridge.ports == ports
            await asyncio.wait_for(phone_rtp(phone), TIMEOUT)  # aiortc still sends
            bridge.delete(LEG)
            assert bridge.ports == 0


def test_ulaw_constants() -> None:
    """The two μ-law bytes the tests expect decode to ±16000 give or take a step."""

    def decode(byte: int) -> int:
        byte = ~byte & 0xFF
        magnitude = ((byte & 0x0F) << 3 | 0x84) << ((byte >> 4) & 7)
        return (0x84 - magnitude) if byte & 0x80 else (magnitude - 0x84)

    assert sorted(decode(b) for b in ULAW_OF_LOUD) == [-15996, 15996]


async def test_rfc8445_9_an_ice_restart_offer_gets_new_credentials_and_keeps_the_port() -> None:
    async with browser_and_bridge() as browser:
        bridge = browser.bridge
        with phones(1) as (phone,):
            bridge.offer(LEG, Side.CALLER, browser.sdp, Transport.RTP)
            first = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0"))
            restart = browser.sdp.replace(b"a=ice-ufrag:", b"a=ice-ufrag:new")
            bridge.offer(LEG, Side.CALLER, restart, Transport.RTP)
            second = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0"))
            assert port_of(second) == port_of(first)
            assert attribute(second, "ice-ufrag") != attribute(first, "ice-ufrag")
            assert attribute(second, "ice-pwd") != attribute(first, "ice-pwd")
            bridge.offer(LEG, Side.CALLER, restart, Transport.RTP)  # same ufrag: no restart
            third = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0"))
            assert attribute(third, "ice-ufrag") == attribute(second, "ice-ufrag")


def attribute(sdp: bytes, name: str) -> str:
    prefix = f"a={name}:"
    return next(
        line[len(prefix) :] for line in sdp.decode().split("\r\n") if line.startswith(prefix)
    )


async def test_two_aiortc_peers_through_the_bridge_hear_each_other() -> None:
    """What sip.media_relay = "always" does to a call between two web phones: each side's
    DTLS ends at heron, SRTP is unprotected and protected again on the way."""
    async with browser_and_bridge() as caller, browser_and_bridge(offer=False) as callee:
        bridge = caller.bridge
        offer = bridge.offer(LEG, Side.CALLER, caller.sdp, Transport.WEBRTC)
        await callee.take(offer, "offer")
        callee.pc.addTrack(SquareWave())
        await callee.pc.setLocalDescription(await callee.pc.createAnswer())
        answer = bridge.answer(LEG, Side.CALLEE, callee.sdp)
        await caller.take(answer, "answer")
        await loud_frame(await callee.track)
        await loud_frame(await caller.track)
        assert bridge.stats.drops[Drop.SRTP] == 0
