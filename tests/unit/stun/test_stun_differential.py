"""Differential tests against aioice's STUN codec, an independent implementation.

What heron encodes, aioice parses with the same values and accepts the
MESSAGE-INTEGRITY and FINGERPRINT of; and the other way round.
"""

from collections.abc import Callable
from typing import Any

from aioice import stun as aioice
from hypothesis import given
from hypothesis import strategies as st

from heron.stun import (
    Attribute,
    ChangeRequest,
    ChannelNumber,
    Data,
    ErrorCodeAttribute,
    IceControlled,
    IceControlling,
    Lifetime,
    MappedAddress,
    Message,
    MessageClass,
    Method,
    Nonce,
    OtherAddress,
    Priority,
    Realm,
    RequestedTransport,
    ResponseOrigin,
    Software,
    UseCandidate,
    Username,
    XorMappedAddress,
    XorPeerAddress,
    XorRelayedAddress,
)

texts = st.text(max_size=40)
u32, u64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)


def address(kind: type[Attribute]) -> st.SearchStrategy[Attribute]:
    return st.builds(kind, st.ip_addresses(), st.integers(0, 0xFFFF))


def as_aioice_address(a: Any) -> tuple[str, int]:
    return (str(a.address), a.port)


# heron attribute class -> (strategy, aioice name, heron value -> aioice value)
COMMON: dict[type[Attribute], tuple[st.SearchStrategy[Any], str, Callable[[Any], Any]]] = {
    Username: (st.builds(Username, texts), "USERNAME", lambda a: a.value),
    Realm: (st.builds(Realm, texts), "REALM", lambda a: a.value),
    Nonce: (st.builds(Nonce, texts), "NONCE", lambda a: a.value.encode()),
    Software: (st.builds(Software, texts), "SOFTWARE", lambda a: a.value),
    Priority: (st.builds(Priority, u32), "PRIORITY", lambda a: a.value),
    Lifetime: (st.builds(Lifetime, u32), "LIFETIME", lambda a: a.value),
    IceControlled: (st.builds(IceControlled, u64), "ICE-CONTROLLED", lambda a: a.value),
    IceControlling: (st.builds(IceControlling, u64), "ICE-CONTROLLING", lambda a: a.value),
    UseCandidate: (st.just(UseCandidate()), "USE-CANDIDATE", lambda a: None),
    Data: (st.builds(Data, st.binary(max_size=100)), "DATA", lambda a: a.value),
    ChannelNumber: (
        st.builds(ChannelNumber, st.integers(0x4000, 0x4FFF)),
        "CHANNEL-NUMBER",
        lambda a: a.number,
    ),
    RequestedTransport: (
        st.builds(RequestedTransport, st.integers(0, 0xFF)),
        "REQUESTED-TRANSPORT",
        lambda a: a.protocol << 24,
    ),
    ChangeRequest: (
        st.builds(ChangeRequest, st.booleans(), st.booleans()),
        "CHANGE-REQUEST",
        lambda a: 4 * a.change_ip | 2 * a.change_port,
    ),
    ErrorCodeAttribute: (
        st.builds(ErrorCodeAttribute, st.integers(300, 699), texts),
        "ERROR-CODE",
        lambda a: (a.code, a.reason),
    ),
    MappedAddress: (address(MappedAddress), "MAPPED-ADDRESS", as_aioice_address),
    ResponseOrigin: (address(ResponseOrigin), "RESPONSE-ORIGIN", as_aioice_address),
    OtherAddress: (address(OtherAddress), "OTHER-ADDRESS", as_aioice_address),
    XorMappedAddress: (address(XorMappedAddress), "XOR-MAPPED-ADDRESS", as_aioice_address),
    XorPeerAddress: (address(XorPeerAddress), "XOR-PEER-ADDRESS", as_aioice_address),
    XorRelayedAddress: (address(XorRelayedAddress), "XOR-RELAYED-ADDRESS", as_aioice_address),
}
METHODS = [m for m in Method if m.name in aioice.Method.__members__]
CLASSES = {
    MessageClass.REQUEST: aioice.Class.REQUEST,
    MessageClass.INDICATION: aioice.Class.INDICATION,
    MessageClass.SUCCESS_RESPONSE: aioice.Class.RESPONSE,
    MessageClass.ERROR_RESPONSE: aioice.Class.ERROR,
}

# aioice keeps one attribute per type, so draw a set of distinct classes
shared_messages = st.builds(
    Message,
    st.sampled_from(METHODS),
    st.sampled_from(MessageClass),
    st.binary(min_size=12, max_size=12),
    st.lists(st.sampled_from(list(COMMON)), unique=True, max_size=8).flatmap(
        lambda kinds: st.tuples(*(COMMON[k][0] for k in kinds))
    ),
)


def aioice_attributes(message: Message) -> dict[str, Any]:
    return {COMMON[type(a)][1]: COMMON[type(a)][2](a) for a in message.attributes}


@given(message=shared_messages, key=st.binary(min_size=1, max_size=32))
def test_rfc8489_heron_encodes_what_aioice_decodes(message: Message, key: bytes) -> None:
    parsed = aioice.parse_message(message.encode(key, fingerprint=True))

    assert parsed.message_method == aioice.Method[Method(message.method).name]
    assert parsed.message_class == CLASSES[message.message_class]
    assert parsed.transaction_id == message.transaction_id
    assert parsed.check_message_integrity(key)
    received = {k: v for k, v in parsed.attributes.items() if k in {c[1] for c in COMMON.values()}}
    assert received == aioice_attributes(message)


@given(message=shared_messages, key=st.binary(min_size=1, max_size=32))
def test_rfc8489_heron_decodes_what_aioice_encodes(message: Message, key: bytes) -> None:
    sent = aioice.Message(
        aioice.Method[Method(message.method).name],
        CLASSES[message.message_class],
        message.transaction_id,
        aioice_attributes(message),
    )
    sent.add_message_integrity(key)  # adds FINGERPRINT too

    decoded = Message.decode(bytes(sent))

    assert decoded.attributes[: len(message.attributes)] == message.attributes
    assert (decoded.method, decoded.message_class) == (message.method, message.message_class)
    assert decoded.verify_integrity(key)
