"""Hypothesis: every attribute and whole messages round-trip; hostile bytes raise only StunError."""

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.stun import (
    AdditionalAddressFamily,
    AddressErrorCode,
    AddressFamily,
    AlternateDomain,
    AlternateServer,
    Attribute,
    AttributeType,
    ChangeRequest,
    ChannelData,
    ChannelNumber,
    ConnectionId,
    Data,
    DontFragment,
    ErrorCodeAttribute,
    EvenPort,
    Fingerprint,
    IceControlled,
    IceControlling,
    Icmp,
    Integrity,
    KnownAttribute,
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
    PasswordAlgorithms,
    Priority,
    Realm,
    RequestedAddressFamily,
    RequestedTransport,
    ReservationToken,
    ResponseOrigin,
    ResponsePort,
    Software,
    StreamFramer,
    StunError,
    StunRemoteError,
    UnknownAttribute,
    UnknownAttributes,
    UseCandidate,
    UserHash,
    Username,
    XorMappedAddress,
    XorPeerAddress,
    XorRelayedAddress,
    classify,
    decode_attribute,
    next_frame_size,
)

VECTORS = [
    p.read_bytes() for p in (Path(__file__).parents[2] / "vectors" / "rfc5769").glob("*.bin")
]
COMPUTED = {MessageIntegrity, MessageIntegritySha256, Fingerprint}

tids = st.binary(min_size=12, max_size=12)
ports = st.integers(0, 0xFFFF)
u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
u32, u64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
families = st.sampled_from(AddressFamily)
error_codes = st.integers(300, 699)


def text(max_chars: int, max_bytes: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_chars).filter(lambda s: len(s.encode()) <= max_bytes)


def sized(*sizes: int) -> st.SearchStrategy[bytes]:
    return st.sampled_from(sizes).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def address(kind: type[Attribute]) -> st.SearchStrategy[Attribute]:
    return st.builds(kind, st.ip_addresses(), ports)


algorithms = st.builds(PasswordAlgorithm, u16, st.binary(max_size=40))

STRATEGIES: dict[type[KnownAttribute], st.SearchStrategy[Attribute]] = {
    MappedAddress: address(MappedAddress),
    XorMappedAddress: address(XorMappedAddress),
    AlternateServer: address(AlternateServer),
    ResponseOrigin: address(ResponseOrigin),
    OtherAddress: address(OtherAddress),
    XorPeerAddress: address(XorPeerAddress),
    XorRelayedAddress: address(XorRelayedAddress),
    Username: st.builds(Username, text(508, 508)),
    Realm: st.builds(Realm, text(127, 508)),
    Nonce: st.builds(Nonce, text(127, 508)),
    Software: st.builds(Software, text(127, 508)),
    AlternateDomain: st.builds(AlternateDomain, text(255, 255)),
    UserHash: st.builds(UserHash, sized(32)),
    MessageIntegrity: st.builds(MessageIntegrity, sized(20)),
    MessageIntegritySha256: st.builds(MessageIntegritySha256, sized(*range(16, 33, 4))),
    Fingerprint: st.builds(Fingerprint, u32),
    Data: st.builds(Data, st.binary(max_size=600)),
    Padding: st.builds(Padding, st.binary(max_size=100)),
    ReservationToken: st.builds(ReservationToken, sized(8)),
    Lifetime: st.builds(Lifetime, u32),
    Priority: st.builds(Priority, u32),
    ConnectionId: st.builds(ConnectionId, u32),
    IceControlled: st.builds(IceControlled, u64),
    IceControlling: st.builds(IceControlling, u64),
    UseCandidate: st.just(UseCandidate()),
    DontFragment: st.just(DontFragment()),
    ErrorCodeAttribute: st.builds(ErrorCodeAttribute, error_codes, text(127, 508)),
    AddressErrorCode: st.builds(AddressErrorCode, families, error_codes, text(127, 508)),
    UnknownAttributes: st.builds(UnknownAttributes, st.lists(u16, max_size=20).map(tuple)),
    PasswordAlgorithm: algorithms,
    PasswordAlgorithms: st.builds(PasswordAlgorithms, st.lists(algorithms, max_size=5).map(tuple)),
    ChannelNumber: st.builds(ChannelNumber, st.integers(0x4000, 0x4FFF)),
    RequestedAddressFamily: st.builds(RequestedAddressFamily, families),
    AdditionalAddressFamily: st.just(AdditionalAddressFamily()),
    EvenPort: st.builds(EvenPort, st.booleans()),
    RequestedTransport: st.builds(RequestedTransport, u8),
    Icmp: st.builds(Icmp, u8, u8, u32),
    ChangeRequest: st.builds(ChangeRequest, st.booleans(), st.booleans()),
    ResponsePort: st.builds(ResponsePort, ports),
}

unknown_attributes = st.builds(
    UnknownAttribute,
    u16.filter(lambda t: t not in set(AttributeType)),
    st.binary(max_size=40),
)
body_attributes = st.one_of(
    unknown_attributes, *(s for kind, s in STRATEGIES.items() if kind not in COMPUTED)
)
messages = st.builds(
    Message,
    st.sampled_from(Method) | st.integers(0, 0xFFF),
    st.sampled_from(MessageClass),
    tids,
    st.lists(body_attributes, max_size=8).map(tuple),
)


def test_rfc8489_18_3_every_attribute_type_has_a_strategy() -> None:
    # with the round trip below, this proves every registered type has a codec
    assert {kind.TYPE for kind in STRATEGIES} == set(AttributeType)


@pytest.mark.parametrize("kind", list(STRATEGIES), ids=lambda k: k.TYPE.name)
@given(data=st.data(), transaction_id=tids)
def test_rfc8489_14_attribute_round_trip(
    kind: type[KnownAttribute], data: st.DataObject, transaction_id: bytes
) -> None:
    attribute = data.draw(STRATEGIES[kind])

    value = attribute.encode_value(transaction_id)

    assert decode_attribute(attribute.type, value, transaction_id) == attribute


@given(attribute=unknown_attributes, transaction_id=tids)
def test_rfc8489_14_unknown_attribute_round_trip(
    attribute: UnknownAttribute, transaction_id: bytes
) -> None:
    value = attribute.encode_value(transaction_id)

    assert decode_attribute(attribute.type, value, transaction_id) == attribute


@given(
    message=messages,
    key=st.none() | st.binary(max_size=64),
    integrity=st.sampled_from(
        [Integrity.SHA1, Integrity.SHA256, Integrity.SHA1 | Integrity.SHA256]
    ),
    sha256_length=st.sampled_from(range(16, 33, 4)),
    fingerprint=st.booleans(),
)
def test_rfc8489_5_message_round_trip(
    message: Message,
    key: bytes | None,
    integrity: Integrity,
    sha256_length: int,
    fingerprint: bool,
) -> None:
    def encode(message: Message) -> bytes:
        return message.encode(
            key, integrity=integrity, sha256_length=sha256_length, fingerprint=fingerprint
        )

    wire = encode(message)
    decoded = Message.decode(wire)

    body = decoded.attributes[: len(message.attributes)]
    rebuilt = Message(decoded.method, decoded.message_class, decoded.transaction_id, body)
    assert rebuilt == message
    assert encode(rebuilt) == wire
    assert decoded.integrity == (integrity if key is not None else Integrity.NONE)
    assert (decoded.find(Fingerprint) is not None) is fingerprint
    assert decoded.verify_integrity(key or b"") is (key is not None)


def only_stun_errors(data: bytes) -> None:
    """Feed ``data`` to every decoding entry point; anything but the STUN tree fails the test."""
    classify(data)
    for decode in (Message.decode, ChannelData.decode, next_frame_size, StreamFramer().feed):
        try:
            decode(data)
        except StunRemoteError as exc:
            assert isinstance(exc.code, int)


@settings(max_examples=500)
@given(data=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_raise_only_stun_errors(data: bytes) -> None:
    only_stun_errors(data)


raw_attributes = st.tuples(
    st.sampled_from(AttributeType) | u16,
    st.binary(max_size=40),
    st.sampled_from([0, 0, 0, -1, 1, -4, 4, 1000]),  # how far the claimed length lies
)


@settings(max_examples=1000)
@given(
    message_type=st.integers(0, 0x3FFF),
    attributes=st.lists(raw_attributes, max_size=8),
    length_error=st.sampled_from([0, 0, 0, 0, 0, 0, -4, 4, 1]),
)
def test_fuzz_valid_header_with_hostile_attributes(
    message_type: int, attributes: list[tuple[int, bytes, int]], length_error: int
) -> None:
    body = b"".join(
        struct.pack("!HH", t, max(0, len(v) + lie)) + v + bytes(-len(v) % 4)
        for t, v, lie in attributes
    )
    length = max(0, min(0xFFFF, len(body) + length_error))
    data = struct.pack("!HHI", message_type, length, 0x2112A442) + bytes(12) + body

    only_stun_errors(data)


@given(vector=st.sampled_from(VECTORS), data=st.data())
def test_fuzz_mutated_rfc5769_vectors(vector: bytes, data: st.DataObject) -> None:
    mutated = bytearray(vector)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(u8)
    cut = data.draw(st.integers(0, len(mutated)))

    only_stun_errors(bytes(mutated))
    only_stun_errors(bytes(mutated[:cut]))


def test_fuzz_every_truncation_of_the_vectors_is_refused() -> None:
    for vector in VECTORS:
        for cut in range(len(vector)):
            with pytest.raises(StunError):
                Message.decode(vector[:cut])
