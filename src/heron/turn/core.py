"""The TURN server core (RFC 8656, RFC 6156; STUN Binding of RFC 8489), sans-IO.

The asyncio server decodes a message, looks up the credentials its USERNAME
names, and calls :meth:`TurnCore.handle` with the client's 5-tuple and the
time; it gets back the reply to send, if any. Relay sockets are opened
through the injected :class:`RelayFactory`, so the core never touches a
socket and every path below is tested in memory with an injected clock.

Order of checks for a request, as RFC 8489 §6.3 and RFC 8656 §7.2 give it:
authentication (401/438/400), then unknown comprehension-required attributes
(420), then the method's own checks. Binding needs no authentication.

Password guesses count in the throttle every protocol shares (:class:`Guesses`,
per account and per source network): while either must wait, a signed request
is refused unchecked. :meth:`TurnCore.needs_keys` tells the server whether a
message is worth a key lookup at all, so that a stranger's datagram costs no
database query before its shape, realm, nonce and the throttle have been checked.
Quotas count the account behind a USERNAME (a REST name's user too), anonymous
credentials the visitor's network, reserved ports (EVEN-PORT R) included.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Protocol

from heron.guesses import network_key
from heron.stun import (
    AdditionalAddressFamily,
    AddressErrorCode,
    AddressFamily,
    Attribute,
    ChangeRequest,
    ChannelNumber,
    ConnectionId,
    Data,
    DontFragment,
    ErrorCode,
    EvenPort,
    Fingerprint,
    Lifetime,
    MappedAddress,
    Message,
    MessageClass,
    MessageIntegrity,
    MessageIntegritySha256,
    Method,
    Nonce,
    OtherAddress,
    Padding,
    PasswordAlgorithm,
    PasswordAlgorithmId,
    PasswordAlgorithms,
    Realm,
    RequestedAddressFamily,
    RequestedTransport,
    ReservationToken,
    ResponseOrigin,
    ResponsePort,
    Software,
    TransportProtocol,
    UnknownAttributes,
    Username,
    XorMappedAddress,
    XorPeerAddress,
    XorRelayedAddress,
)
from heron.turn.allocation import (
    CONNECTION_BIND_TIMEOUT,
    RESERVATION_LIFETIME,
    Address,
    Allocation,
    ClientLink,
    PeerConnection,
    Relay,
    TrafficCounters,
)
from heron.turn.nonce import NonceIssuer, NonceState
from heron.turn.peers import PeerPolicy

__all__ = [
    "AlternateAddresses",
    "ClientKey",
    "ConnectOrder",
    "Credentials",
    "Guesses",
    "RelayFactory",
    "Reply",
    "TurnCore",
    "TurnCounters",
    "TurnPolicy",
]

ClientKey = tuple[str, Address, Address]
"""(transport, client address, server address): the 5-tuple an allocation belongs to."""

_OFFERED = PasswordAlgorithms(
    (
        PasswordAlgorithm(PasswordAlgorithmId.MD5),
        PasswordAlgorithm(PasswordAlgorithmId.SHA256),
    )
)
CONNECT_ALLOWANCE = 30.0
"""Time a Connect may take to reach the peer before the bind deadline runs."""
_FAMILY_VERSION = {AddressFamily.IPV4: 4, AddressFamily.IPV6: 6}


@dataclass(frozen=True, slots=True)
class AlternateAddresses:
    """Two IPs and two ports for NAT behaviour discovery (RFC 5780 §4.1, §7.2)."""

    ips: tuple[str, str]
    ports: tuple[int, int]

    def covers(self, local: Address) -> bool:
        return local[0] in self.ips and local[1] in self.ports

    def swap(self, local: Address, change_ip: bool, change_port: bool) -> Address:
        host, port = local
        if change_ip:
            host = self.ips[1] if host == self.ips[0] else self.ips[0]
        if change_port:
            port = self.ports[1] if port == self.ports[0] else self.ports[0]
        return host, port


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


@dataclass(frozen=True, slots=True)
class Credentials:
    """Keys for one USERNAME, looked up by the server before calling the core."""

    username: str
    key_md5: bytes
    key_sha256: bytes


@dataclass(frozen=True, slots=True)
class ConnectOrder:
    """Connect to ``peer`` from the TCP relay, then send ``Reply.data`` or ``failure``."""

    connection_id: int
    relay: Relay
    peer: Address
    failure: bytes
    """The 447 to send if the TCP connection cannot be made (RFC 6062 §5.2)."""


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    source: Address | None = None
    """Listener to send from when not the one the request came to (RFC 5780 CHANGE-REQUEST)."""
    destination: Address | None = None
    """Where to send when not back to the client's address (RFC 5780 RESPONSE-PORT)."""
    connect: ConnectOrder | None = None
    """Set for a Connect: the TCP connection the server must open first (RFC 6062)."""
    bind: int | None = None
    """Set for a ConnectionBind: after the reply this stream carries that connection's data."""


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


class Guesses(Protocol):
    """The guess throttle all protocols share (:class:`heron.guesses.GuessThrottle`), with
    the clock bound by the server: it counts in Unix time, the core in its own."""

    def wait(self, account: str | None, source: str) -> float:
        """Seconds before a guess for ``account`` from ``source`` may be checked."""

    def failure(self, account: str | None, source: str) -> None: ...

    def success(self, account: str, source: str) -> None: ...


class _NoGuesses:
    """No throttle: every guess is checked (unit tests that do not look at guessing)."""

    def wait(self, account: str | None, source: str) -> float:
        return 0.0

    def failure(self, account: str | None, source: str) -> None:
        pass

    def success(self, account: str, source: str) -> None:
        pass


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


@dataclass(frozen=True, slots=True)
class _Auth:
    username: str
    key: bytes | None
    account: str
    """The quota key: an account, or ``visitor <network>`` for anonymous credentials."""


class _Refusal(Exception):
    """A request answered with an error code (raised inside handlers only)."""

    def __init__(self, code: int, attributes: tuple[Attribute, ...] = ()) -> None:
        super().__init__(code)
        self.code = code
        self.attributes = attributes


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
        self.allocations: dict[ClientKey, Allocation] = {}
        self.counters = TurnCounters()
        self._relays = relays
        self._nonces = nonces
        self._peers = peers
        self._per_user: dict[str, int] = {}
        self._connection_ids = connection_ids or itertools.count(1).__next__
        """CONNECTION-ID generator (RFC 6062); the server passes a random one."""
        self._connections: dict[int, Allocation] = {}
        self._tcp_relays: dict[Relay, Allocation] = {}
        self._guesses: Guesses = guesses if guesses is not None else _NoGuesses()
        self._reservations: dict[bytes, tuple[str, float]] = {}
        """RESERVATION-TOKEN -> (quota key, until): a held port counts like an allocation."""
        self._handlers: dict[
            int, Callable[[Message, ClientKey, ClientLink, _Auth, float], tuple[Attribute, ...]]
        ] = {
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
            return self._binding(message, key)
        handler = self._handlers.get(message.method)
        if handler is None:
            return self._error(message, ErrorCode.BAD_REQUEST)
        auth = self._authenticate(message, key, credentials, account, now)
        if not isinstance(auth, _Auth):
            return auth
        if unknown:
            # RFC 8489 §6.3: unknown attributes are looked at once authentication is done,
            # so the 420 is signed like any other answer to an authenticated request.
            return self._error(
                message, ErrorCode.UNKNOWN_ATTRIBUTE, (UnknownAttributes(unknown),), auth.key
            )
        if message.method == Method.ALLOCATE:
            existing = self.allocations.get(key)
            if existing is not None and existing.transaction_id == message.transaction_id:
                return Reply(existing.success)  # a retransmission (RFC 8656 §7.2)
        try:
            attributes = handler(message, key, client, auth, now)
        except _Refusal as refusal:
            return self._error(message, refusal.code, refusal.attributes, auth.key)
        reply = self._encode(message.success_response(attributes), message, auth.key)
        if message.method == Method.ALLOCATE:
            self.allocations[key].success = reply.data
        elif message.method in (Method.CONNECT, Method.CONNECTION_BIND):
            return self._tcp_reply(message, key, auth, attributes, reply)
        return reply

    def channel_data(self, key: ClientKey, frame: bytes, now: float) -> None:
        """Client -> peer ChannelData (the hot path); dropped without an allocation."""
        allocation = self.allocations.get(key)
        if allocation is None:
            return
        if len(frame) < 4:
            allocation.traffic.dropped += 1
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
        if message.find(MessageIntegrity) is None and message.find(MessageIntegritySha256) is None:
            return False
        realm, nonce = message.find(Realm), message.find(Nonce)
        if realm is None or nonce is None or realm.value != self.policy.realm:
            return False
        if self._nonces.check(nonce.value, client_ip, now) is not NonceState.VALID:
            return False
        return self._guesses.wait(account, client_ip) <= 0

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
        """Drop expired allocations, permissions, channels and auth-failure records.

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
            for connection in list(allocation.connections.values()):
                if connection.bind_by is not None and connection.bind_by < now:
                    self.connection_closed(connection.id)
                    unbound.append(connection.id)
        for token in [t for t, (_, until) in self._reservations.items() if until < now]:
            self._count(self._reservations.pop(token)[0], -1)
        return unbound

    def traffic(self) -> TrafficCounters:
        """Relayed traffic of live and retired allocations together."""
        total = TrafficCounters(
            **{name: getattr(self.counters.retired, name) for name in TrafficCounters.__slots__}
        )
        for allocation in self.allocations.values():
            for name in TrafficCounters.__slots__:
                setattr(total, name, getattr(total, name) + getattr(allocation.traffic, name))
        return total

    def live(self) -> Iterator[tuple[ClientKey, Allocation]]:
        return iter(self.allocations.items())

    # --- authentication (RFC 8489 §9.2.4) ------------------------------------------

    def _authenticate(
        self,
        message: Message,
        client: ClientKey,
        credentials: Credentials | None,
        account: str | None,
        now: float,
    ) -> _Auth | Reply:
        client_ip = client[1][0]
        has_integrity = message.find(MessageIntegrity) or message.find(MessageIntegritySha256)
        username = message.find(Username)
        if not has_integrity:
            if self.policy.allow_anonymous and username is None:
                return _Auth("", None, self._visitor(client_ip))
            return self._challenge(message, client_ip, ErrorCode.UNAUTHORIZED, now)
        realm, nonce = message.find(Realm), message.find(Nonce)
        if username is None or realm is None or nonce is None:
            return self._error(message, ErrorCode.BAD_REQUEST)
        state = self._nonces.check(nonce.value, client_ip, now)
        if state is not NonceState.VALID:
            return self._challenge(message, client_ip, ErrorCode.STALE_NONCE, now)
        algorithm = self._password_algorithm(message, nonce.value)
        if algorithm is None:
            return self._error(message, ErrorCode.BAD_REQUEST)
        # The 5-tuple of an allocation this USERNAME made proved the password already
        # (an answer to a spoofed UDP source goes to its owner), so its Refreshes and
        # permissions skip the throttle's wait and need not prove it again.
        holder = self.allocations.get(client)
        proven = holder is not None and holder.username == username.value
        if not proven and self._guesses.wait(account, client_ip) > 0:
            # A guesser, or someone guessing this account: refuse unchecked, without a
            # nonce, so the client learns at once and does not retry in a loop (coturn's
            # uclient takes a 401 with a nonce as "try again").
            self.counters.auth_throttled += 1
            return self._error(message, ErrorCode.UNAUTHORIZED, reason="Too many failed attempts")
        key = None
        if (
            credentials is not None
            and credentials.username == username.value
            and realm.value == self.policy.realm
        ):
            key = (
                credentials.key_sha256
                if algorithm == PasswordAlgorithmId.SHA256
                else credentials.key_md5
            )
        if key is None or not message.verify_integrity(key):
            self.counters.auth_failures += 1
            self._guesses.failure(account, client_ip)
            return self._challenge(message, client_ip, ErrorCode.UNAUTHORIZED, now)
        if account is None:
            return _Auth(username.value, key, self._visitor(client_ip))
        if not proven:
            self._guesses.success(account, client_ip)
        return _Auth(username.value, key, account)

    @staticmethod
    def _visitor(client_ip: str) -> str:
        """The quota key of anonymous credentials: the visitor's network."""
        return "visitor " + network_key(client_ip)

    def _password_algorithm(self, message: Message, nonce: str) -> int | None:
        """The agreed algorithm, or None for a downgrade attempt (RFC 8489 §9.2.4)."""
        chosen = message.find(PasswordAlgorithm)
        offered = message.find(PasswordAlgorithms)
        if not NonceIssuer.offers_password_algorithms(nonce) or (
            chosen is None and offered is None
        ):
            return PasswordAlgorithmId.MD5
        if chosen is None or offered != _OFFERED or chosen not in _OFFERED.algorithms:
            return None
        return chosen.algorithm

    def _challenge(self, message: Message, client_ip: str, code: int, now: float) -> Reply:
        nonce = self._nonces.issue(client_ip, now)
        attributes = (
            Realm(self.policy.realm),
            Nonce(nonce),
            _OFFERED,
            Software(self.policy.software),
        )
        return self._error(message, code, attributes)

    # --- methods --------------------------------------------------------------------

    def _binding(self, message: Message, key: ClientKey) -> Reply:
        """RFC 8489 §7.3.1, with RFC 5780 §6.1 when a second address is configured."""
        host, port = key[1]
        attributes: list[Attribute] = [XorMappedAddress(ip_address(host), port)]
        change = message.find(ChangeRequest)
        response_port = message.find(ResponsePort)
        alternate = self.policy.alternate
        local = key[2]
        if alternate is None or key[0] != "udp" or not alternate.covers(local):
            # RFC 5780 §6.1: without a second address these attributes are unknown.
            unknown = [a.TYPE for a in (change, response_port) if a is not None]
            if unknown:
                return self._error(
                    message, ErrorCode.UNKNOWN_ATTRIBUTE, (UnknownAttributes(tuple(unknown)),)
                )
            attributes.append(Software(self.policy.software))
            return self._encode(message.success_response(attributes), message, None)
        if response_port is not None and message.find(Padding) is not None:
            return self._error(message, ErrorCode.BAD_REQUEST)  # RFC 5780 §6.1
        # RFC 5780 §6.1: MAPPED-ADDRESS as well, for RFC 3489 discovery clients.
        attributes.append(MappedAddress(ip_address(host), port))
        source = local
        if change is not None:
            source = alternate.swap(local, change.change_ip, change.change_port)
        other = alternate.swap(local, True, True)
        attributes += [
            ResponseOrigin(ip_address(source[0]), source[1]),
            OtherAddress(ip_address(other[0]), other[1]),
            Software(self.policy.software),
        ]
        reply = self._encode(message.success_response(attributes), message, None)
        destination = (host, response_port.port) if response_port is not None else None
        return Reply(reply.data, source if source != local else None, destination)

    def _allocate(
        self, message: Message, key: ClientKey, client: ClientLink, auth: _Auth, now: float
    ) -> tuple[Attribute, ...]:
        if key in self.allocations:
            raise _Refusal(ErrorCode.ALLOCATION_MISMATCH)
        transport = message.find(RequestedTransport)
        if transport is None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        tcp = transport.protocol == TransportProtocol.TCP
        if not tcp and transport.protocol != TransportProtocol.UDP:
            raise _Refusal(ErrorCode.UNSUPPORTED_TRANSPORT_PROTOCOL)
        even = message.find(EvenPort)
        token = message.find(ReservationToken)
        requested = message.find(RequestedAddressFamily)
        additional = message.find(AdditionalAddressFamily)
        # RFC 8656 §7.2 steps 5 and 8: a token stands alone; a reservation cannot be dual.
        if token is not None and (
            even is not None or requested is not None or additional is not None
        ):
            raise _Refusal(ErrorCode.BAD_REQUEST)
        if even is not None and even.reserve and additional is not None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        if requested is not None and additional is not None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        if additional is not None and additional.family != AddressFamily.IPV6:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        # RFC 6062 §5.1: TCP relaying only for clients on TCP or TLS; it has no
        # port pairs, reservations or DF, and one family.
        if tcp and (
            key[0] == "udp"
            or any(
                message.find(kind) is not None
                for kind in (EvenPort, ReservationToken, DontFragment, AdditionalAddressFamily)
            )
        ):
            raise _Refusal(ErrorCode.BAD_REQUEST)
        versions = [_FAMILY_VERSION[requested.family]] if requested is not None else [4]
        if versions[0] not in self._relays.versions:
            raise _Refusal(ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED)
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
        if token is not None and (held := self._reservations.pop(token.value, None)):
            self._count(held[0], -1)  # the reserved port becomes this allocation
        self._check_quota(auth.account)
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
        )
        self.allocations[key] = allocation
        if tcp:
            self._tcp_relays[relays[versions[0]]] = allocation
        for relay in relays.values():
            relay.attach(allocation.deliver)
        self._count(auth.account, 1)
        if reservation is not None:
            self._reservations[reservation] = (auth.account, now + RESERVATION_LIFETIME)
            self._count(auth.account, 1)
        self.counters.allocations_created += 1
        relayed = [
            XorRelayedAddress(ip_address(r.address[0]), r.address[1]) for r in relays.values()
        ]
        host, port = key[1]
        attributes: list[Attribute] = [*relayed, Lifetime(lifetime), *extra]
        if reservation is not None:
            attributes.append(ReservationToken(reservation))
        attributes += [XorMappedAddress(ip_address(host), port), Software(self.policy.software)]
        return tuple(attributes)

    def _check_quota(self, account: str) -> None:
        policy = self.policy
        if policy.total_quota and len(self.allocations) >= policy.total_quota:
            raise _Refusal(ErrorCode.ALLOCATION_QUOTA_REACHED)
        if policy.user_quota and self._per_user.get(account, 0) >= policy.user_quota:
            raise _Refusal(ErrorCode.ALLOCATION_QUOTA_REACHED)

    def _count(self, account: str, change: int) -> None:
        """Allocations and reserved ports held by ``account``."""
        held = self._per_user.get(account, 0) + change
        if held > 0:
            self._per_user[account] = held
        else:
            self._per_user.pop(account, None)

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
                raise _Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
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
                raise _Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
            relays[version], reservation = opened
        return relays, reservation

    def _open_tcp_relay(self, version: int) -> dict[int, Relay]:
        relay = self._relays.open_tcp(version)
        if relay is None:
            raise _Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
        return {version: relay}

    def _lifetime(self, message: Message) -> int:
        """RFC 8656 §7.2: at least the default, at most the maximum."""
        asked = message.find(Lifetime)
        if asked is None:
            return self.policy.default_lifetime
        return min(max(asked.value, self.policy.default_lifetime), self.policy.max_lifetime)

    def _refresh(
        self, message: Message, key: ClientKey, client: ClientLink, auth: _Auth, now: float
    ) -> tuple[Attribute, ...]:
        allocation = self._owned(key, auth)
        family = message.find(RequestedAddressFamily)
        if family is not None and _FAMILY_VERSION[family.family] not in allocation.relays:
            raise _Refusal(ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH)
        asked = message.find(Lifetime)
        if asked is not None and asked.value == 0:
            self._delete(key, allocation)
            return (Lifetime(0),)
        lifetime = self._lifetime(message)
        allocation.expires = now + lifetime
        return (Lifetime(lifetime),)

    def _create_permission(
        self, message: Message, key: ClientKey, client: ClientLink, auth: _Auth, now: float
    ) -> tuple[Attribute, ...]:
        allocation = self._owned(key, auth)
        peers = message.find_all(XorPeerAddress)
        if not peers:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        hosts = [self._permitted_peer(allocation, peer) for peer in peers]
        new = {h for h in hosts if h not in allocation.permissions}
        if len(allocation.permissions) + len(new) > self.policy.max_permissions:
            raise _Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
        for host in hosts:
            allocation.permit(host, now)
        return ()

    def _channel_bind(
        self, message: Message, key: ClientKey, client: ClientLink, auth: _Auth, now: float
    ) -> tuple[Attribute, ...]:
        allocation = self._owned(key, auth)
        number, peer = message.find(ChannelNumber), message.find(XorPeerAddress)
        if number is None or peer is None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        host = self._permitted_peer(allocation, peer, peer.port)
        address = (host, peer.port)
        bound = allocation.channels.get(number.number)
        by_peer = allocation.peers.get(address)
        # RFC 8656 §12.2: a channel is bound to one peer and a peer to one channel.
        if (bound is not None and bound.peer != address) or (
            by_peer is not None and by_peer.number != number.number
        ):
            raise _Refusal(ErrorCode.BAD_REQUEST)
        if host not in allocation.permissions and (
            len(allocation.permissions) >= self.policy.max_permissions
        ):
            raise _Refusal(ErrorCode.INSUFFICIENT_CAPACITY)
        allocation.bind_channel(number.number, address, now)
        allocation.permit(host, now)
        return ()

    # --- TCP relaying (RFC 6062) ---------------------------------------------------

    def _connect(
        self, message: Message, key: ClientKey, client: ClientLink, auth: _Auth, now: float
    ) -> tuple[Attribute, ...]:
        """RFC 6062 §5.2: check, then let the server open the TCP connection."""
        allocation = self._owned(key, auth)
        peer = message.find(XorPeerAddress)
        if not allocation.tcp or peer is None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        host = self._permitted_peer(allocation, peer, peer.port)
        address = (host, peer.port)
        if any(c.peer == address for c in allocation.connections.values()):
            raise _Refusal(ErrorCode.CONNECTION_ALREADY_EXISTS)
        if len(allocation.connections) >= self.policy.max_connections or (
            host not in allocation.permissions
            and len(allocation.permissions) >= self.policy.max_permissions
        ):
            raise _Refusal(ErrorCode.FORBIDDEN)  # RFC 6062 §5.2: local policy
        # The bind deadline starts once the TCP connection is up (``connected``);
        # until then it covers the connection attempt too.
        connection = self._new_connection(allocation, address, now + CONNECT_ALLOWANCE)
        allocation.permit(host, now)
        return (ConnectionId(connection),)

    def _connection_bind(
        self, message: Message, key: ClientKey, client: ClientLink, auth: _Auth, now: float
    ) -> tuple[Attribute, ...]:
        """RFC 6062 §5.4: a new client connection takes over one peer connection's data."""
        wanted = message.find(ConnectionId)
        if key[0] == "udp" or key in self.allocations or wanted is None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        allocation = self._connections.get(wanted.value)
        connection = None if allocation is None else allocation.connections.get(wanted.value)
        if allocation is None or connection is None or connection.bind_by is None:
            raise _Refusal(ErrorCode.BAD_REQUEST)
        if allocation.username != auth.username:
            raise _Refusal(ErrorCode.WRONG_CREDENTIALS)
        connection.bind_by = None
        return ()

    def _tcp_reply(
        self,
        message: Message,
        key: ClientKey,
        auth: _Auth,
        attributes: tuple[Attribute, ...],
        reply: Reply,
    ) -> Reply:
        if message.method == Method.CONNECTION_BIND:
            wanted = message.find(ConnectionId)
            assert wanted is not None
            return Reply(reply.data, bind=wanted.value)
        connection_id = next(a.value for a in attributes if isinstance(a, ConnectionId))
        allocation = self._connections[connection_id]
        failure = self._error(message, ErrorCode.CONNECTION_TIMEOUT_OR_FAILURE, key=auth.key).data
        relay = next(iter(allocation.relays.values()))
        peer = allocation.connections[connection_id].peer
        order = ConnectOrder(connection_id, relay, peer, failure)
        return Reply(reply.data, connect=order)

    def peer_connected(self, relay: Relay, peer: Address, now: float) -> int | None:
        """A peer connected to a TCP relay: its id, after telling the client (§5.3).

        None, and the server closes the connection, without a permission.
        """
        allocation = self._tcp_relays.get(relay)
        if allocation is None or allocation.permissions.get(peer[0], 0.0) < now:
            return None
        if len(allocation.connections) >= self.policy.max_connections:
            return None
        connection = self._new_connection(allocation, peer, now)
        attempt = Message(
            Method.CONNECTION_ATTEMPT,
            MessageClass.INDICATION,
            connection.to_bytes(4, "big") + bytes(8),
            (XorPeerAddress(ip_address(peer[0]), peer[1]), ConnectionId(connection)),
        )
        allocation.client.send(attempt.encode())
        return connection

    def connected(self, connection: int, now: float) -> bool:
        """The server's connection to the peer is up: the client has 30 s to bind (§5.2).

        False if the connection was forgotten meanwhile (allocation gone).
        """
        allocation = self._connections.get(connection)
        if allocation is None:
            return False
        allocation.connections[connection].bind_by = now + CONNECTION_BIND_TIMEOUT
        return True

    def connection_closed(self, connection: int) -> None:
        """Either side of a peer connection closed, or the connection failed."""
        allocation = self._connections.pop(connection, None)
        if allocation is not None:
            allocation.connections.pop(connection, None)

    def _new_connection(self, allocation: Allocation, peer: Address, now: float) -> int:
        connection = self._connection_ids()
        while connection in self._connections:
            connection = self._connection_ids()
        allocation.connections[connection] = PeerConnection(
            connection, peer, now + CONNECTION_BIND_TIMEOUT
        )
        self._connections[connection] = allocation
        return connection

    def _send(self, message: Message, key: ClientKey, now: float) -> None:
        allocation = self.allocations.get(key)
        peer, data = message.find(XorPeerAddress), message.find(Data)
        if allocation is None or peer is None or data is None:
            return
        if peer.port in self._peers.own_ports and self._peers.is_own_service(
            peer.address, peer.port
        ):
            allocation.traffic.dropped += 1
            return
        allocation.send_indication((str(peer.address), peer.port), data.value, now)

    # --- helpers -------------------------------------------------------------------

    def _owned(self, key: ClientKey, auth: _Auth) -> Allocation:
        """The 5-tuple's allocation, made by the same user (RFC 8656 §5: else 441)."""
        allocation = self.allocations.get(key)
        if allocation is None:
            raise _Refusal(ErrorCode.ALLOCATION_MISMATCH)
        if allocation.username != auth.username:
            raise _Refusal(ErrorCode.WRONG_CREDENTIALS)
        return allocation

    def _permitted_peer(
        self, allocation: Allocation, peer: XorPeerAddress, port: int | None = None
    ) -> str:
        """The peer's host, if relaying to it is allowed; ``port`` when one is named."""
        if peer.address.version not in allocation.relays:
            raise _Refusal(ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH)
        if not self._peers.permits(peer.address):
            raise _Refusal(ErrorCode.FORBIDDEN)
        if port is not None and self._peers.is_own_service(peer.address, port):
            raise _Refusal(ErrorCode.FORBIDDEN)
        return str(peer.address)

    def _delete(self, key: ClientKey, allocation: Allocation) -> None:
        del self.allocations[key]
        for connection in list(allocation.connections):
            self.connection_closed(connection)
        for relay in allocation.relays.values():
            self._tcp_relays.pop(relay, None)
        allocation.close()
        self._count(allocation.account, -1)
        retired = self.counters.retired
        for name in TrafficCounters.__slots__:
            setattr(retired, name, getattr(retired, name) + getattr(allocation.traffic, name))

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
        return self._encode(response, message, key)

    @staticmethod
    def _encode(response: Message, request: Message, key: bytes | None) -> Reply:
        """Sign as the request was signed; fingerprint if it was (RFC 8489 §9.2.4, §7.3)."""
        fingerprint = request.find(Fingerprint) is not None
        if key is None:
            return Reply(response.encode(fingerprint=fingerprint))
        return Reply(response.encode(key, integrity=request.integrity, fingerprint=fingerprint))
