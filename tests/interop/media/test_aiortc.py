"""aiortc's RTCPeerConnection (a WebRTC client nobody here wrote) through the bridge to a desk
phone played by a plain UDP socket: ICE-lite, DTLS-SRTP and RTP ⇄ SRTP over real sockets."""

from __future__ import annotations

import array
import asyncio
import fractions

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

from heron.sip.media import MediaLeg, Side, Transport
from tests.support.media import Phone, host_networks, loopback_bridge, phones, port_of, rtp

pytestmark = pytest.mark.interop

LEG = MediaLeg("webrtc-1@test", "z9hG4bK-w")
TIMEOUT = 20.0
LOUD = 16000
ULAW_OF_LOUD = {0x90, 0x10}
"""G.711 μ-law of +16000 and -16000 (ITU-T G.711 table 2a)."""


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


async def test_aiortc_offers_and_a_desk_phone_answers_audio_both_ways() -> None:
    bridge = loopback_bridge(allowed_destinations=host_networks())
    pc = RTCPeerConnection()
    try:
        track = await received_track(pc)
        pc.addTrack(SquareWave())
        await pc.setLocalDescription(await pc.createOffer())
        with phones(1) as (phone,):
            toward_phone = bridge.offer(
                LEG, Side.CALLER, pc.localDescription.sdp.encode(), Transport.RTP
            )
            assert b"RTP/AVP" in toward_phone and b"a=ice" not in toward_phone
            assert b"a=fingerprint" not in toward_phone
            answer = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0 101"))
            assert b"UDP/TLS/RTP/SAVPF" in answer and b"a=ice-lite" in answer
            await pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))

            packet = await asyncio.wait_for(phone_rtp(phone), TIMEOUT)
            assert set(packet[12:]) <= ULAW_OF_LOUD  # G.711 bytes as aiortc encoded them

            bridge_port = port_of(toward_phone)
            loud = bytes([0x90, 0x10] * 80)
            received = await track
            sender = asyncio.create_task(send_rtp(phone, bridge_port, loud))
            try:
                await loud_frame(received)
            finally:
                sender.cancel()
        assert bridge.stats.drops["srtp"] == 0
    finally:
        await pc.close()
        bridge.close()


async def send_rtp(phone: Phone, port: int, payload: bytes) -> None:
    """A phone's 20 ms packets until cancelled."""
    sequence = 0
    while True:
        phone.rtp.sendto(rtp(sequence, payload, ssrc=0xCAFE), ("127.0.0.1", port))
        sequence += 1
        await asyncio.sleep(0.02)


async def test_a_desk_phone_offers_and_aiortc_answers() -> None:
    bridge = loopback_bridge(allowed_destinations=host_networks())
    pc = RTCPeerConnection()
    try:
        track = await received_track(pc)
        with phones(1) as (phone,):
            toward_browser = bridge.offer(
                LEG, Side.CALLER, phone.sdp(codecs="0 101"), Transport.WEBRTC
            )
            assert b"a=setup:actpass" in toward_browser
            await pc.setRemoteDescription(RTCSessionDescription(toward_browser.decode(), "offer"))
            pc.addTrack(SquareWave())
            await pc.setLocalDescription(await pc.createAnswer())
            answer = bridge.answer(LEG, Side.CALLEE, pc.localDescription.sdp.encode())
            assert b"RTP/AVP" in answer
            sender = asyncio.create_task(send_rtp(phone, port_of(answer), bytes([0x90, 0x10] * 80)))
            try:
                await loud_frame(await track)
                packet = await asyncio.wait_for(phone_rtp(phone), TIMEOUT)
                assert set(packet[12:]) <= ULAW_OF_LOUD
            finally:
                sender.cancel()
    finally:
        await pc.close()
        bridge.close()


async def test_echo_returns_aiortc_its_own_audio() -> None:
    bridge = loopback_bridge(allowed_destinations=host_networks())
    pc = RTCPeerConnection()
    try:
        track = await received_track(pc)
        pc.addTrack(SquareWave())
        await pc.setLocalDescription(await pc.createOffer())
        answer = bridge.echo(LEG, pc.localDescription.sdp.encode())
        await pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))
        await loud_frame(await track)
        assert bridge.stats.packets[Side.CALLER] > 0
    finally:
        await pc.close()
        bridge.close()


def test_ulaw_constants() -> None:
    """The two μ-law bytes the tests expect decode to ±16000 give or take a step."""

    def decode(byte: int) -> int:
        byte = ~byte & 0xFF
        magnitude = ((byte & 0x0F) << 3 | 0x84) << ((byte >> 4) & 7)
        return (0x84 - magnitude) if byte & 0x80 else (magnitude - 0x84)

    assert sorted(decode(b) for b in ULAW_OF_LOUD) == [-15996, 15996]
