"""RFC 5769 test vectors, byte-exact, both ways (decode every value, encode the same bytes)."""

import hashlib
from ipaddress import ip_address
from pathlib import Path

import pytest

from heron.stun import (
    Fingerprint,
    IceControlled,
    Integrity,
    Message,
    MessageClass,
    MessageIntegrity,
    Method,
    Nonce,
    Priority,
    Realm,
    Software,
    StunRemoteError,
    Username,
    XorMappedAddress,
)

VECTORS = Path(__file__).parents[2] / "vectors" / "rfc5769"
SHORT_TERM_KEY = b"VOkJxbRl1RmTxUk/WvJxBt"  # §2.1-§2.3: the password is the key
TRANSACTION_ID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
MAPPED_PORT = 32853
USERNAME_2_4 = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"


def vector(name: str) -> bytes:
    return (VECTORS / f"{name}.bin").read_bytes()


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """Test-only long-term key, MD5("username:realm:password") (RFC 8489 §9.2.2).

    The strings are given already SASLprep'd: the codec takes keys, not passwords.
    """
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def without_checksums(message: Message) -> Message:
    """The message as a sender builds it: encode() computes MESSAGE-INTEGRITY and FINGERPRINT."""
    kept = tuple(a for a in message.attributes if not isinstance(a, MessageIntegrity | Fingerprint))
    return Message(message.method, message.message_class, message.transaction_id, kept)


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def test_rfc5769_2_1_sample_request() -> None:
    data = vector("sample_request")
    message = Message.decode(data)

    assert (message.method, message.message_class) == (Method.BINDING, MessageClass.REQUEST)
    assert message.transaction_id == TRANSACTION_ID
    assert message.attributes == (
        Software("STUN test client"),
        Priority(0x6E0001FF),
        IceControlled(0x932FF9B151263B36),
        Username("evtj:h6vY"),
        MessageIntegrity(bytes.fromhex("9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2")),
        Fingerprint(0xE57A3BCF),
    )
    assert message.integrity is Integrity.SHA1
    assert message.verify_integrity(SHORT_TERM_KEY)
    assert not message.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBT")


def test_rfc5769_2_1_sample_request_encodes_byte_exact() -> None:
    data = vector("sample_request")
    built = without_checksums(Message.decode(data))

    assert built.encode(SHORT_TERM_KEY, fingerprint=True, pad_byte=0x20) == data


def test_rfc5769_2_2_sample_ipv4_response() -> None:
    data = vector("sample_ipv4_response")
    message = Message.decode(data)

    assert message.message_class is MessageClass.SUCCESS_RESPONSE
    assert message.transaction_id == TRANSACTION_ID
    assert message.find(Software) == Software("test vector")
    assert message.find(XorMappedAddress) == XorMappedAddress(ip_address("192.0.2.1"), MAPPED_PORT)
    assert message.find(Fingerprint) == Fingerprint(0xC07D4C96)
    assert message.verify_integrity(SHORT_TERM_KEY)


def test_rfc5769_2_2_sample_ipv4_response_encodes_byte_exact() -> None:
    request = Message(Method.BINDING, MessageClass.REQUEST, TRANSACTION_ID)
    response = request.success_response(
        [Software("test vector"), XorMappedAddress(ip_address("192.0.2.1"), MAPPED_PORT)]
    )

    wire = response.encode(SHORT_TERM_KEY, fingerprint=True, pad_byte=0x20)

    assert wire == vector("sample_ipv4_response")


def test_rfc5769_2_3_sample_ipv6_response() -> None:
    data = vector("sample_ipv6_response")
    message = Message.decode(data)

    assert message.message_class is MessageClass.SUCCESS_RESPONSE
    assert message.find(Software) == Software("test vector")
    assert message.find(XorMappedAddress) == XorMappedAddress(
        ip_address("2001:db8:1234:5678:11:2233:4455:6677"), MAPPED_PORT
    )
    assert message.find(Fingerprint) == Fingerprint(0xC8FB0B4C)
    assert message.verify_integrity(SHORT_TERM_KEY)


def test_rfc5769_2_3_sample_ipv6_response_encodes_byte_exact() -> None:
    request = Message(Method.BINDING, MessageClass.REQUEST, TRANSACTION_ID)
    address = ip_address("2001:db8:1234:5678:11:2233:4455:6677")
    response = request.success_response(
        [Software("test vector"), XorMappedAddress(address, MAPPED_PORT)]
    )

    wire = response.encode(SHORT_TERM_KEY, fingerprint=True, pad_byte=0x20)

    assert wire == vector("sample_ipv6_response")


def test_rfc5769_2_4_sample_request_with_long_term_authentication() -> None:
    data = vector("sample_request_long_term")
    message = Message.decode(data)
    key = long_term_key(USERNAME_2_4, "example.org", "TheMatrIX")

    assert message.transaction_id == bytes.fromhex("78ad3433c6ad72c029da412e")
    assert message.attributes[:3] == (
        Username(USERNAME_2_4),
        Nonce("f//499k954d6OL34oL9FSTvy64sA"),
        Realm("example.org"),
    )
    assert message.find(Fingerprint) is None
    assert message.verify_integrity(key)
    assert not message.verify_integrity(long_term_key(USERNAME_2_4, "example.org", "thematrix"))


def test_rfc5769_2_4_sample_request_with_long_term_authentication_encodes_byte_exact() -> None:
    data = vector("sample_request_long_term")
    key = long_term_key(USERNAME_2_4, "example.org", "TheMatrIX")

    assert without_checksums(Message.decode(data)).encode(key) == data


@pytest.mark.parametrize("name", ["sample_request", "sample_ipv4_response", "sample_ipv6_response"])
def test_rfc5769_2_any_flipped_bit_fails_fingerprint(name: str) -> None:
    data = vector(name)
    for offset in range(len(data)):
        try:
            tampered = Message.decode(flip(data, offset))
        except StunRemoteError as exc:
            assert exc.request is None, offset  # not STUN, or not this STUN: drop silently
        else:
            # only a flip in FINGERPRINT's own type survives: the attribute is then
            # no fingerprint, and after MESSAGE-INTEGRITY it is ignored (RFC 8489 §14.5)
            assert tampered.find(Fingerprint) is None, offset


def test_rfc5769_2_1_flipped_bit_without_fingerprint_fails_integrity() -> None:
    data = vector("sample_request")
    username_offset = 20 + 20 + 8 + 12 + 4  # after SOFTWARE, PRIORITY, ICE-CONTROLLED, a header
    forged = flip(data, username_offset)[:-8]  # and drop FINGERPRINT, which would catch it
    forged = forged[:2] + (len(forged) - 20).to_bytes(2, "big") + forged[4:]

    decoded = Message.decode(forged)

    assert decoded.find(Username) == Username("dvtj:h6vY")
    assert not decoded.verify_integrity(SHORT_TERM_KEY)


def test_rfc5769_2_4_any_flipped_bit_fails_integrity() -> None:
    data = vector("sample_request_long_term")
    key = long_term_key(USERNAME_2_4, "example.org", "TheMatrIX")
    for offset in range(len(data)):
        try:
            tampered = Message.decode(flip(data, offset))
        except StunRemoteError:
            continue
        assert not tampered.verify_integrity(key), offset
