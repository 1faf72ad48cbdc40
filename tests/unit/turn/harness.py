"""In-memory fakes and a TURN client that drive ``TurnCore`` without sockets or a clock.

``Turn`` wires a core to a ``FakeRelayFactory`` and a user table (what the
server's key lookup would return), and holds the injected time ``now``.
``TurnClient`` speaks for one 5-tuple: it builds requests, does the
401 -> authenticated retry of RFC 8489 §9.2 with the long-term key
(MD5 or SHA-256 of ``user:realm:password``), and decodes what comes back.
Data the core relays appears on ``FakeRelay.sent`` (towards peers) and
``FakeClient.sent`` (towards the client).

TCP relaying (RFC 6062) uses the same pieces: ``FakeRelayFactory.open_tcp``
hands out relays marked ``transport="tcp"``, a client made with
``transport="tcp"`` or ``"tls"`` speaks for a stream 5-tuple, and
``TurnClient.reply`` keeps the whole ``Reply`` so a test can read the
``ConnectOrder`` or bound connection id the server would act on.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address

from heron.guesses import GuessThrottle
from heron.stun import (
    Attribute,
    ChannelData,
    ChannelNumber,
    ConnectionId,
    Data,
    ErrorCodeAttribute,
    Integrity,
    Lifetime,
    Message,
    MessageClass,
    Method,
    Nonce,
    PasswordAlgorithm,
    PasswordAlgorithmId,
    PasswordAlgorithms,
    Realm,
    RequestedTransport,
    TransportProtocol,
    Username,
    XorPeerAddress,
)
from heron.turn.allocation import Address, ClientKey
from heron.turn.auth import Credentials
from heron.turn.core import TurnCore, TurnPolicy
from heron.turn.nonce import NonceIssuer
from heron.turn.peers import PeerPolicy
from heron.turn.replies import Reply

REALM = "heron.test"
T0 = 1_000_000.0
"""The injected clock starts here (a monotonic clock is never near zero)."""
SERVER: Address = ("192.0.2.1", 3478)
RELAY_HOSTS = {4: "192.0.2.1", 6: "2001:db8::1"}
PEER: Address = ("198.51.100.7", 5000)
PEER_2: Address = ("203.0.113.9", 6000)
PEER_6: Address = ("2001:db8:1::7", 5000)
PASSWORDS = {"alice": "wonderland", "bob": "builder"}


def long_term_key(username: str, realm: str, password: str, sha256: bool = False) -> bytes:
    """RFC 8489 §9.2.2: the hash of ``username:realm:password``."""
    text = f"{username}:{realm}:{password}".encode()
    return (hashlib.sha256 if sha256 else hashlib.md5)(text).digest()


def credentials(username: str, password: str, realm: str = REALM) -> Credentials:
    return Credentials(
        username,
        long_term_key(username, realm, password),
        long_term_key(username, realm, password, sha256=True),
    )


def error_code(reply: Message | None) -> int | None:
    """The ERROR-CODE of a reply, or None for a success (or no reply at all)."""
    error = None if reply is None else reply.find(ErrorCodeAttribute)
    return None if error is None else error.code


def peer_attribute(peer: Address) -> XorPeerAddress:
    return XorPeerAddress(ip_address(peer[0]), peer[1])


# --- fakes -------------------------------------------------------------------------------


class FakeRelay:
    """A relay socket: records what the core sends; ``from_peer`` plays a peer's datagram.

    ``transport`` is "udp", or "tcp" for the listening relay of an RFC 6062 allocation.
    """

    def __init__(self, address: Address, transport: str = "udp") -> None:
        self.address = address
        self.transport = transport
        self.sent: list[tuple[bytes, Address]] = []
        self.closed = False
        self._deliver: Callable[[bytes, Address, float], None] | None = None

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        self._deliver = deliver

    def send(self, data: bytes, peer: Address) -> None:
        assert not self.closed, "the core sent through a closed relay"
        self.sent.append((data, peer))

    def close(self) -> None:
        self.closed = True

    def from_peer(self, data: bytes, peer: Address, now: float) -> None:
        """A datagram from ``peer`` reaches the relay (a closed socket receives nothing)."""
        assert self._deliver is not None, "relay never attached to an allocation"
        if not self.closed:
            self._deliver(data, peer, now)


class FakeRelayFactory:
    """Hands out relays on consecutive ports, starting odd so "any port" is not even by luck."""

    def __init__(self, versions: Iterable[int] = (4,)) -> None:
        self.versions = frozenset(versions)
        self.full: set[int] = set()
        """IP versions for which ``open`` and ``open_tcp`` answer None: a server out of ports."""
        self.opened: list[FakeRelay] = []
        self.reserved: dict[bytes, FakeRelay] = {}
        self.calls: list[tuple[int, bool, bool]] = []
        self.dont_fragment: list[bool] = []
        self.tcp_calls: list[int] = []
        """IP versions ``open_tcp`` was asked for, in order."""
        self._ports = itertools.count(49153)
        self._tokens = itertools.count(1)

    def open(
        self, version: int, *, even_port: bool, reserve_next: bool, dont_fragment: bool
    ) -> tuple[FakeRelay, bytes | None] | None:
        self.calls.append((version, even_port, reserve_next))
        self.dont_fragment.append(dont_fragment)
        if version in self.full or version not in self.versions:
            return None
        port = next(self._ports)
        if even_port and port % 2:
            port = next(self._ports)
        relay = FakeRelay((RELAY_HOSTS[version], port))
        self.opened.append(relay)
        if not reserve_next:
            return relay, None
        next(self._ports)  # port + 1 is held for the token
        token = next(self._tokens).to_bytes(8, "big")
        self.reserved[token] = FakeRelay((RELAY_HOSTS[version], port + 1))
        return relay, token

    def open_tcp(self, version: int) -> FakeRelay | None:
        """A listening TCP relay (RFC 6062); None when ``version`` is full or not served."""
        self.tcp_calls.append(version)
        if version in self.full or version not in self.versions:
            return None
        relay = FakeRelay((RELAY_HOSTS[version], next(self._ports)), transport="tcp")
        self.opened.append(relay)
        return relay

    def claim(self, token: bytes) -> FakeRelay | None:
        relay = self.reserved.pop(token, None)
        if relay is not None:
            self.opened.append(relay)
        return relay

    def live(self) -> list[FakeRelay]:
        return [relay for relay in self.opened if not relay.closed]


@dataclass
class FakeClient:
    """The way back to the client (``ClientLink``): UDP, or a TCP/TLS stream."""

    stream: bool = False
    sent: list[bytes] = field(default_factory=list)

    def send(self, data: bytes) -> None:
        self.sent.append(data)


# --- the server side ---------------------------------------------------------------------


class ClockedGuesses:
    """A real ``GuessThrottle`` as the core's ``Guesses``, on the harness's injected clock."""

    def __init__(self, turn: Turn, throttle: GuessThrottle) -> None:
        self.turn = turn
        self.throttle = throttle

    def wait(self, account: str | None, source: str) -> float:
        return self.throttle.wait(account, source, self.turn.now)

    def failure(self, account: str | None, source: str) -> None:
        self.throttle.failure(account, source, self.turn.now)

    def success(self, account: str, source: str) -> None:
        self.throttle.success(account, source, self.turn.now)


class Turn:
    """A ``TurnCore`` with fakes around it and the time as a plain attribute."""

    def __init__(
        self,
        *,
        versions: Iterable[int] = (4,),
        peers: PeerPolicy | None = None,
        nonce_lifetime: float = 600.0,
        connection_ids: Callable[[], int] | None = None,
        guesses: GuessThrottle | None = None,
        **policy: object,
    ) -> None:
        """``guesses``: a throttle the core reports guesses to (none by default)."""
        self.now = T0
        self.policy = TurnPolicy(realm=REALM, **policy)  # type: ignore[arg-type]
        self.relays = FakeRelayFactory(versions)
        self.nonces = NonceIssuer(b"nonce-secret-for-tests-0123456789", nonce_lifetime)
        self.guesses = guesses
        self.core = TurnCore(
            self.policy,
            self.relays,
            self.nonces,
            peers or PeerPolicy(),
            connection_ids,
            None if guesses is None else ClockedGuesses(self, guesses),
        )
        self.users = {name: credentials(name, password) for name, password in PASSWORDS.items()}
        self.lookup: Callable[[str], Credentials | None] = self.users.get
        """USERNAME -> keys, as the server's ``TurnKeys`` answers; tests may replace it."""
        self.account: Callable[[str], str | None] = lambda name: name.rpartition(":")[2]
        """USERNAME -> the account it names (``turn_account`` in the server): a REST
        name's user part; tests may replace it."""
        self._hosts = itertools.count(100)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def expire(self) -> list[int]:
        """Run the core's sweep; the unbound TCP peer connections it gave up (RFC 6062)."""
        return self.core.expire(self.now)

    def client(
        self,
        username: str = "alice",
        password: str | None = None,
        *,
        address: Address | None = None,
        transport: str = "udp",
        sha256: bool = False,
        fingerprint: bool = False,
    ) -> TurnClient:
        if address is None:
            address = (f"192.0.2.{next(self._hosts)}", 40000)
        if password is None:
            password = PASSWORDS.get(username, "unknown")
        return TurnClient(
            self, address, username, password, transport, sha256=sha256, fingerprint=fingerprint
        )

    def handle(self, data: bytes, key: ClientKey, client: FakeClient) -> bytes | None:
        """What the server does with a STUN datagram: decode, look up keys, call the core."""
        reply = self.handle_reply(data, key, client)
        return None if reply is None else reply.data

    def handle_reply(self, data: bytes, key: ClientKey, client: FakeClient) -> Reply | None:
        """As :meth:`handle`, but the whole ``Reply`` (RFC 6062 ``connect`` and ``bind``)."""
        message = Message.decode(data)
        username = message.find(Username)
        if username is None:
            return self.core.handle(message, key, client, None, self.now)
        found = self.lookup(username.value)
        account = self.account(username.value)
        return self.core.handle(message, key, client, found, self.now, account)


# --- the client side ---------------------------------------------------------------------


class TurnClient:
    """One client 5-tuple: builds, signs and sends requests; decodes replies."""

    def __init__(
        self,
        turn: Turn,
        address: Address,
        username: str,
        password: str,
        transport: str,
        *,
        sha256: bool,
        fingerprint: bool,
    ) -> None:
        self.turn = turn
        self.address = address
        self.key: ClientKey = (transport, address, SERVER)
        self.link = FakeClient(stream=transport != "udp")
        self.username = username
        self.password = password
        self.sha256 = sha256
        self.fingerprint = fingerprint
        self.nonce: str | None = None
        self.offered: PasswordAlgorithms | None = None
        self.last: bytes | None = None
        """The bytes of the last reply, for byte-exact comparisons."""
        self.reply: Reply | None = None
        """The last ``Reply`` whole: its ``connect`` order or ``bind`` id (RFC 6062)."""
        self._serial = itertools.count(1)

    # --- keys and wire ---------------------------------------------------------------

    @property
    def long_term_key(self) -> bytes:
        return long_term_key(self.username, REALM, self.password, self.sha256)

    def transaction_id(self) -> bytes:
        seed = f"{self.key}/{next(self._serial)}".encode()
        return hashlib.sha256(seed).digest()[:12]

    def build(
        self,
        method: int,
        attributes: Iterable[Attribute] = (),
        *,
        transaction_id: bytes | None = None,
        sign: bool = True,
        message_class: MessageClass = MessageClass.REQUEST,
    ) -> bytes:
        """The request on the wire; signed with the long-term key if ``sign``."""
        attrs = list(attributes)
        tid = transaction_id or self.transaction_id()
        if not sign:
            message = Message(method, message_class, tid, tuple(attrs))
            return message.encode(fingerprint=self.fingerprint)
        assert self.nonce is not None, "no nonce yet: send an unsigned request first"
        attrs += [Username(self.username), Realm(REALM), Nonce(self.nonce)]
        if self.sha256:
            assert self.offered is not None
            attrs += [self.offered, PasswordAlgorithm(PasswordAlgorithmId.SHA256)]
        integrity = Integrity.SHA256 if self.sha256 else Integrity.SHA1
        message = Message(method, message_class, tid, tuple(attrs))
        return message.encode(self.long_term_key, integrity=integrity, fingerprint=self.fingerprint)

    def send_raw(self, data: bytes) -> Message | None:
        """Hand bytes to the server; the decoded reply, if any."""
        self.reply = self.turn.handle_reply(data, self.key, self.link)
        self.last = None if self.reply is None else self.reply.data
        return None if self.last is None else Message.decode(self.last)

    def learn(self, reply: Message | None) -> None:
        """Take NONCE and PASSWORD-ALGORITHMS from a 401 or 438 (RFC 8489 §9.2.5)."""
        assert reply is not None
        nonce = reply.find(Nonce)
        assert nonce is not None, f"no NONCE in {reply}"
        self.nonce = nonce.value
        self.offered = reply.find(PasswordAlgorithms)

    def request(
        self,
        method: int,
        *attributes: Attribute,
        transaction_id: bytes | None = None,
        sign: bool = True,
        retry_stale: bool = True,
    ) -> Message:
        """Send a request; without a nonce yet, first get the 401 challenge that gives one."""
        if sign and self.nonce is None:
            challenge = self.send_raw(self.build(method, attributes, sign=False))
            assert error_code(challenge) == 401, challenge
            self.learn(challenge)
        build = self.build
        reply = self.send_raw(build(method, attributes, transaction_id=transaction_id, sign=sign))
        if sign and retry_stale and error_code(reply) == 438:
            self.learn(reply)
            data = build(method, attributes, transaction_id=transaction_id, sign=sign)
            reply = self.send_raw(data)
        assert reply is not None
        return reply

    # --- TURN methods ------------------------------------------------------------------

    def allocate(self, *extra: Attribute, lifetime: int | None = None, **kw: object) -> Message:
        attributes: list[Attribute] = [RequestedTransport()]
        if lifetime is not None:
            attributes.append(Lifetime(lifetime))
        return self.request(Method.ALLOCATE, *attributes, *extra, **kw)  # type: ignore[arg-type]

    def refresh(self, lifetime: int | None = None, *extra: Attribute) -> Message:
        attributes = [] if lifetime is None else [Lifetime(lifetime)]
        return self.request(Method.REFRESH, *attributes, *extra)

    def allocate_tcp(self, *extra: Attribute, **kw: object) -> Message:
        """Allocate with REQUESTED-TRANSPORT TCP (RFC 6062 §4.1)."""
        transport = RequestedTransport(TransportProtocol.TCP)
        return self.request(Method.ALLOCATE, transport, *extra, **kw)  # type: ignore[arg-type]

    def connect(self, peer: Address) -> Message:
        """Connect to ``peer`` through the TCP relay (RFC 6062 §4.3).

        Like the server, report the TCP connection as made at once when the
        core orders one, which starts the 30 s bind deadline.
        """
        answer = self.request(Method.CONNECT, peer_attribute(peer))
        order = self.reply.connect if self.reply is not None else None
        if order is not None:
            assert self.turn.core.connected(order.connection_id, self.turn.now)
        return answer

    def connection_bind(self, connection: int) -> Message:
        """Make this 5-tuple the data connection for ``connection`` (RFC 6062 §4.4)."""
        return self.request(Method.CONNECTION_BIND, ConnectionId(connection))

    def permit(self, *peers: Address) -> Message:
        return self.request(Method.CREATE_PERMISSION, *(peer_attribute(p) for p in peers))

    def bind(self, number: int, peer: Address) -> Message:
        return self.request(Method.CHANNEL_BIND, ChannelNumber(number), peer_attribute(peer))

    def send_indication(self, peer: Address, data: bytes) -> None:
        attributes = (peer_attribute(peer), Data(data))
        wire = self.build(
            Method.SEND, attributes, sign=False, message_class=MessageClass.INDICATION
        )
        assert self.send_raw(wire) is None, "indications are never answered"

    def channel_data(self, number: int, data: bytes) -> None:
        frame = ChannelData(number, data).encode(stream=self.link.stream)
        self.turn.core.channel_data(self.key, frame, self.turn.now)

    def channel_frame(self, frame: bytes) -> None:
        self.turn.core.channel_data(self.key, frame, self.turn.now)

    # --- what came back ------------------------------------------------------------------

    def received(self) -> list[bytes]:
        """Relayed frames sent to this client (Data indications and ChannelData)."""
        return self.link.sent

    def data_indications(self) -> list[tuple[Address, bytes]]:
        """(peer, data) of every Data indication received."""
        found = []
        for frame in self.link.sent:
            message = Message.decode(frame)
            assert (message.method, message.message_class) == (
                Method.DATA,
                MessageClass.INDICATION,
            )
            peer, data = message.find(XorPeerAddress), message.find(Data)
            assert peer is not None and data is not None
            found.append(((str(peer.address), peer.port), data.value))
        return found


def channel_header(number: int, length: int) -> bytes:
    return struct.pack("!HH", number, length)
