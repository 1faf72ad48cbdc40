"""A web phone that can reach heron only through heron's own TURN relay (a hotel's firewall):
aiortc with relay-only ICE, heron's TURN server, and the bridge, whose destination policy
takes heron's own address from TURN relay ports and nothing else internal."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from heron.destinations import Destinations
from heron.media.bridge import Bridge
from heron.media.component import media_policy
from heron.sip.media import MediaLeg, Side, Transport
from tests.interop.media.test_aiortc import TIMEOUT, SquareWave, phone_rtp
from tests.interop.turn.support import LOCALHOST, PASSWORD, TURN_USER, turn_server
from tests.support.media import CERTIFICATE, media_settings, phones

pytestmark = pytest.mark.interop

LEG = MediaLeg("relayed@test", "z9hG4bK-t")


async def test_aiortc_relayed_by_heron_turn_reaches_a_desk_phone(tmp_path: Path) -> None:
    with turn_server(tmp_path) as turn, phones(1) as (phone,):
        relays = range(turn.relay_ports[0], turn.relay_ports[1] + 1)
        relayed = media_policy(Destinations(own=[LOCALHOST]), relays)

        def allowed(address: tuple[str, int]) -> bool:
            """heron's policy, and the desk phone (on loopback here, as a LAN phone would be
            in media.allowed_destinations)."""
            return relayed(address) or address[1] in (phone.port, phone.rtcp_port)

        bridge = Bridge(media_settings(), ipaddress.ip_address(LOCALHOST), allowed, CERTIFICATE)
        server = RTCIceServer(f"turn:{LOCALHOST}:{turn.port}?transport=udp", TURN_USER, PASSWORD)
        pc = RTCPeerConnection(
            RTCConfiguration([server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)
        )
        try:
            pc.addTrack(SquareWave())
            await pc.setLocalDescription(await pc.createOffer())
            offer = pc.localDescription.sdp.encode()
            assert b"typ relay" in offer and b"typ host" not in offer
            bridge.offer(LEG, Side.CALLER, offer, Transport.RTP)
            answer = bridge.answer(LEG, Side.CALLEE, phone.sdp(codecs="0"))
            await pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))
            await asyncio.wait_for(phone_rtp(phone), TIMEOUT)
            (peer,) = [row["caller_peer"] for row in bridge.rows()]
            host, port = peer.rsplit(":", 1)
            assert host == LOCALHOST and turn.has_relay_port(int(port))
        finally:
            await pc.close()
            bridge.close()
