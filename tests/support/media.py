"""Plain RTP phones on UDP sockets and a bridge on free ports, for the media tests."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from heron.config import MediaSettings
from heron.destinations import Destinations, interface_addresses
from heron.media.bridge import Bridge
from heron.media.dtls import Certificate
from heron.sip.media import MediaLeg, Side, Transport
from tests.support.config import free_port

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def media_settings(span: int = 40, **overrides: object) -> MediaSettings:
    """``span`` ports from a free port of this worker's share, loopback allowed."""
    low = free_port()
    values: dict[str, object] = {
        "address": "127.0.0.1",
        "port_min": low,
        "port_max": low + span,
        "allowed_destinations": [LOOPBACK],
        **overrides,
    }
    return MediaSettings.model_validate(values)


CERTIFICATE = Certificate.generate(datetime.datetime.now(datetime.UTC), 1)


def loopback_bridge(
    span: int = 40, clock: Callable[[], float] = time.monotonic, **overrides: object
) -> Bridge:
    """A bridge on 127.0.0.1 whose destination policy allows ``allowed_destinations``
    (loopback by default), as the component builds it."""
    settings = media_settings(span, **overrides)
    policy = Destinations(allowed=settings.allowed_destinations)
    return Bridge(
        settings,
        ipaddress.ip_address("127.0.0.1"),
        lambda address: not policy.internal(address[0]),
        CERTIFICATE,
        clock,
    )


def host_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """This host's own addresses as networks: aiortc gathers candidates on its interfaces
    (not loopback), so a test bridge must be allowed to answer them there."""
    return [ipaddress.ip_network(address) for address in interface_addresses()]


def rtp(sequence: int, payload: bytes, pt: int = 0, ssrc: int = 0x1234) -> bytes:
    """An RTP packet (RFC 3550 §5.1), version 2, no CSRC or extension."""
    return struct.pack("!BBHII", 0x80, pt, sequence, sequence * 160, ssrc) + payload


def rtcp_receiver_report(ssrc: int = 0x1234) -> bytes:
    """An empty RTCP RR (RFC 3550 §6.4.2): packet type 201."""
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


class Phone:
    """A desk phone's RTP and RTCP sockets on loopback."""

    def __init__(self) -> None:
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        port = free_port()
        self.rtp.bind(("127.0.0.1", port))
        self.rtcp.bind(("127.0.0.1", 0))
        for sock in (self.rtp, self.rtcp):
            sock.setblocking(False)
        self.port = port
        self.rtcp_port: int = self.rtcp.getsockname()[1]

    def sdp(self, codecs: str = "0 8 101", direction: str = "sendrecv") -> bytes:
        """What a baresip-like phone offers or answers: PCMU, PCMA, DTMF, explicit RTCP."""
        rtcp_port = self.rtcp_port
        return (
            "v=0\r\no=- 1739063406 3459453530 IN IP4 127.0.0.1\r\ns=-\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:baresip 3.20.0\r\n"
            f"m=audio {self.port} RTP/AVP {codecs}\r\nb=AS:96\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
            f"a={direction}\r\na=rtcp:{rtcp_port}\r\na=ptime:20\r\n"
        ).encode()

    def send(self, packet: bytes, port: int, rtcp: bool = False) -> None:
        """``packet`` to heron's ``port`` on loopback, from the RTP (or RTCP) socket."""
        (self.rtcp if rtcp else self.rtp).sendto(packet, ("127.0.0.1", port))

    async def receive(self, rtcp: bool = False) -> tuple[bytes, tuple[str, int]]:
        sock = self.rtcp if rtcp else self.rtp
        data, source = await asyncio.wait_for(
            asyncio.get_running_loop().sock_recvfrom(sock, 2048), timeout=10
        )
        return data, source

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


@contextmanager
def phones(count: int = 2) -> Iterator[list[Phone]]:
    made = [Phone() for _ in range(count)]
    try:
        yield made
    finally:
        for phone in made:
            phone.close()


def port_of(sdp: bytes) -> int:
    """The audio m= line's port."""
    line = next(x for x in sdp.decode().split("\r\n") if x.startswith("m=audio"))
    return int(line.split()[1])


def bridged(bridge: Bridge, leg: MediaLeg, caller: Phone, callee: Phone) -> tuple[int, int]:
    """``caller`` offers plain RTP to ``callee`` through ``bridge``: heron's port toward the
    caller (where it sends) and toward the callee."""
    offer = bridge.offer(leg, Side.CALLER, caller.sdp(), Transport.RTP)
    answer = bridge.answer(leg, Side.CALLEE, callee.sdp())
    return port_of(answer), port_of(offer)
