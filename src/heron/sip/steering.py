"""Which calls go through the media bridge, and each SDP on its way through it, sans-IO.

What a Kamailio script does with rtpengine_offer/answer/delete: for an initial
INVITE the proxy picks, per branch of the fork, the transport of each side (a
web phone's ICE + DTLS-SRTP or a desk phone's plain RTP) and whether
``sip.media_relay`` puts the call through the bridge; then every SDP of the
dialog, in requests, 18x/2xx and the ACK of a late offer, goes to the bridge,
and the message is forwarded with the SDP the bridge returns.

An in-dialog request must know that its dialog is bridged, on which leg and
with which transports: heron writes that into its own Record-Route URI
(``hm=wr.12``: caller WebRTC, callee RTP, leg 12), covered by the dialog's
seal (:mod:`heron.sip.seal`). The route set carries it back in every request of
the dialog, from either side, and across a restart, with no table to bound
or to clean up, and no party of the dialog can point it at another leg.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from heron.sip.media import MediaBridge, MediaLeg, MediaRefused, Side, Transport
from heron.sip.message import Method, Request, Response

__all__ = [
    "SDP",
    "Exchange",
    "MediaPath",
    "Relay",
    "Steering",
    "has_sdp",
    "in_dialog",
    "other",
    "relayed",
    "sdp_transport",
]

Relay = Literal["never", "webrtc", "always"]

SDP = "application/sdp"
_CODES = {Transport.RTP: "r", Transport.WEBRTC: "w"}
_TRANSPORTS = {code: transport for transport, code in _CODES.items()}
_WEB = ("ws", "wss")
_SECURE_PROFILES = (b"UDP/TLS/RTP/SAVPF", b"UDP/TLS/RTP/SAVP", b"TCP/TLS/RTP/SAVPF")

_M = TypeVar("_M", Request, Response)

log = logging.getLogger(__name__)


def has_sdp(message: Request | Response) -> bool:
    """The message carries a session description (RFC 3264) as its whole body."""
    return bool(message.body) and message.headers.content_type == SDP


def sdp_transport(sdp: bytes) -> Transport:
    """What the SDP's first media line speaks: a DTLS-SRTP profile, or ``RTP/SAVPF`` with
    ICE, is a browser's (RFC 8829); anything else plain RTP."""
    ice = False
    profile = b""
    for line in sdp.splitlines():
        if line.startswith(b"m=") and not profile:
            fields = line.split()
            profile = fields[2] if len(fields) > 2 else b"-"
        elif line.startswith(b"a=ice-ufrag:"):
            ice = True
    if profile.upper() in _SECURE_PROFILES:
        return Transport.WEBRTC
    return Transport.WEBRTC if profile.upper() == b"RTP/SAVPF" and ice else Transport.RTP


def caller_transport(request: Request, inbound: str) -> Transport:
    """A request from a WebSocket comes from a browser; else its SDP says, plain RTP if none."""
    if inbound in _WEB:
        return Transport.WEBRTC
    return sdp_transport(request.body) if has_sdp(request) else Transport.RTP


def callee_transport(registered: str | None) -> Transport:
    """A phone registered over a WebSocket is a browser; a static route or a trunk (no
    binding) and every other phone speak plain RTP."""
    return Transport.WEBRTC if registered in _WEB else Transport.RTP


def relayed(policy: Relay, caller: Transport, callee: Transport) -> bool:
    """Whether a call goes through the bridge. Two browsers never do: they reach each
    other directly or through TURN, and a bridge would only add a hop."""
    if policy == "never" or caller is callee is Transport.WEBRTC:
        return False
    return policy == "always" or caller is not callee


def other(side: Side) -> Side:
    return Side.CALLEE if side is Side.CALLER else Side.CALLER


@dataclass(frozen=True, slots=True)
class MediaPath:
    """A bridged branch of a call: the bridge's leg and the transport of each side."""

    leg: MediaLeg
    caller: Transport
    callee: Transport

    def param(self) -> str:
        """The value of :data:`~heron.sip.seal.MEDIA_PARAM` in heron's Record-Route."""
        return f"{_CODES[self.caller]}{_CODES[self.callee]}.{self.leg.branch}"

    @classmethod
    def from_param(cls, call_id: str, value: str) -> MediaPath | None:
        """The path :meth:`param` wrote; None for anything else."""
        codes, dot, branch = value.partition(".")
        if not dot or not branch or len(codes) != 2 or not set(codes) <= set(_TRANSPORTS):
            return None
        return cls(MediaLeg(call_id, branch), _TRANSPORTS[codes[0]], _TRANSPORTS[codes[1]])

    def speaks(self, side: Side) -> Transport:
        return self.caller if side is Side.CALLER else self.callee


def in_dialog(request: Request, caller: str, media: str | None) -> tuple[MediaPath, Side] | None:
    """The media path of a request in a sealed dialog (``caller`` is the dialog's caller's
    tag, ``media`` the leg its seal covers) and which side sent it; None: not bridged."""
    path = None if media is None else MediaPath.from_param(request.headers.call_id, media)
    if path is None:
        return None
    return path, Side.CALLER if request.headers.from_.tag == caller else Side.CALLEE


@dataclass(slots=True)
class Exchange:
    """One offer and answer through the bridge on one branch of an INVITE or UPDATE."""

    path: MediaPath
    sender: Side
    """Who sent the request."""
    offerer: Side | None = None
    """Who made the offer pending on the bridge; None until one SDP passed (a late offer)."""
    last: tuple[bytes, bytes] | None = None
    """The last SDP from the far side and what the bridge made of it: the same SDP again
    (a 183 then the 200, a 2xx retransmission) is not given to the bridge twice."""
    forwarded: Request | None = None
    """The request as this branch forwards it, with the bridge's SDP."""


class Steering:
    """The bridge and the policy, applied to the messages the proxy forwards."""

    def __init__(self, bridge: MediaBridge, policy: Relay) -> None:
        self.bridge = bridge
        self.policy = policy

    def path(
        self, request: Request, inbound: str, registered: str | None, branch: str
    ) -> MediaPath | None:
        """The bridged path of one branch of an initial INVITE, or None: not bridged.
        ``registered`` is the transport the target's binding came over (None: no binding)."""
        if request.method != Method.INVITE or self.policy == "never":
            return None
        caller = caller_transport(request, inbound)
        callee = callee_transport(registered)
        if not relayed(self.policy, caller, callee):
            return None
        return MediaPath(MediaLeg(request.headers.call_id, branch), caller, callee)

    def request(self, exchange: Exchange, request: Request) -> Request:
        """The INVITE or UPDATE to forward: its offer through the bridge, toward the other
        side's transport. Without SDP (a late offer) the offer comes in the answer."""
        if not has_sdp(request):
            return request
        path, sender = exchange.path, exchange.sender
        offer = self.bridge.offer(path.leg, sender, request.body, path.speaks(other(sender)))
        exchange.offerer = sender
        return _with_body(request, offer)

    def response(self, exchange: Exchange, response: Response) -> Response:
        """A 18x or 2xx to forward upstream: its SDP is the answer to the request's offer,
        or, for a late offer, the offer itself (the ACK answers)."""
        if response.status == 100 or response.status >= 300 or not has_sdp(response):
            return response
        sdp = response.body
        if exchange.last is not None and exchange.last[0] == sdp:
            return _with_body(response, exchange.last[1])
        path, answerer = exchange.path, other(exchange.sender)
        if exchange.offerer is exchange.sender:
            rewritten = self.bridge.answer(path.leg, answerer, sdp)
        else:
            rewritten = self.bridge.offer(path.leg, answerer, sdp, path.speaks(exchange.sender))
            exchange.offerer = answerer
        exchange.last = (sdp, rewritten)
        return _with_body(response, rewritten)

    def ack(self, path: MediaPath, side: Side, request: Request) -> Request:
        """An ACK with SDP answers the offer a 2xx made (a late offer)."""
        if not has_sdp(request):
            return request
        return _with_body(request, self.bridge.answer(path.leg, side, request.body))

    def delete(self, path: MediaPath) -> None:
        self.bridge.delete(path.leg)

    def refused(self, what: str, path: MediaPath, refusal: MediaRefused) -> None:
        """A response or ACK the bridge cannot take goes on as it came: the caller cannot be
        answered with a refusal any more (Kamailio's script goes on after rtpengine fails)."""
        log.info(
            "sip: media bridge refused the SDP of %s on leg %s: %s",
            what,
            path.leg.branch,
            refusal.reason,
        )


def _with_body(message: _M, body: bytes) -> _M:
    """``message`` with another SDP; Content-Length is written from the body on encoding."""
    return replace(message, body=body)
