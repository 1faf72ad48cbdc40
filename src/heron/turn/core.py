"""The TURN server core (RFC 8656, RFC 6156; STUN Binding of RFC 8489), sans-IO.

The asyncio server decodes a message, looks up the credentials its USERNAME
names, and calls :meth:`TurnCore.handle` with the client's 5-tuple and the
time; it gets back the reply to send, if any. Relay sockets are opened
through the injected :class:`RelayFactory`, so the core never touches a
socket and every path below is tested in memory with an injected clock.

Order of checks for a request, as RFC 8489 §6.3 and RFC 8656 §7.2 give it:
authentication (401/438/400), then unknown comprehension-required attributes
(420), then the method's own checks. Binding needs no authentication.

This module keeps the allocations and the requests that make and use them;
the rest lives beside it, one concern a module: long-term credentials and
the guess throttle (:mod:`~heron.turn.auth`), Binding and RFC 5780 NAT
discovery (:mod:`~heron.turn.discovery`), RFC 6062 peer connections
(:mod:`~heron.turn.tcp_connections`), quotas (:mod:`~heron.turn.quota`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from heron.stun import (
    AdditionalAddressFamily,
    AddressErrorCode,
    AddressFamily,
    Attribute,
    ChannelNumber,
    ConnectionId,
    Data,
    DontFragment,
    ErrorCode,
    EvenPort,
    Lifetime,
    Message,
    MessageClass,
    Method,
    RequestedAddressFamily,
    RequestedTransport,
    ReservationToken,
    Software,
    TransportProtocol,
    UnknownAttributes,
    XorMappedAddress,
    XorPeerAddress,
    XorRelayedAddress,
)
from heron.turn.allocation import (
    RESERVATION_LIFETIME,
    Address,
    Allocation,
    ClientKey,
    ClientLink,
    Relay,
    TrafficCounters,
    parsed_ip,
)
from heron.turn.auth import Authenticated, Credentials, Guesses, LongTermAuth
from heron.turn.discovery import AlternateAddresses, answer_binding
from heron.turn.nonce import NonceIssuer
from heron.turn.peers import PeerPolicy
from heron.turn.quota import Quotas
from heron.turn.replies import Refusal, Reply, encode_answer
from heron.turn.tcp_connections import TcpConnections

__all__ = ["RelayFactory", "TurnCore", "TurnCounters", "TurnPolicy"]

_FAMILY_VERSION = {AddressFamily.IPV4: 4, AddressFamily.IPV6: 6}


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    """The TURN settings the core enforces (built from ``[turn]`` in the config)."""

    realm: str
    software: str = "heron"
    default_lifetime: int = 600
    max_lifetime: int = 3600
    user_quota: int = 20
    total_quota: int = 10_000
    max_bps: int = 0
    allow_anonymous: bool = False
    max_permissions: int = 256
    """Per allocation; a client asking for more is attacking, not calling."""
    max_connections: int = 64
    """TCP peer connections per allocation (RFC 6062); each holds a socket."""
    alternate: AlternateAddresses | None = None
    """Set when a second address is configured (the handbook's two public IPv4s)."""


class RelayFactory(Protocol):
    """Opens relay sockets for the core (the server binds real ones)."""

    versions: frozenset[int]
    """IP versions relays can be opened for: {4}, or {4, 6}."""

    def open(
        self, version: int, *, even_port: bool, reserve_next: bool, dont_fragment: bool
    ) -> tuple[Relay, bytes | None] | None:
        """A new relay, and a RESERVATION-TOKEN if the next port was reserved; None if full.

        ``dont_fragment``: send with the DF bit set (RFC 8656 §7.2 step 4, DONT-FRAGMENT).
        """

    def claim(self, token: bytes) -> Relay | None:
        """The relay reserved under ``token`` (RFC 8656 §7.2 rule 5), or None."""

    def open_tcp(self, version: int) -> Relay | None:
        """A listening TCP relay for an RFC 6062 allocation; None if full."""


@dataclass(slots=True)
class TurnCounters:
    allocations_created: int = 0
    allocations_expired: int = 0
    allocations_ended: int = 0
    """Ended by the server: the account's password changed or the account went."""
    auth_failures: int = 0
    auth_throttled: int = 0
    """Signed requests refused unchecked while their account or source had to wait."""
    requests: int = 0
    bad_requests: int = 0
    retired: TrafficCounters = field(default_factory=TrafficCounters)
    drops: dict[str, int] = field(default_factory=dict)
    """Relayed packets dropped, by reason (:data:`~heron.turn.allocation.DROP_REASONS`)."""

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1


_Handler = Callable[[Message, ClientKey, ClientLink, Authenticated, float], tuple[Attribute, ...]]


class TurnCore:
    """Allocations of every client, and the requests that make and use them."""

    def __init__(
        self,
        policy: TurnPolicy,
        relays: RelayFactory,
        nonces: NonceIssuer,
        peers: PeerPolicy,
        connection_ids: Callable[[], int] | None = None,
        guesses: Guesses | None = None,
    ) -> None:
        self.policy = policy
        self._software = Software(policy.software)
        """SOFTWARE of every Allocate answer, built once (attributes are immutable)."""
        self.allocations: dict[ClientKey, Allocation] = {}
        self.counters = TurnCounters()
        self._relays = relays
        self._peers = peers
        self._auth = LongTermAuth(
            policy.realm,
            policy.software,
            nonces,
            self.counters,
            guesses,
            allow_anonymous=policy.allow_anonymous,
        )
        self._quotas = Quotas(policy.user_quota, policy.total_quota)
        self._tcp = TcpConnections(
            policy.max_connections,
            policy.max_permissions,
            connection_ids or itertools.count(1).__next__,
        )
        self._handlers: dict[int, _Handler] = {
            Method.ALLOCATE: self._allocate,
            Method.REFRESH: self._refresh,
            Method.CREATE_PERMISSION: self._create_permission,
            Method.CHANNEL_BIND: self._channel_bind,
            Method.CONNECT: self._connect,
            Method.CONNECTION_BIND: self._connection_bind,
        }

    # --- entry points -----------------------------------------------------------------

    def handle(
        self,
        message: Message,
        key: ClientKey,
        client: ClientLink,
        credentials: Credentials | None,
        now: float,
        account: str | None = None,
    ) -> Reply | None:
        """Process one decoded message from ``key``; the reply to send, or None.

        ``account`` is the account the USERNAME names (its guesses and quota key),
        known without a lookup; None for anonymous REST credentials (a visitor).
        """
        unknown = message.unknown_required()
        if message.message_class is MessageClass.INDICATION:
            # RFC 8489 §6.3.2: an indication with unknown comprehension-required
            # attributes "is discarded and processing ceases".
            if message.method == Method.SEND and not unknown:
                self._send(message, key, now)
            return None
        if message.message_class is not MessageClass.REQUEST:
            return None
        self.counters.requests += 1
        if message.method == Method.BINDING:
            if unknown:
                return self._error(
                    message, ErrorCode.UNKNOWN_ATTRIBUTE, (UnknownAttributes(unknown),)
                )
            try:
                return answer_binding(message, key, self.policy.alternate, self.policy.software)
            except Refusal as refusal:
                return self._refuse(message, refusal, None)
        handler = self._handlers.get(message.method)
        if handler is None:
            return self._error(message, ErrorCode.BAD_REQUEST)
        holder = self.allocations.get(key)
        made_by = None if holder is None else holder.username
        try:
            auth = self._auth.check(message, key[1][0], credentials, account, made_by, now)
        except Refusal as refusal:
            return self._refuse(message, refusal, None)
        if unknown:
            # RFC 8489 §6.3: unknown attributes are looked at once authentication is done,
            # so the 420 is signed like any other answer to an authenticated request.
            return self._error(
                message, ErrorCode.UNKNOWN_ATTRIBUTE, (UnknownAttributes(unknown),), auth.key
            )
        if message.method == Method.ALLOCATE:
            if holder is not None and holder.transaction_id == message.transaction_id:
                return Reply(holder.success)  # a retransmission (RFC 8656 §7.2)
        try:
            attributes = handler(message, key, client, auth, now)
        except Refusal as refusal:
            return self._refuse(message, refusal, auth.key)
        reply = encode_answer(message.success_response(attributes), message, auth.key)
        if message.method == Method.ALLOCATE:
            self.allocations[key].success = reply.data
        elif message.method == Method.CONNECT:
            connection = next(a.value for a in attributes if isinstance(a, ConnectionId))
            failure = self._error(message, ErrorCode.CONNECTION_TIMEOUT_OR_FAILURE, key=auth.key)
            return Reply(reply.data, connect=self._tcp.order(connection, failure.data))
        elif message.method == Method.CONNECTION_BIND:
            wanted = message.find(ConnectionId)
            assert wanted is not None  # the handler refused a ConnectionBind without one
            return Reply(reply.data, bind=wanted.value)
        return reply

    def channel_data(self, key: ClientKey, frame: bytes, now: float) -> None:
        """Client -> peer ChannelData (the hot path); dropped without an allocation."""
        allocation = self.allocations.get(key)
        if allocation is None:
            self.counters.drop("no_allocation")
            return
        if len(frame) < 4:
            allocation.drop("malformed")
            return
        allocation.relay_channel_data(frame, now)

    def needs_keys(self, message: Message, client_ip: str, account: str | None, now: float) -> bool:
        """Whether answering ``message`` needs its USERNAME's keys.

        Only a signed TURN request with our realm and a valid nonce for this
        client, whose account and source need not wait, is worth a key lookup;
        the core answers anything else (401, 438, 400, the throttle's 401)
        without keys. Checked before the server goes to the account store.
        """
        if message.message_class is not MessageClass.REQUEST or message.method not in (
            self._handlers
        ):
            return False
        return self._auth.worth_keys(message, client_ip, account, now)

    def end_account(self, account: str) -> int:
        """The account's password changed or it was removed: its allocations end now.

        Keys derived from the old password prove nothing any more, so what they
        opened closes with them (as web sessions and web phone credentials do).
        """
        ended = [(k, a) for k, a in self.allocations.items() if a.account == account]
        for key, allocation in ended:
            self._delete(key, allocation)
        self.counters.allocations_ended += len(ended)
        return len(ended)

    def close_client(self, key: ClientKey) -> None:
        """The client's TCP/TLS connection closed: its allocation goes with it (§3.1)."""
        allocation = self.allocations.get(key)
        if allocation is not None:
            self._delete(key, allocation)

    def expire(self, now: float) -> list[int]:
        """Drop expired allocations, permissions, channels and port reservations.

        Returns the TCP peer connections left unbound too long (RFC 6062 §5.3),
        for the server to close.
        """
        unbound: list[int] = []
        for key, allocation in list(self.allocations.items()):
            if allocation.expires < now:
                self.counters.allocations_expired += 1
                self._delete(key, allocation)
                continue
            allocation.expire(now)
            unbound += self._tcp.unbound(allocation, now)
        self._quotas.expire(now)
        return unbound

    def traffic(self) -> TrafficCounters:
        """Relayed traffic of live and retired allocations together."""
        total = TrafficCounters()
        total.add(self.counters.retired)
        for allocation in self.allocations.values():
            total.add(allocation.traffic)
        return total

    def live(self) -> Iterator[tuple[ClientKey, Allocation]]:
        return iter(self.allocations.items())

    # --- RFC 6062 peer connections, as the server reports them ----------------------

    def peer_connected(self, relay: Relay, peer: Address, now: float) -> int | None:
        """A peer connected to a TCP relay: its CONNECTION-ID, or None to close it."""
        return self._tcp.peer_connected(relay, peer, now)

    def connected(self, connection: int, now: float) -> bool:
        """The server's connection to the peer is up; False if it was forgotten meanwhile."""
        return self._tcp.connected(connection, now)

    def connection_closed(self, connection: int) -> None:
        """Either side of a peer connection closed, or the connection failed."""
        self._tcp.closed(connection)

    # --- methods --------------------------------------------------------------------

    def _allocate(
        self, message: Message, key: ClientKey, client: ClientLink, auth: Authenticated, now: float
    ) -> tuple[Attribute, ...]:
        if key in self.allocations:
            raise Refusal(ErrorCode.ALLOCATION_MISMATCH)
        transport = message.find(RequestedTransport)
        if transport is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        tcp = transport.protocol == TransportProtocol.TCP
        if not tcp and transport.protocol != TransportProtocol.UDP:
            raise Refusal(ErrorCode.UNSUPPORTED_TRANSPORT_PROTOCOL)
        even = message.find(EvenPort)
        token = message.find(ReservationToken)
        requested = message.find(RequestedAddressFamily)
        additional = message.find(AdditionalAddressFamily)
        # RFC 8656 §7.2 steps 5 and 8: a token stands alone; a reservation cannot be dual.
        if token is not None and (
            even is not None or requested is not None or additional is not None
        ):
            raise Refusal(ErrorCode.BAD_REQUEST)
        if even is not None and even.reserve and additional is not None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        if requested is not None and additional is not None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        if additional is not None and additional.family != AddressFamily.IPV6:
            raise Refusal(ErrorCode.BAD_REQUEST)
        # RFC 6062 §5.1: TCP relaying only for clients on TCP or TLS; it has no
        # port pairs, reservations or DF, and one family.
        if tcp and (
            key[0] == "udp"
            or any(
                message.find(kind) is not None
                for kind in (EvenPort, ReservationToken, DontFragment, AdditionalAddressFamily)
            )
        ):
            raise Refusal(ErrorCode.BAD_REQUEST)
        versions = [_FAMILY_VERSION[requested.family]] if requested is not None else [4]
        if versions[0] not in self._relays.versions:
            raise Refusal(ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED)
        extra: list[Attribute] = []
        if additional is not None:
            if 6 in self._relays.versions:
                versions.append(6)
            else:
                extra.append(
                    AddressErrorCode(
                        AddressFamily.IPV6,
                        ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED,
                        "Address Family not Supported",
                    )
                )
        if token is not None:
            self._quotas.claim(token.value)
        self._quotas.check(auth.account, len(self.allocations))
        dont_fragment = message.find(DontFragment) is not None
        if tcp:
            relays, reservation = self._open_tcp_relay(versions[0]), None
        else:
            relays, reservation = self._open_relays(versions, even, token, dont_fragment)
        if len(versions) == 2 and 6 not in relays:
            # RFC 8656 §7.2 step 9: the IPv4 half stands, the IPv6 half is reported.
            extra.append(
                AddressErrorCode(
                    AddressFamily.IPV6, ErrorCode.INSUFFICIENT_CAPACITY, "Insufficient Capacity"
                )
            )
        lifetime = self._lifetime(message)
        allocation = Allocation(
            username=auth.username,
            client=client,
            relays=relays,
            expires=now + lifetime,
            transaction_id=message.transaction_id,
            success=b"",
            max_bps=self.policy.max_bps,
            tcp=tcp,
            account=auth.account,
            drops=self.counters.drops,
        )
        self.allocations[key] = allocation
        if tcp:
            self._tcp.listen(relays[versions[0]], allocation)
        for relay in relays.values():
            relay.attach(allocation.deliver)
        self._quotas.count(auth.account, 1)
        if reservation is not None:
            self._quotas.reserve(reservation, auth.account, now + RESERVATION_LIFETIME)
        self.counters.allocations_created += 1
        relayed = [
            XorRelayedAddress(parsed_ip(r.address[0]), r.address[1]) for r in relays.values()
        ]
        host, port = key[1]
        attributes: list[Attribute] = [*relayed, Lifetime(lifetime), *extra]
        if reservation is not None:
            attributes.append(ReservationToken(reservation))
        attributes += [XorMappedAddress(parsed_ip(host), port), self._software]
        return tuple(attributes)

    def _open_relays(
        self,
        versions: list[int],
        even: EvenPort | None,
        token: ReservationToken | None,
        dont_fragment: bool,
    ) -> tuple[dict[int, Relay], bytes | None]:
        if token is not None:
            relay = self._relays.claim(token.value)
            if relay is None:
                raise Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
            return {6 if ":" in relay.address[0] else 4: relay}, None
        relays: dict[int, Relay] = {}
        reservation = None
        for version in versions:
            opened = self._relays.open(
                version,
                even_port=even is not None,
                reserve_next=even is not None and even.reserve,
                dont_fragment=dont_fragment,
            )
            if opened is None:
                if relays:  # the IPv6 half of a dual allocation; the caller reports it
                    break
                raise Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
            relays[version], reservation = opened
        return relays, reservation

    def _open_tcp_relay(self, version: int) -> dict[int, Relay]:
        relay = self._relays.open_tcp(version)
        if relay is None:
            raise Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
        return {version: relay}

    def _lifetime(self, message: Message) -> int:
        """RFC 8656 §7.2: at least the default, at most the maximum."""
        asked = message.find(Lifetime)
        if asked is None:
            return self.policy.default_lifetime
        return min(max(asked.value, self.policy.default_lifetime), self.policy.max_lifetime)

    def _refresh(
        self, message: Message, key: ClientKey, client: ClientLink, auth: Authenticated, now: float
    ) -> tuple[Attribute, ...]:
        allocation = self._owned(key, auth)
        family = message.find(RequestedAddressFamily)
        if family is not None and _FAMILY_VERSION[family.family] not in allocation.relays:
            raise Refusal(ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH)
        asked = message.find(Lifetime)
        if asked is not None and asked.value == 0:
            self._delete(key, allocation)
            return (Lifetime(0),)
        lifetime = self._lifetime(message)
        allocation.expires = now + lifetime
        return (Lifetime(lifetime),)

    def _create_permission(
        self, message: Message, key: ClientKey, client: ClientLink, auth: Authenticated, now: float
    ) -> tuple[Attribute, ...]:
        allocation = self._owned(key, auth)
        peers = message.find_all(XorPeerAddress)
        if not peers:
            raise Refusal(ErrorCode.BAD_REQUEST)
        hosts = [self._permitted_peer(allocation, peer) for peer in peers]
        new = {h for h in hosts if h not in allocation.permissions}
        if len(allocation.permissions) + len(new) > self.policy.max_permissions:
            raise Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
        for host in hosts:
            allocation.permit(host, now)
        return ()

    def _channel_bind(
        self, message: Message, key: ClientKey, client: ClientLink, auth: Authenticated, now: float
    ) -> tuple[Attribute, ...]:
        allocation = self._owned(key, auth)
        number, peer = message.find(ChannelNumber), message.find(XorPeerAddress)
        if number is None or peer is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        host = self._permitted_peer(allocation, peer, peer.port)
        address = (host, peer.port)
        bound = allocation.channels.get(number.number)
        by_peer = allocation.peers.get(address)
        # RFC 8656 §12.2: a channel is bound to one peer and a peer to one channel.
        if (bound is not None and bound.peer != address) or (
            by_peer is not None and by_peer.number != number.number
        ):
            raise Refusal(ErrorCode.BAD_REQUEST)
        if host not in allocation.permissions and (
            len(allocation.permissions) >= self.policy.max_permissions
        ):
            raise Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
        allocation.bind_channel(number.number, address, now)
        allocation.permit(host, now)
        return ()

    # --- RFC 6062: the checks Connect shares with ChannelBind, then its own ------------

    def _connect(
        self, message: Message, key: ClientKey, client: ClientLink, auth: Authenticated, now: float
    ) -> tuple[Attribute, ...]:
        """RFC 6062 §5.2: check, then let the server open the TCP connection."""
        allocation = self._owned(key, auth)
        peer = message.find(XorPeerAddress)
        if not allocation.tcp or peer is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        host = self._permitted_peer(allocation, peer, peer.port)
        return (ConnectionId(self._tcp.connect(allocation, (host, peer.port), now)),)

    def _connection_bind(
        self, message: Message, key: ClientKey, client: ClientLink, auth: Authenticated, now: float
    ) -> tuple[Attribute, ...]:
        """RFC 6062 §5.4, on a new TCP connection that holds no allocation."""
        wanted = message.find(ConnectionId)
        if key[0] == "udp" or key in self.allocations or wanted is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        self._tcp.bind(wanted.value, auth.username)
        return ()

    def _send(self, message: Message, key: ClientKey, now: float) -> None:
        allocation = self.allocations.get(key)
        peer, data = message.find(XorPeerAddress), message.find(Data)
        if allocation is None:
            self.counters.drop("no_allocation")
            return
        if peer is None or data is None:
            self.counters.drop("malformed")
            return
        if peer.port in self._peers.own_ports and self._peers.is_own_service(
            peer.address, peer.port
        ):
            allocation.drop("own_service")
            return
        allocation.send_indication((str(peer.address), peer.port), data.value, now)

    # --- helpers -------------------------------------------------------------------

    def _owned(self, key: ClientKey, auth: Authenticated) -> Allocation:
        """The 5-tuple's allocation, made by the same user (RFC 8656 §5: else 441)."""
        allocation = self.allocations.get(key)
        if allocation is None:
            raise Refusal(ErrorCode.ALLOCATION_MISMATCH)
        if allocation.username != auth.username:
            raise Refusal(ErrorCode.WRONG_CREDENTIALS)
        return allocation

    def _permitted_peer(
        self, allocation: Allocation, peer: XorPeerAddress, port: int | None = None
    ) -> str:
        """The peer's host, if relaying to it is allowed; ``port`` when one is named."""
        if peer.address.version not in allocation.relays:
            raise Refusal(ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH)
        if not self._peers.permits(peer.address):
            raise Refusal(ErrorCode.FORBIDDEN)
        if port is not None and self._peers.is_own_service(peer.address, port):
            raise Refusal(ErrorCode.FORBIDDEN)
        return str(peer.address)

    def _delete(self, key: ClientKey, allocation: Allocation) -> None:
        del self.allocations[key]
        self._tcp.forget(allocation)
        allocation.close()
        self._quotas.count(allocation.account, -1)
        self.counters.retired.add(allocation.traffic)

    def _refuse(self, message: Message, refusal: Refusal, key: bytes | None) -> Reply:
        if refusal.data is not None:
            return Reply(refusal.data)
        return self._error(message, refusal.code, refusal.attributes, key, refusal.reason)

    def _error(
        self,
        message: Message,
        code: int,
        attributes: tuple[Attribute, ...] = (),
        key: bytes | None = None,
        reason: str | None = None,
    ) -> Reply:
        if code == ErrorCode.BAD_REQUEST:
            self.counters.bad_requests += 1
        response = message.error_response(code, reason, attributes=attributes)
        return encode_answer(response, message, key)
