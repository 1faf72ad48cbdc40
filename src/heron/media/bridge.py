"""The media bridge's I/O: UDP sockets from ``media.port_min..port_max`` and the loop's
readers around the sans-IO calls (:mod:`heron.media.call`).

:class:`Bridge` implements :class:`heron.sip.media.MediaBridge`. Its calls are
synchronous: ``offer`` binds the sockets before it returns, so the SDP it gives
names ports that already receive. Each socket is read with ``add_reader`` and
written with ``sendto`` (no transports, no futures per packet); what a socket
cannot take at once is dropped and counted, as a router drops.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from heron.config import MediaSettings
from heron.media.call import Address, Call, Drop, Endpoint, PlainEndpoint, Policy, Stats
from heron.media.dtls import Certificate
from heron.media.ice import IceLite
from heron.media.rewrite import LocalLeg, RemoteLeg, answer_toward, offer_toward, pt_table, read_leg
from heron.media.sdp import Connection, SdpError, SessionDescription, parse
from heron.media.webrtc import WebRtcEndpoint
from heron.sip.media import MediaLeg, MediaRefused, Side, Transport

__all__ = ["Bridge"]

log = logging.getLogger(__name__)

_READ_BATCH = 64
"""Datagrams read from one socket per wake-up, so that one busy socket cannot starve the
others of the loop."""
_MAX_DATAGRAM = 2048


@dataclass(slots=True)
class _Relay:
    """A call's sockets and offer/answer state around its sans-IO :class:`Call`."""

    call: Call
    sockets: dict[tuple[Side, int], socket.socket] = field(default_factory=dict)
    local: dict[Side, LocalLeg] = field(default_factory=dict)
    failed: bool = False
    """A datagram or a timer of this call raised (logged once)."""
    pending: tuple[Side, RemoteLeg] | None = None
    """The last offer and who made it: answered by the other side, once or again (a 183
    with SDP, then the 200), until the next offer."""


class Bridge:
    """Relays the calls the SIP proxy hands it (:class:`heron.sip.media.MediaBridge`)."""

    def __init__(
        self,
        settings: MediaSettings,
        advertise: IPv4Address | IPv6Address,
        allowed: Policy,
        certificate: Certificate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``allowed``: the destination policy (media goes to and comes from only the
        addresses it allows); ``advertise`` is the address put in SDP; ``certificate`` heron's DTLS
        identity toward browsers."""
        self._settings = settings
        self._fingerprint = certificate.fingerprint
        self._context = certificate.context()
        self._connection = Connection(str(advertise), advertise.version)
        self._family = socket.AF_INET if settings.address.version == 4 else socket.AF_INET6
        self._allowed = allowed
        self._clock = clock
        self._relays: dict[MediaLeg, _Relay] = {}
        self._low = settings.port_min + settings.port_min % 2
        self._next = self._low
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the sockets are read on: the one running when the first is bound."""
        self.stats = Stats()
        self.timeouts = 0
        self.refused = 0
        self.calls_total = 0

    # The MediaBridge Protocol -------------------------------------------------------

    def offer(self, leg: MediaLeg, side: Side, sdp: bytes, toward: Transport) -> bytes:
        description, remote = _read(sdp)
        existing = self._relays.get(leg)
        relay = existing or self._open(leg, echo=False)
        try:
            self._bind(relay, side, remote.transport)
            self._bind(relay, _other(side), toward)
            self._set_endpoint(relay, side, remote, offered=True)
        except MediaRefused:
            if existing is None:  # a re-offer that fails keeps the call as it was
                self._close(leg)
            raise
        relay.pending = (side, remote)
        relay.call.held = remote.direction != "sendrecv"
        relay.call.heard = self._clock()  # a re-INVITE says the call is alive
        return offer_toward(description, remote, relay.local[_other(side)])

    def answer(self, leg: MediaLeg, side: Side, sdp: bytes) -> bytes:
        relay = self._relays.get(leg)
        if relay is None or relay.pending is None or relay.pending[0] is side:
            raise MediaRefused(488, "no offer from the other side for this answer")
        description, remote = _read(sdp)
        offerer, offer = relay.pending
        if (side, 0) not in relay.sockets:
            raise MediaRefused(488, "the answer is not for the offer's leg")
        try:
            forwarded = answer_toward(
                description, remote, offer, relay.local[offerer], _answer_setup(offer)
            )
        except SdpError as exc:
            raise MediaRefused(exc.status, str(exc)) from None
        self._set_endpoint(relay, side, remote)
        # RFC 5763 §5: the answerer that said active is the DTLS client, so heron serves.
        self._set_role(relay, side, server=remote.setup != "passive")
        self._set_role(relay, offerer, server=_answer_setup(offer) == "passive")
        relay.call.pt_tables[offerer] = pt_table(offer.codecs, remote.codecs)
        relay.call.pt_tables[side] = pt_table(remote.codecs, offer.codecs)
        relay.call.held = offer.direction != "sendrecv" or remote.direction != "sendrecv"
        relay.call.heard = self._clock()
        return forwarded

    def echo(self, leg: MediaLeg, sdp: bytes) -> bytes:
        description, remote = _read(sdp)
        existing = self._relays.get(leg)
        relay = existing or self._open(leg, echo=True)
        try:
            self._bind(relay, Side.CALLER, remote.transport)
            self._set_endpoint(relay, Side.CALLER, remote)
        except MediaRefused:
            if existing is None:
                self._close(leg)
            raise
        setup = _answer_setup(remote)
        self._set_role(relay, Side.CALLER, server=setup == "passive")
        try:
            return answer_toward(description, remote, remote, relay.local[Side.CALLER], setup)
        except SdpError as exc:
            raise MediaRefused(exc.status, str(exc)) from None

    def delete(self, leg: MediaLeg) -> None:
        self._close(leg)

    # Timers and state ----------------------------------------------------------------

    def sweep(self, now: float | None = None) -> list[MediaLeg]:
        """Run the calls' timers and end those silent for ``media.timeout``; the legs ended."""
        now = self._clock() if now is None else now
        ended = []
        for leg, relay in list(self._relays.items()):
            if relay.call.expired(now, self._settings.timeout):
                log.info(
                    "media: call %s silent for %.0f s, ended", leg.call_id, now - relay.call.heard
                )
                self.timeouts += 1
                self._close(leg)
                ended.append(leg)
                continue
            try:
                relay.call.handle_timer(now)
            except Exception:  # one broken call must not stop the timers of the others
                self._failed(relay, "a timer raised")
            self._flush(relay)
        return ended

    def close(self) -> None:
        """Free every port (the component stops)."""
        for leg in list(self._relays):
            self._close(leg)

    @property
    def calls(self) -> int:
        return len(self._relays)

    @property
    def ports(self) -> int:
        """UDP ports bound now."""
        return sum(len(r.sockets) for r in self._relays.values())

    # Internals -------------------------------------------------------------------------

    def _open(self, leg: MediaLeg, echo: bool) -> _Relay:
        if len(self._relays) >= self._settings.max_calls:
            self.refused += 1
            raise MediaRefused(503, f"media.max_calls ({self._settings.max_calls}) reached")
        relay = _Relay(Call(leg, self.stats, self._clock(), echo=echo))
        self._relays[leg] = relay
        self.calls_total += 1
        return relay

    def _close(self, leg: MediaLeg) -> None:
        relay = self._relays.pop(leg, None)
        if relay is None:
            return
        for sock in relay.sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        relay.sockets.clear()

    def _set_endpoint(
        self, relay: _Relay, side: Side, remote: RemoteLeg, offered: bool = False
    ) -> None:
        local = relay.local[side]
        if local.transport is not remote.transport:
            wrong = remote.transport.value
            raise MediaRefused(488, f"this leg speaks {local.transport.value}, not {wrong}")
        endpoint = relay.call.sides.get(side)
        if isinstance(endpoint, WebRtcEndpoint) and offered:
            if remote.ice_ufrag != endpoint.remote.ice_ufrag:
                # An ICE restart (RFC 8445 §9): the answer must carry new credentials too.
                ufrag, pwd, _ = self._security(Transport.WEBRTC)
                relay.local[side] = local = replace(local, ice_ufrag=ufrag, ice_pwd=pwd)
                endpoint.ice = IceLite(ufrag, pwd, remote.ice_ufrag)
        if isinstance(endpoint, PlainEndpoint | WebRtcEndpoint):
            endpoint.update(remote)
            return
        new: Endpoint
        if remote.transport is Transport.RTP:
            new = PlainEndpoint(remote, self._allowed)
        else:
            ice = IceLite(local.ice_ufrag, local.ice_pwd, remote.ice_ufrag)
            new = WebRtcEndpoint(remote, ice, self._context, self._allowed)
        relay.call.sides[side] = new

    @staticmethod
    def _set_role(relay: _Relay, side: Side, server: bool) -> None:
        endpoint = relay.call.sides.get(side)
        if isinstance(endpoint, WebRtcEndpoint):
            endpoint.set_role(server)

    def _bind(self, relay: _Relay, side: Side, transport: Transport) -> None:
        """Bind ``side``'s sockets once (a re-offer keeps them): an even RTP port, and
        RTCP on the next one for a plain leg."""
        if side in relay.local:
            return
        count = 2 if transport is Transport.RTP else 1
        sockets = self._allocate(count)
        self._loop = loop = self._loop or asyncio.get_running_loop()
        for component, sock in enumerate(sockets):
            relay.sockets[(side, component)] = sock
            loop.add_reader(sock.fileno(), self._readable, relay, side, component, sock)
        port = sockets[0].getsockname()[1]
        relay.local[side] = LocalLeg(self._connection, port, transport, *self._security(transport))

    def _security(self, transport: Transport) -> tuple[str, str, str]:
        """ICE credentials (RFC 8839 §5.4: 4+ and 22+ ice-chars) and the fingerprint."""
        if transport is Transport.RTP:
            return ("", "", "")
        return (secrets.token_hex(4), secrets.token_hex(12), self._fingerprint)

    def _allocate(self, count: int) -> list[socket.socket]:
        """``count`` sockets on consecutive ports from an even one, walking the range."""
        high = self._settings.port_max
        span = (high - self._low + 1) // 2
        for _ in range(span):
            port = self._next
            self._next = port + 2 if port + 3 <= high else self._low
            bound: list[socket.socket] = []
            try:
                for offset in range(count):
                    sock = socket.socket(self._family, socket.SOCK_DGRAM)
                    bound.append(sock)
                    sock.setblocking(False)
                    sock.bind((str(self._settings.address), port + offset))
            except OSError as exc:
                for sock in bound:
                    sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise MediaRefused(503, f"media: cannot bind a port: {exc}") from None
                continue
            return bound
        self.refused += 1
        raise MediaRefused(503, "media: no free port in media.port_min..port_max")

    def _readable(self, relay: _Relay, side: Side, component: int, sock: socket.socket) -> None:
        call = relay.call
        now = self._clock()
        for _ in range(_READ_BATCH):
            try:
                data, source = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error for an earlier sendto: nothing to read
                continue
            try:
                call.receive(side, component, data, (source[0], source[1]), now)
            except Exception:  # a bug must cost one datagram, not the socket or the log
                self.stats.drops[Drop.BUG] += 1
                self._failed(relay, "a datagram raised")
        self._flush(relay)

    @staticmethod
    def _failed(relay: _Relay, what: str) -> None:
        """Log a bug in a call's processing, once per call (not once per packet)."""
        if not relay.failed:
            relay.failed = True
            log.exception("media: call %s: %s", relay.call.leg.call_id, what)

    def _flush(self, relay: _Relay) -> None:
        outbox = relay.call.outbox
        if not outbox:
            return
        sockets = relay.sockets
        for side, component, data, target in outbox:
            sock = sockets.get((side, component))
            try:
                if sock is None:
                    raise OSError
                sock.sendto(data, target)
            except OSError:
                self.stats.drops[Drop.SEND] += 1
        outbox.clear()

    def rows(self) -> list[dict[str, Any]]:
        """The live calls, for ``heron media calls`` and the admin page."""
        now = self._clock()
        rows = []
        for leg, relay in self._relays.items():
            row: dict[str, Any] = {
                "call_id": leg.call_id,
                "branch": leg.branch,
                "echo": relay.call.echo,
                "age": int(now - relay.call.started),
                "silent": int(now - relay.call.heard),
            }
            for side in Side:
                local = relay.local.get(side)
                peer = _peer(relay.call.sides.get(side))
                row[f"{side.value}_transport"] = local.transport.name.lower() if local else ""
                row[f"{side.value}_port"] = local.port if local else 0
                row[f"{side.value}_peer"] = f"{peer[0]}:{peer[1]}" if peer else ""
                row[f"{side.value}_packets"] = relay.call.relayed[side]
            rows.append(row)
        return rows


def _peer(endpoint: Endpoint | None) -> Address | None:
    if isinstance(endpoint, PlainEndpoint):
        return endpoint.latched[0]
    if isinstance(endpoint, WebRtcEndpoint):
        return endpoint.ice.selected
    return None


def _answer_setup(offer: RemoteLeg) -> str:
    """heron's a=setup answering ``offer`` (RFC 5763 §5): passive (heron serves DTLS)
    unless the offerer insists on being passive itself."""
    return "active" if offer.setup == "passive" else "passive"


def _other(side: Side) -> Side:
    return Side.CALLEE if side is Side.CALLER else Side.CALLER


def _read(sdp: bytes) -> tuple[SessionDescription, RemoteLeg]:
    try:
        description = parse(sdp)
        return description, read_leg(description)
    except SdpError as exc:
        raise MediaRefused(exc.status, str(exc)) from None
