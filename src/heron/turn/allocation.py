"""One allocation: its relays, permissions and channels, and the relay hot path.

``Allocation`` is sans-IO: it sends through the ``ClientLink`` and
``Relay`` objects the server hands in, so the same code relays for UDP,
TCP and TLS clients and is tested with in-memory fakes. The two methods on
the hot path, :meth:`Allocation.relay_channel_data` and
:meth:`Allocation.deliver`, do a dict lookup and a comparison per packet and
build nothing they can avoid.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Protocol

from heron.stun import (
    Data,
    Message,
    MessageClass,
    Method,
    StunLocalError,
    XorPeerAddress,
)

__all__ = [
    "CHANNEL_LIFETIME",
    "PERMISSION_LIFETIME",
    "RESERVATION_LIFETIME",
    "Address",
    "Allocation",
    "Channel",
    "ClientKey",
    "ClientLink",
    "PeerConnection",
    "Relay",
    "TrafficCounters",
    "parsed_ip",
]

Address = tuple[str, int]
ClientKey = tuple[str, Address, Address]
"""(transport, client address, server address): the 5-tuple an allocation belongs to."""

PERMISSION_LIFETIME = 300.0
"""RFC 8656 §9: "the Permission Lifetime MUST be 300 seconds"."""
RESERVATION_LIFETIME = 30.0
"""RFC 8656 §7.2: a reserved port (EVEN-PORT with R) is held for about 30 seconds."""
CHANNEL_LIFETIME = 600.0
"""RFC 8656 §12: a channel binding lasts 10 minutes unless refreshed."""

_CHANNEL_HEADER = struct.Struct("!HH")


@lru_cache(maxsize=4096)
def parsed_ip(host: str) -> IPv4Address | IPv6Address:
    """``ip_address`` of a host string the sockets gave, remembered: parsing one took a few
    microseconds, twice an Allocate answer (relay and client) and once a Data indication,
    for the same few addresses (the relay's, an active client's or peer's) again and again."""
    return ip_address(host)


class ClientLink(Protocol):
    """The way back to the client: a UDP address on a listener, or a TCP/TLS stream."""

    stream: bool
    """True on TCP/TLS, where ChannelData is padded to 4 bytes (RFC 8656 §12.5)."""

    def send(self, data: bytes) -> None: ...


class Relay(Protocol):
    """A relay socket the server bound for this allocation."""

    address: Address
    """The relayed transport address as clients see it (XOR-RELAYED-ADDRESS)."""

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        """Hand what peers send to ``deliver`` (the allocation's :meth:`Allocation.deliver`)."""

    def send(self, data: bytes, peer: Address) -> None: ...

    def close(self) -> None: ...


DROP_REASONS = (
    "no_allocation",
    "malformed",
    "no_channel",
    "no_permission",
    "bandwidth",
    "too_big",
    "own_service",
)
"""Why the core drops a relayed packet: from a 5-tuple without an allocation (in a worker
that holds none of the client's), shorter than its header or its length, on a channel
not bound or expired, to or from a peer without a permission, over ``max_bps``, too big
for a Data indication, or a Send indication to one of our own listeners. The sockets
add theirs (:data:`heron.turn.transports.udp.SOCKET_DROP_REASONS`)."""


@dataclass(slots=True)
class TrafficCounters:
    """What ``/metrics`` and ``heron turn allocations`` report."""

    packets_to_peer: int = 0
    bytes_to_peer: int = 0
    packets_to_client: int = 0
    bytes_to_client: int = 0
    dropped: int = 0

    def add(self, other: TrafficCounters) -> None:
        """Count ``other``'s traffic in these counters too (field by field, no loop: this
        runs once an allocation is released)."""
        self.packets_to_peer += other.packets_to_peer
        self.bytes_to_peer += other.bytes_to_peer
        self.packets_to_client += other.packets_to_client
        self.bytes_to_client += other.bytes_to_client
        self.dropped += other.dropped


@dataclass(slots=True)
class Channel:
    number: int
    peer: Address
    expires: float
    relay: Relay
    """The relay of the peer's family, chosen once at bind time for the hot path."""


CONNECTION_BIND_TIMEOUT = 30.0
"""RFC 6062 §5.3: an unbound peer connection is closed after 30 seconds."""


@dataclass(slots=True)
class PeerConnection:
    """A TCP connection with a peer through a TCP allocation (RFC 6062 §2)."""

    id: int
    peer: Address
    bind_by: float | None
    """Deadline for the client's ConnectionBind; None once bound."""


@dataclass(slots=True, eq=False)
class Allocation:
    """State of one client 5-tuple's allocation (RFC 8656 §2.2)."""

    username: str
    client: ClientLink
    relays: dict[int, Relay]
    """By IP version, 4 and/or 6 (RFC 6156 dual allocation)."""
    expires: float
    transaction_id: bytes
    """The Allocate that made it, to spot retransmissions (RFC 8656 §7.2)."""
    success: bytes
    """The encoded success response, resent on a retransmitted Allocate."""
    max_bps: int = 0
    tcp: bool = False
    """A TCP allocation (RFC 6062): peers are reached by Connect, data by ConnectionBind."""
    account: str = ""
    """Whose quota it counts in: the account behind the USERNAME (a REST name's user too),
    or the visitor's network for anonymous credentials."""
    connections: dict[int, PeerConnection] = field(default_factory=dict)
    permissions: dict[str, float] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    peers: dict[Address, Channel] = field(default_factory=dict)
    traffic: TrafficCounters = field(default_factory=TrafficCounters)
    drops: dict[str, int] = field(default_factory=dict)
    """Drops by reason, shared with the core's counters (which outlive the allocation)."""
    _budget: float = 0.0
    _budget_at: float = 0.0

    # --- hot path -----------------------------------------------------------------

    def relay_channel_data(self, frame: bytes, now: float) -> None:
        """Client -> peer: one ChannelData frame whose header was checked by the caller."""
        channel = self.channels.get((frame[0] << 8) | frame[1])
        length = (frame[2] << 8) | frame[3]
        if (
            channel is None
            or channel.expires < now
            or len(frame) < 4 + length
            or self.permissions.get(channel.peer[0], 0.0) < now
            or (self.max_bps and not self._within_budget(length, now))
        ):
            self.drop(self._channel_data_refusal(channel, frame, length, now))
            return
        channel.relay.send(frame[4 : 4 + length], channel.peer)
        traffic = self.traffic
        traffic.packets_to_peer += 1
        traffic.bytes_to_peer += length

    def deliver(self, data: bytes, peer: Address, now: float) -> None:
        """Peer -> client through the relay: ChannelData if bound, else a Data indication.

        Packets from peers without a permission are dropped (RFC 8656 §9:
        "silently discard").
        """
        if self.permissions.get(peer[0], 0.0) < now:
            self.drop("no_permission")
            return
        size = len(data)
        if self.max_bps and not self._within_budget(size, now):
            self.drop("bandwidth")
            return
        channel = self.peers.get(peer)
        client = self.client
        if channel is not None and channel.expires >= now:
            frame = _CHANNEL_HEADER.pack(channel.number, size) + data
            if size % 4 and client.stream:
                frame += bytes(4 - size % 4)
            client.send(frame)
        else:
            try:
                indication = self.data_indication(data, peer)
            except StunLocalError:  # too big for a Data indication's 16-bit length
                self.drop("too_big")
                return
            client.send(indication)
        traffic = self.traffic
        traffic.packets_to_client += 1
        traffic.bytes_to_client += size

    # --- rest ------------------------------------------------------------------

    def send_indication(self, peer: Address, data: bytes, now: float) -> None:
        """Client -> peer via a Send indication (RFC 8656 §11.2); no permission, no relay."""
        relay = self.relays.get(6 if ":" in peer[0] else 4)
        if relay is None or self.permissions.get(peer[0], 0.0) < now:
            self.drop("no_permission")
            return
        if self.max_bps and not self._within_budget(len(data), now):
            self.drop("bandwidth")
            return
        relay.send(data, peer)
        self.traffic.packets_to_peer += 1
        self.traffic.bytes_to_peer += len(data)

    def data_indication(self, data: bytes, peer: Address) -> bytes:
        # The transaction id of an indication only needs to be unique enough
        # not to be taken for a retransmission; clients ignore it (§11.3).
        transaction_id = struct.pack("!QI", self.traffic.packets_to_client, len(data))
        message = Message(
            Method.DATA,
            MessageClass.INDICATION,
            transaction_id,
            (XorPeerAddress(parsed_ip(peer[0]), peer[1]), Data(data)),
        )
        return message.encode()

    def bind_channel(self, number: int, peer: Address, now: float) -> None:
        """Bind or refresh; the caller checked the peer's family has a relay."""
        old = self.channels.get(number)
        if old is not None:
            old.expires = now + CHANNEL_LIFETIME
            return
        relay = self.relays[6 if ":" in peer[0] else 4]
        channel = Channel(number, peer, now + CHANNEL_LIFETIME, relay)
        self.channels[number] = channel
        self.peers[peer] = channel

    def permit(self, host: str, now: float) -> None:
        self.permissions[host] = now + PERMISSION_LIFETIME

    def expire(self, now: float) -> None:
        """Forget permissions and channels whose time is up."""
        for host in [h for h, until in self.permissions.items() if until < now]:
            del self.permissions[host]
        for number in [n for n, c in self.channels.items() if c.expires < now]:
            channel = self.channels.pop(number)
            self.peers.pop(channel.peer, None)

    def drop(self, reason: str) -> None:
        """Count one packet dropped, in the allocation's traffic and by ``reason``."""
        self.traffic.dropped += 1
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def _channel_data_refusal(
        self, channel: Channel | None, frame: bytes, length: int, now: float
    ) -> str:
        """Why :meth:`relay_channel_data` refused a frame (off the hot path: drops only)."""
        if channel is None or channel.expires < now:
            return "no_channel"
        if len(frame) < 4 + length:
            return "malformed"
        if self.permissions.get(channel.peer[0], 0.0) < now:
            return "no_permission"
        return "bandwidth"

    def close(self) -> None:
        for relay in self.relays.values():
            relay.close()
        self.relays.clear()

    def _within_budget(self, size: int, now: float) -> bool:
        """A token bucket of one second's worth of ``max_bps`` (coturn's max-bps)."""
        self._budget = min(
            float(self.max_bps), self._budget + (now - self._budget_at) * self.max_bps
        )
        self._budget_at = now
        if self._budget < size:
            return False
        self._budget -= size
        return True
