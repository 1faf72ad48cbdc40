"""The WebRTC side of each bench call: an aiortc peer connection, as a browser would be.

It offers audio only, PCMA only (what the plain side's pcap holds, so the bridge never
transcodes), sends aiortc's paced silence (one 20 ms packet every 20 ms) and consumes
what it receives, as a phone would play it. ICE, DTLS-SRTP and rtcp-mux are aiortc's own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack

from bench.media.uac import Caller, Dialog

CONNECT_SECONDS = 30.0


@dataclass
class WebCall:
    pc: RTCPeerConnection
    sink: MediaBlackhole
    dialog: Dialog


async def place(caller: Caller, callee: str) -> WebCall:
    """Offer, call ``callee`` through the proxy, apply the answer, wait for ICE + DTLS."""
    pc = RTCPeerConnection()
    sink = MediaBlackhole()
    transceiver = pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
    capabilities = RTCRtpSender.getCapabilities("audio")
    transceiver.setCodecPreferences(
        [codec for codec in capabilities.codecs if codec.mimeType == "audio/PCMA"]
    )
    connected = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        sink.addTrack(track)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("connected", "failed") and not connected.done():
            connected.set_result(pc.connectionState)

    await pc.setLocalDescription(await pc.createOffer())
    dialog = await caller.invite(callee, pc.localDescription.sdp.encode())
    await pc.setRemoteDescription(RTCSessionDescription(dialog.answer.decode(), "answer"))
    await sink.start()
    state = await asyncio.wait_for(connected, CONNECT_SECONDS)
    if state != "connected":
        raise RuntimeError(f"call {dialog.call_id}: ICE/DTLS {state}")
    return WebCall(pc, sink, dialog)


async def packets(call: WebCall) -> tuple[int, int]:
    """(packets received, packets sent) of the call's audio so far."""
    received = sent = 0
    for stats in (await call.pc.getStats()).values():
        if stats.type == "inbound-rtp":
            received += stats.packetsReceived
        elif stats.type == "outbound-rtp":
            sent += stats.packetsSent
    return received, sent


async def hang_up(caller: Caller, call: WebCall) -> int:
    """BYE through the proxy, then close the peer connection; the BYE's status."""
    try:
        return await caller.bye(call.dialog)
    finally:
        await call.sink.stop()
        await call.pc.close()
