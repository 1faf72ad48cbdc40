"""A browser's leg, sans-IO: ICE-lite, DTLS-SRTP and SRTP on one rtcp-muxed port.

What arrives is sorted by its first byte (RFC 7983 §7): STUN goes to ICE,
DTLS to the handshake, SRTP and SRTCP are unprotected into the plain RTP and
RTCP the other side gets. DTLS and media are taken only from an address ICE
checked; media leaves only to the address ICE selected, while its consent
holds, and only once DTLS gave the keys.
"""

from __future__ import annotations

from enum import Enum

import pylibsrtp
from OpenSSL import SSL

from heron.media.call import Address, Call, Drop, Policy, is_rtcp
from heron.media.dtls import DtlsSrtp, DtlsState
from heron.media.ice import IceLite
from heron.media.rewrite import RemoteLeg
from heron.sip.media import Side

__all__ = ["MAX_PROTECTED", "MAX_UNPROTECTED", "Kind", "WebRtcEndpoint", "classify"]

MAX_PROTECTED = 1500
"""Longest SRTP or SRTCP packet unprotected: pylibsrtp works in a 1,500-byte buffer."""
MAX_UNPROTECTED = MAX_PROTECTED - 148
"""Longest RTP or RTCP packet protected: room for the largest SRTCP trailer (index, tag,
MKI) in that buffer."""


class Kind(Enum):
    """RFC 7983 §7: what a datagram on a muxed port is, by its first byte."""

    STUN = "stun"
    DTLS = "dtls"
    RTP = "rtp"
    OTHER = "other"


_KINDS = tuple(
    Kind.STUN
    if b <= 3
    else Kind.DTLS
    if 20 <= b <= 63
    else Kind.RTP
    if 128 <= b <= 191
    else Kind.OTHER
    for b in range(256)
)


def classify(data: bytes) -> Kind:
    """STUN 0-3, DTLS 20-63, RTP/RTCP 128-191 (ZRTP 16-19 and TURN channels 64-79 are
    not heron's here)."""
    return _KINDS[data[0]] if data else Kind.OTHER


class WebRtcEndpoint:
    """One browser's side of a call."""

    __slots__ = ("_allowed", "_context", "dtls", "ice", "remote")

    def __init__(
        self,
        remote: RemoteLeg,
        ice: IceLite,
        context: SSL.Context,
        allowed: Policy,
    ) -> None:
        self.remote = remote
        self.ice = ice
        self._context = context
        self._allowed = allowed
        self.dtls: DtlsSrtp | None = None

    def update(self, remote: RemoteLeg) -> None:
        """A new offer or answer from the browser: an ICE restart changes its ufrag; a new
        certificate (a new RTCPeerConnection) a new handshake."""
        if remote.fingerprints != self.remote.fingerprints:
            self.dtls = None
        self.ice.remote_ufrag = remote.ice_ufrag
        self.remote = remote

    def set_role(self, server: bool) -> None:
        """The DTLS role the SDP exchange settled (RFC 5763 §5); kept across re-INVITEs."""
        if self.dtls is None:
            self.dtls = DtlsSrtp(self._context, server, self.remote.fingerprints)
            if not server and self.ice.selected is not None:
                self.dtls.start()

    def receive(
        self, side: Side, component: int, data: bytes, source: Address, now: float, call: Call
    ) -> bytes | None:
        kind = _KINDS[data[0]] if data else Kind.OTHER
        if kind is Kind.RTP:
            if source not in self.ice.checked:
                call.stats.drops[Drop.SOURCE] += 1
                return None
            keys = self.dtls.keys if self.dtls is not None else None
            if keys is None:
                call.stats.drops[Drop.NOT_READY] += 1
                return None
            if not 8 <= len(data) <= MAX_PROTECTED:
                call.stats.drops[Drop.MALFORMED if len(data) < 8 else Drop.OVERSIZE] += 1
                return None
            try:
                if is_rtcp(data):
                    return keys.inbound.unprotect_rtcp(data)
                return keys.inbound.unprotect(data)
            except pylibsrtp.Error:
                call.stats.drops[Drop.SRTP] += 1
                return None
        if kind is Kind.STUN:
            if not self._allowed(source):
                call.stats.drops[Drop.REFUSED] += 1
                return None
            response = self.ice.receive(data, source, now)
            if response is None:
                call.stats.drops[Drop.STUN] += 1
                return None
            call.outbox.append((side, 0, response, source))
            call.heard = now  # consent checks go on while a held browser sends nothing
            if self.dtls is not None and not self.dtls.server and self.dtls.state is DtlsState.NEW:
                self.dtls.start()
                self._flush_dtls(side, call)
            return None
        if kind is Kind.DTLS:
            if source not in self.ice.checked:
                call.stats.drops[Drop.SOURCE] += 1
                return None
            if self.dtls is None or self.dtls.state is DtlsState.FAILED:
                call.stats.drops[Drop.NOT_READY if self.dtls is None else Drop.DTLS] += 1
                return None
            self.dtls.receive(data)
            self._flush_dtls(side, call, source)
            return None
        call.stats.drops[Drop.MALFORMED] += 1
        return None

    def send(self, data: bytes, rtcp: bool, call: Call, side: Side) -> None:
        target = self.ice.selected
        keys = self.dtls.keys if self.dtls is not None else None
        if target is None or keys is None:
            call.stats.drops[Drop.NOT_READY] += 1
            return
        if len(data) > MAX_UNPROTECTED:
            call.stats.drops[Drop.OVERSIZE] += 1
            return
        try:
            protected = keys.outbound.protect_rtcp(data) if rtcp else keys.outbound.protect(data)
        except pylibsrtp.Error:
            call.stats.drops[Drop.SRTP] += 1
            return
        call.outbox.append((side, 0, protected, target))

    def handle_timer(self, now: float, call: Call, side: Side) -> None:
        self.ice.handle_timer(now)
        if self.dtls is not None:
            if not self.dtls.server and self.dtls.state is DtlsState.NEW and self.ice.selected:
                self.dtls.start()
            self.dtls.handle_timer()
            self._flush_dtls(side, call)

    def _flush_dtls(self, side: Side, call: Call, target: Address | None = None) -> None:
        assert self.dtls is not None
        target = target or self.ice.selected
        datagrams = self.dtls.datagrams()
        if target is None:
            return
        for datagram in datagrams:
            call.outbox.append((side, 0, datagram, target))
