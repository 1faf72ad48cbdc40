"""One bridged call's packet path, sans-IO: datagrams in, datagrams out, drops counted.

Each side of a call is an endpoint bound to heron's sockets toward that side
(component 0 is RTP, component 1 RTCP on a plain leg without rtcp-mux). The
I/O adapter (:mod:`heron.media.bridge`) hands every datagram to
:meth:`Call.receive` with the side and component it arrived on, then sends
what :attr:`Call.outbox` holds through the socket each entry names.

A plain leg latches (symmetric RTP, as rtpengine and rtpproxy do): media goes
where the phone's media comes from; before the first packet, to the SDP
address only if the destination policy allows it. When the SDP address is
one media may go to, only its host may latch; when it is not (a phone behind
NAT names its private address), the first source does, and a latched source
gives way to another only after :data:`RELATCH_AFTER` seconds of silence. A
WebRTC leg (:mod:`heron.media.webrtc`) sends only to the address ICE checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from heron.media.rewrite import RemoteLeg
from heron.sip.media import MediaLeg, Side

__all__ = [
    "HOLD_TIMEOUT",
    "RELATCH_AFTER",
    "Address",
    "Call",
    "Drop",
    "Endpoint",
    "PlainEndpoint",
    "Policy",
    "Stats",
    "is_rtcp",
]

Address = tuple[str, int]
Policy = Callable[[Address], bool]
"""The destination policy: media may go to (and come from) this address."""
HOLD_TIMEOUT = 3600.0
"""Seconds of silence that end a call on hold (an SDP said sendonly, recvonly or inactive),
as rtpengine's silent-timeout: a held phone may send nothing at all."""
RELATCH_AFTER = 2.0
"""Seconds a latched source must be silent before another may take its place: a phone
whose NAT mapping changed is heard again, a stranger cannot steal a live stream."""


class Drop(StrEnum):
    """Why a datagram was dropped (``heron_media_packets_dropped_total{reason=...}``)."""

    MALFORMED = "malformed"
    """Not RTP, RTCP, STUN or DTLS (RFC 7983), or too short."""
    SOURCE = "source"
    """From an address that is not the latched one, or that ICE did not check."""
    REFUSED = "refused"
    """From or to an internal address the destination policy does not allow."""
    STUN = "stun"
    """A STUN message that is not a Binding request with our credentials."""
    DTLS = "dtls"
    """A DTLS record that fails the handshake or comes after it failed."""
    SRTP = "srtp"
    """SRTP or SRTCP that fails authentication or replay checks."""
    NOT_READY = "not_ready"
    """Media before there is anywhere to send it (no latch, no ICE, no keys)."""
    OVERSIZE = "oversize"
    """Longer than SRTP can carry: over 1,500 bytes protected, 1,352 before protection."""
    SEND = "send"
    """The socket refused the datagram (full buffer, unreachable)."""
    BUG = "bug"
    """Processing raised: a bug in heron, logged once per call, never a dead socket."""


@dataclass(slots=True)
class Stats:
    """Counters every call adds to; the component serves them in ``/metrics``."""

    packets: dict[Side, int] = field(default_factory=lambda: dict.fromkeys(Side, 0))
    """Datagrams relayed from each side (to the other, or back for the echo)."""
    bytes: dict[Side, int] = field(default_factory=lambda: dict.fromkeys(Side, 0))
    drops: dict[Drop, int] = field(default_factory=lambda: dict.fromkeys(Drop, 0))


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: RTCP packet types 192-223 occupy the RTP marker+payload-type byte."""
    return 192 <= data[1] <= 223


class Endpoint(Protocol):
    """One side's transport: what arrives becomes RTP/RTCP, what leaves is addressed."""

    remote: RemoteLeg

    def receive(
        self, side: Side, component: int, data: bytes, source: Address, now: float, call: Call
    ) -> bytes | None:
        """The plain RTP or RTCP in ``data``, or None when consumed (ICE, DTLS) or dropped
        (counted in ``call.stats``)."""

    def send(self, data: bytes, rtcp: bool, call: Call, side: Side) -> None:
        """Queue plain RTP/RTCP ``data`` toward this side in ``call.outbox``."""

    def handle_timer(self, now: float, call: Call, side: Side) -> None:
        """Retransmissions and consent (a WebRTC leg); nothing for a plain one."""


class PlainEndpoint:
    """A desk phone's leg: RTP on component 0, RTCP on 1 (or muxed), latched."""

    __slots__ = ("_allowed", "_heard", "_sdp", "latched", "remote")

    def __init__(self, remote: RemoteLeg, allowed: Policy) -> None:
        self._allowed = allowed
        self.latched: list[Address | None] = [None, None]
        self._heard = [0.0, 0.0]
        self._sdp: list[Address | None] = [None, None]
        self.remote = remote
        self.update(remote)

    def update(self, remote: RemoteLeg) -> None:
        """A new offer or answer from this side (re-INVITE): new SDP address, same latch."""
        self.remote = remote
        if remote.port and self._allowed((remote.host, remote.port)):
            rtcp = remote.port if remote.rtcp_mux else remote.rtcp_port
            self._sdp = [(remote.host, remote.port), (remote.host, rtcp)]
        else:
            self._sdp = [None, None]

    def receive(
        self, side: Side, component: int, data: bytes, source: Address, now: float, call: Call
    ) -> bytes | None:
        if len(data) < 8 or data[0] >> 6 != 2:
            call.stats.drops[Drop.MALFORMED] += 1
            return None
        if component == 0 and self.remote.rtcp_mux and is_rtcp(data):
            component = 1
        latched = self.latched[component]
        if source != latched:
            expected = self._sdp[component]
            if expected is not None and source[0] != expected[0]:
                # The SDP names a host media may go to: only that host may latch (a
                # phone behind NAT names a private one, which is not allowed).
                call.stats.drops[Drop.SOURCE] += 1
                return None
            if latched is not None and source != expected:
                if now - self._heard[component] < RELATCH_AFTER:
                    call.stats.drops[Drop.SOURCE] += 1
                    return None
            if not self._allowed(source):
                call.stats.drops[Drop.REFUSED] += 1
                return None
            self.latched[component] = source
        self._heard[component] = now
        return data

    def send(self, data: bytes, rtcp: bool, call: Call, side: Side) -> None:
        component = 1 if rtcp else 0
        target = self.latched[component] or self._sdp[component]
        if target is None:
            call.stats.drops[Drop.NOT_READY] += 1
            return
        socket_component = 0 if self.remote.rtcp_mux else component
        call.outbox.append((side, socket_component, data, target))

    def handle_timer(self, now: float, call: Call, side: Side) -> None:
        return None


def _other(side: Side) -> Side:
    return Side.CALLEE if side is Side.CALLER else Side.CALLER


class Call:
    """One bridged call (or echo): its two endpoints, or one for the echo."""

    __slots__ = (
        "echo",
        "heard",
        "held",
        "leg",
        "outbox",
        "pt_tables",
        "relayed",
        "sides",
        "started",
        "stats",
    )

    def __init__(self, leg: MediaLeg, stats: Stats, now: float, echo: bool = False) -> None:
        self.leg = leg
        self.stats = stats
        self.echo = echo
        self.sides: dict[Side, Endpoint] = {}
        self.pt_tables: dict[Side, bytes | None] = {Side.CALLER: None, Side.CALLEE: None}
        """Payload type renumbering for RTP *from* each side (:func:`rewrite.pt_table`)."""
        self.outbox: list[tuple[Side, int, bytes, Address]] = []
        """(side whose socket sends, component, datagram, destination), drained by the adapter."""
        self.started = now
        self.heard = now
        """When media (or a browser's ICE check) last arrived: :meth:`expired` reads it."""
        self.relayed: dict[Side, int] = {Side.CALLER: 0, Side.CALLEE: 0}
        """Packets relayed from each side in this call (``stats`` counts every call's)."""
        self.held = False
        """The last SDP put the call on hold: silence is expected, :data:`HOLD_TIMEOUT`."""

    def receive(self, side: Side, component: int, data: bytes, source: Address, now: float) -> None:
        endpoint = self.sides.get(side)
        if endpoint is None:
            self.stats.drops[Drop.NOT_READY] += 1
            return
        plain = endpoint.receive(side, component, data, source, now, self)
        if plain is None:
            return
        self.heard = now
        rtcp = is_rtcp(plain)
        if self.echo:
            if rtcp:  # reports on its own stream would only confuse the sender
                return
            packet = bytearray(plain)
            packet[8] ^= 0xFF  # another SSRC: a sender drops packets of its own
            target_side = side
            plain = bytes(packet)
        else:
            target_side = _other(side)
            table = self.pt_tables[side]
            if table is not None and not rtcp:
                packet = bytearray(plain)
                packet[1] = (packet[1] & 0x80) | table[packet[1] & 0x7F]
                plain = bytes(packet)
        target = self.sides.get(target_side)
        if target is None:
            self.stats.drops[Drop.NOT_READY] += 1
            return
        self.stats.packets[side] += 1
        self.stats.bytes[side] += len(plain)
        self.relayed[side] += 1
        target.send(plain, rtcp, self, target_side)

    def handle_timer(self, now: float) -> None:
        for side, endpoint in self.sides.items():
            endpoint.handle_timer(now, self, side)

    def expired(self, now: float, timeout: float) -> bool:
        """No media from either side for ``timeout`` seconds (rtpengine's timeout), or
        :data:`HOLD_TIMEOUT` while on hold."""
        return now - self.heard >= (max(timeout, HOLD_TIMEOUT) if self.held else timeout)
