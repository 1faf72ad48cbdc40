"""What the SIP proxy asks of the media bridge, as Kamailio asks rtpengine.

The proxy hands each SDP offer and answer that passes through it to the bridge
and forwards the SDP the bridge returns instead: the bridge rewrites the
transport of each side's media so that each side sees what it speaks (a web
phone ICE + DTLS-SRTP, a desk phone plain RTP) and relays the packets. The
proxy decides which calls go through the bridge (``sip.media_relay``); the
bridge owns SDP parsing, the sockets and the packet path
(:mod:`heron.media`), and is bound to this Protocol in :mod:`heron.wiring`,
so ``sip/`` never imports it.

The calls are synchronous: the bridge binds its sockets before it returns, so
the SDP it gives names ports that already receive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MediaBridge", "MediaLeg", "MediaRefused", "Side", "Transport"]


class Transport(enum.Enum):
    """How one side of a call carries its media."""

    RTP = "RTP/AVP"
    """Plain RTP, RTCP on the next port unless the SDP says rtcp-mux: desk phones, PBXs."""
    WEBRTC = "UDP/TLS/RTP/SAVPF"
    """ICE + DTLS-SRTP with rtcp-mux: browsers (RFC 8829, RFC 8834)."""


class Side(enum.Enum):
    """Which end of the call sent the SDP: the one that sent the initial INVITE or the other."""

    CALLER = "caller"
    CALLEE = "callee"


@dataclass(frozen=True, slots=True)
class MediaLeg:
    """One bridged call as the proxy names it: the dialog's Call-ID and the branch of
    the fork that carries it (a forked INVITE makes one bridged call per branch; the
    branches that do not answer are deleted)."""

    call_id: str
    branch: str


class MediaRefused(Exception):
    """The bridge cannot take this SDP: malformed, no codec both sides share, or a limit
    reached. ``status`` is the SIP answer the proxy sends (488, 503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class MediaBridge(Protocol):
    """The media component (:mod:`heron.media`) as the SIP proxy sees it."""

    def offer(self, leg: MediaLeg, side: Side, sdp: bytes, toward: Transport) -> bytes:
        """``side`` offers ``sdp``; open or update the leg's relay and return the offer to
        forward to the other side, which speaks ``toward``."""
        ...

    def answer(self, leg: MediaLeg, side: Side, sdp: bytes) -> bytes:
        """``side`` answers the leg's pending offer with ``sdp``; return the answer to send
        back to the offerer."""
        ...

    def echo(self, leg: MediaLeg, sdp: bytes) -> bytes:
        """Answer ``sdp`` as the echo number: what the caller sends comes back to it."""
        ...

    def delete(self, leg: MediaLeg) -> None:
        """The call ended, failed or lost the fork: free its ports. Unknown legs are ignored."""
        ...
