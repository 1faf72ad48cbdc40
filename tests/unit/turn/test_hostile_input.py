"""Hypothesis: hostile bytes and messages never break the core or another client's allocation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from heron.stun import (
    AdditionalAddressFamily,
    AddressFamily,
    AttributeType,
    ChangeRequest,
    ChannelNumber,
    Data,
    DontFragment,
    EvenPort,
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
    RequestedAddressFamily,
    RequestedTransport,
    ReservationToken,
    StunError,
    UnknownAttribute,
    Username,
    XorPeerAddress,
)
from tests.unit.turn.harness import (
    PEER,
    PEER_2,
    REALM,
    Turn,
    TurnClient,
    long_term_key,
    peer_attribute,
)

OFFERED = PasswordAlgorithms(
    (PasswordAlgorithm(PasswordAlgorithmId.MD5), PasswordAlgorithm(PasswordAlgorithmId.SHA256))
)
KNOWN_TYPES = set(AttributeType)

peer_addresses = st.one_of(
    st.sampled_from([peer_attribute(PEER), peer_attribute(PEER_2)]),
    st.builds(XorPeerAddress, st.ip_addresses(), st.integers(0, 0xFFFF)),
)
turn_attributes = st.one_of(
    peer_addresses,
    st.builds(ChannelNumber, st.integers(0x4000, 0x7FFF)),
    st.builds(Lifetime, st.sampled_from([0, 1, 600, 3600, 2**32 - 1])),
    st.builds(RequestedTransport, st.sampled_from([17, 17, 6, 0, 255])),
    st.builds(EvenPort, st.booleans()),
    st.builds(ReservationToken, st.binary(min_size=8, max_size=8)),
    st.builds(RequestedAddressFamily, st.sampled_from(AddressFamily)),
    st.just(AdditionalAddressFamily()),
    st.just(DontFragment()),
    st.builds(Data, st.binary(max_size=64)),
    st.builds(ChangeRequest, st.booleans(), st.booleans()),
    st.builds(
        UnknownAttribute,
        st.integers(0, 0xFFFF).filter(lambda t: t not in KNOWN_TYPES),
        st.binary(max_size=16),
    ),
)
auth_noise = st.one_of(
    st.builds(Username, st.sampled_from(["alice", "bob", ""]) | st.text(max_size=20)),
    st.builds(Realm, st.sampled_from([REALM, "elsewhere"])),
    st.builds(Nonce, st.text(max_size=40)),
    st.builds(PasswordAlgorithm, st.integers(0, 3)),
    st.just(OFFERED),
)
attribute_lists = st.tuples(
    st.lists(turn_attributes, max_size=6),
    st.lists(auth_noise, max_size=1) | st.just([]),
).map(lambda parts: tuple(parts[0] + parts[1]))
TURN_METHODS = [
    Method.ALLOCATE, Method.REFRESH, Method.CREATE_PERMISSION, Method.CHANNEL_BIND, Method.SEND,
]  # fmt: skip
methods = st.sampled_from(TURN_METHODS) | st.sampled_from(list(Method)) | st.integers(0, 0xFFF)
classes = st.sampled_from([MessageClass.REQUEST] * 3 + [MessageClass.INDICATION]) | st.sampled_from(
    MessageClass
)


@dataclass(frozen=True)
class Hostile:
    method: int
    message_class: MessageClass
    transaction_id: bytes
    attributes: tuple[object, ...]
    signer: str
    """"none"; "bob", the attacker's own valid key; or "alice", a forged one."""
    fingerprint: bool
    flip: int | None
    """Flip one byte of the encoded message at this offset (mod its length)."""


hostiles = st.builds(
    Hostile,
    methods,
    classes,
    st.binary(min_size=12, max_size=12),
    attribute_lists,
    st.sampled_from(["bob", "bob", "none", "alice"]),
    st.booleans(),
    st.one_of(st.just(None), st.just(None), st.just(None), st.integers(0, 10_000)),
)


def encode(hostile: Hostile, attacker: TurnClient, turn: Turn) -> bytes:
    attrs = list(hostile.attributes)
    key = None
    if hostile.signer != "none":
        nonce = turn.nonces.issue(attacker.address[0], turn.now)
        attrs += [Username(hostile.signer), Realm(REALM), Nonce(nonce)]
        key = long_term_key(hostile.signer, REALM, "builder")  # bob's password
    message = Message(hostile.method, hostile.message_class, hostile.transaction_id, tuple(attrs))  # type: ignore[arg-type]
    data = bytearray(message.encode(key, integrity=Integrity.SHA1, fingerprint=hostile.fingerprint))
    if hostile.flip is not None:
        data[hostile.flip % len(data)] ^= 0xFF
    return bytes(data)


def feed(turn: Turn, client: TurnClient, data: bytes) -> None:
    """What the server does with a datagram; only the STUN error tree may come out of decode."""
    try:
        message = Message.decode(data)
    except StunError:
        return
    reply = turn.handle(data, client.key, client.link)
    if reply is not None:
        answer = Message.decode(reply)
        assert message.message_class is MessageClass.REQUEST
        assert answer.transaction_id == message.transaction_id
        assert answer.message_class in (
            MessageClass.SUCCESS_RESPONSE,
            MessageClass.ERROR_RESPONSE,
        )


@settings(deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_stun_errors(data: bytes) -> None:
    turn = Turn()
    feed(turn, turn.client("bob"), data)
    turn.core.channel_data(("udp", ("192.0.2.5", 1), ("192.0.2.1", 3478)), data, turn.now)


@settings(deadline=None)
@given(hostile=hostiles, anonymous=st.booleans())
def test_structured_hostile_messages_raise_only_stun_errors(
    hostile: Hostile, anonymous: bool
) -> None:
    turn = Turn(versions=(4, 6), allow_anonymous=anonymous)
    attacker = turn.client("bob")
    attacker.allocate(lifetime=3600, sign=not anonymous)
    bind = (ChannelNumber(0x4000), peer_attribute(PEER))
    attacker.request(Method.CHANNEL_BIND, *bind, sign=not anonymous)

    feed(turn, attacker, encode(hostile, attacker, turn))


@settings(deadline=None, max_examples=150)
@given(
    actions=st.lists(
        st.one_of(
            hostiles.map(lambda h: ("stun", h)),
            st.binary(max_size=40).map(lambda b: ("channel-data", b)),
            st.tuples(st.binary(max_size=40), peer_addresses).map(lambda p: ("peer", p)),
            st.floats(0, 5).map(lambda s: ("time", s)),
        ),
        max_size=12,
    ),
    attacker_allocates=st.booleans(),
)
def test_hostile_client_leaves_another_clients_allocation_intact(
    actions: list[tuple[str, object]], attacker_allocates: bool
) -> None:
    turn = Turn(versions=(4, 6))
    victim = turn.client("alice")
    victim.allocate(lifetime=3600)
    victim.bind(0x4000, PEER)
    victim.permit(PEER_2)
    allocation = turn.core.allocations[victim.key]
    victim_relay = turn.relays.opened[0]
    before = (allocation.expires, dict(allocation.permissions), sorted(allocation.channels))
    attacker = turn.client("bob")
    if attacker_allocates:
        attacker.allocate(lifetime=3600)

    for kind, action in actions:
        if kind == "stun":
            feed(turn, attacker, encode(action, attacker, turn))  # type: ignore[arg-type]
        elif kind == "channel-data":
            turn.core.channel_data(attacker.key, action, turn.now)  # type: ignore[arg-type]
        elif kind == "peer" and attacker_allocates:
            data, peer = cast(tuple[bytes, XorPeerAddress], action)
            turn.relays.opened[-1].from_peer(data, (str(peer.address), peer.port), turn.now)
        elif kind == "time":
            turn.advance(action)  # type: ignore[arg-type]
            turn.expire()

    assert turn.core.allocations[victim.key] is allocation
    assert not victim_relay.closed
    assert (allocation.expires, allocation.permissions, sorted(allocation.channels)) == before
    assert allocation.username == "alice"
    sent_before = len(victim_relay.sent)
    victim.channel_data(0x4000, b"still mine")
    victim_relay.from_peer(b"still yours", PEER_2, turn.now)
    assert victim_relay.sent[sent_before:] == [(b"still mine", PEER)]
    assert victim.data_indications()[-1] == (PEER_2, b"still yours")
