"""Message codec edge cases, each named after the RFC section it proves."""

import hashlib
import hmac
import struct
from ipaddress import ip_address

import pytest

from heron.stun import (
    MAX_ATTRIBUTES,
    ChannelNumber,
    Data,
    ErrorCode,
    ErrorCodeAttribute,
    Fingerprint,
    Integrity,
    Lifetime,
    Message,
    MessageClass,
    MessageIntegrity,
    MessageIntegritySha256,
    Method,
    RequestedAddressFamily,
    Software,
    StunLocalError,
    StunRemoteError,
    UnknownAttribute,
    UnknownAttributes,
    Username,
    XorMappedAddress,
    XorPeerAddress,
)

TID = bytes(range(12))
KEY = b"secret"


def header(message_type: int, length: int, cookie: int = 0x2112A442) -> bytes:
    return struct.pack("!HHI", message_type, length, cookie) + TID


def tlv(attribute_type: int, value: bytes) -> bytes:
    return struct.pack("!HH", attribute_type, len(value)) + value + bytes(-len(value) % 4)


def raw_message(message_type: int, *attributes: bytes) -> bytes:
    body = b"".join(attributes)
    return header(message_type, len(body)) + body


@pytest.mark.parametrize(
    ("method", "message_class", "message_type"),
    [
        (Method.BINDING, MessageClass.REQUEST, 0x0001),
        (Method.BINDING, MessageClass.INDICATION, 0x0011),
        (Method.BINDING, MessageClass.SUCCESS_RESPONSE, 0x0101),
        (Method.BINDING, MessageClass.ERROR_RESPONSE, 0x0111),
        (Method.ALLOCATE, MessageClass.ERROR_RESPONSE, 0x0113),
        (Method.SEND, MessageClass.INDICATION, 0x0016),
        (Method.DATA, MessageClass.INDICATION, 0x0017),
        (Method.CHANNEL_BIND, MessageClass.SUCCESS_RESPONSE, 0x0109),
        (Method.CONNECTION_ATTEMPT, MessageClass.INDICATION, 0x001C),
        (0xFFF, MessageClass.ERROR_RESPONSE, 0x3FFF),
    ],
)
def test_rfc8489_5_message_type_interleaves_method_and_class(
    method: int, message_class: MessageClass, message_type: int
) -> None:
    wire = Message(method, message_class, TID).encode()

    assert wire == header(message_type, 0)
    decoded = Message.decode(wire)
    assert (decoded.method, decoded.message_class) == (method, message_class)


def test_rfc8489_5_unknown_method_is_kept_as_a_number() -> None:
    decoded = Message.decode(header(0x0002, 0))

    assert decoded.method == 0x002
    assert not isinstance(decoded.method, Method)
    assert decoded.error_response(400).method == 0x002


@pytest.mark.parametrize(
    "data",
    [
        b"",
        header(0x0001, 0)[:19],
        header(0x4001, 0),  # top bits set
        header(0x0001, 0, cookie=0x2112A443),
        header(0x0001, 2) + b"\0\0",  # length not a multiple of 4
        header(0x0001, 4),  # length runs past the end
        header(0x0001, 0) + bytes(4),  # bytes past the length
        raw_message(0x0001, struct.pack("!HH", 0x8022, 8) + b"abcd"),  # attribute past the end
    ],
)
def test_rfc8489_6_3_malformed_header_or_framing_is_dropped(data: bytes) -> None:
    with pytest.raises(StunRemoteError) as caught:
        Message.decode(data)

    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert caught.value.request is None


def test_rfc8489_6_3_malformed_attribute_in_a_request_is_answered_400() -> None:
    bad_family = tlv(0x0020, b"\x00\x03\x00\x01" + bytes(4))

    with pytest.raises(StunRemoteError) as caught:
        Message.decode(raw_message(0x0003, bad_family))

    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert caught.value.request == Message(Method.ALLOCATE, MessageClass.REQUEST, TID)
    answer = caught.value.request.error_response(caught.value.code, caught.value.reason)
    assert Message.decode(answer.encode()).find(ErrorCodeAttribute) == ErrorCodeAttribute(
        400, caught.value.reason
    )


def test_rfc8489_6_3_malformed_attribute_in_an_indication_is_dropped() -> None:
    with pytest.raises(StunRemoteError) as caught:
        Message.decode(raw_message(0x0016, tlv(0x000D, b"\x00")))

    assert caught.value.request is None


def test_rfc8489_6_3_1_unknown_comprehension_required_attributes_are_listed() -> None:
    request = Message.decode(
        raw_message(
            0x0001, tlv(0x7777, b"x"), tlv(0xC001, b"optional"), tlv(0x7777, b""), tlv(0x0030, b"")
        )
    )

    assert request.find(UnknownAttribute) == UnknownAttribute(0x7777, b"x")
    assert request.unknown_required() == (0x7777, 0x0030)
    answer = request.error_response(420, attributes=[UnknownAttributes(request.unknown_required())])
    decoded = Message.decode(answer.encode())
    assert decoded.message_class is MessageClass.ERROR_RESPONSE
    assert decoded.attributes == (
        ErrorCodeAttribute(420, "Unknown Attribute"),
        UnknownAttributes((0x7777, 0x0030)),
    )


def test_rfc8489_14_unknown_attributes_round_trip_verbatim() -> None:
    message = Message(
        Method.BINDING, MessageClass.INDICATION, TID, (UnknownAttribute(0x9999, b"abc"),)
    )

    assert Message.decode(message.encode()) == message


def test_rfc8489_14_5_attributes_after_message_integrity_are_ignored() -> None:
    signed = Message(Method.BINDING, MessageClass.REQUEST, TID, (Username("alice"),)).encode(KEY)
    trailer = tlv(0x8022, b"injected")
    data = signed[:2] + (len(signed) - 20 + len(trailer)).to_bytes(2, "big") + signed[4:] + trailer

    decoded = Message.decode(data)

    assert decoded.find(Software) is None
    assert decoded.verify_integrity(KEY)


def test_rfc8489_14_5_message_integrity_covers_header_with_adjusted_length() -> None:
    message = Message(Method.BINDING, MessageClass.REQUEST, TID, (Username("alice"),))

    wire = message.encode(KEY, fingerprint=True)

    covered = wire[:2] + (len(wire) - 20 - 8).to_bytes(2, "big") + wire[4:-32]
    assert wire[-28:-8] == hmac.new(KEY, covered, hashlib.sha1).digest()
    assert Message.decode(wire).verify_integrity(KEY)
    assert not Message.decode(wire).verify_integrity(b"wrong")


@pytest.mark.parametrize("length", [16, 20, 32])
def test_rfc8489_14_6_message_integrity_sha256_may_be_truncated(length: int) -> None:
    message = Message(Method.BINDING, MessageClass.REQUEST, TID, (Username("alice"),))

    wire = message.encode(KEY, integrity=Integrity.SHA256, sha256_length=length)

    covered = wire[: -4 - length]
    expected = hmac.new(KEY, covered, hashlib.sha256).digest()[:length]
    decoded = Message.decode(wire)
    assert decoded.find(MessageIntegritySha256) == MessageIntegritySha256(expected)
    assert decoded.integrity is Integrity.SHA256
    assert decoded.verify_integrity(KEY)


@pytest.mark.parametrize("length", [0, 12, 18, 36])
def test_rfc8489_14_6_message_integrity_sha256_length_is_16_to_32_in_fours(length: int) -> None:
    with pytest.raises(StunLocalError):
        Message(Method.BINDING, MessageClass.REQUEST, TID).encode(
            KEY, integrity=Integrity.SHA256, sha256_length=length
        )
    bad = tlv(0x001C, bytes(length))
    with pytest.raises(StunRemoteError, match="MESSAGE_INTEGRITY_SHA256"):
        Message.decode(raw_message(0x0001, bad))


def test_rfc8489_14_6_both_integrity_attributes_sha256_checked() -> None:
    message = Message(Method.BINDING, MessageClass.REQUEST, TID, (Username("alice"),))
    wire = message.encode(KEY, integrity=Integrity.SHA1 | Integrity.SHA256, fingerprint=True)

    decoded = Message.decode(wire)

    assert decoded.integrity == Integrity.SHA1 | Integrity.SHA256
    assert [type(a) for a in decoded.attributes[1:]] == [
        MessageIntegrity,
        MessageIntegritySha256,
        Fingerprint,
    ]
    assert decoded.verify_integrity(KEY)


def test_rfc8489_14_7_fingerprint_mismatch_is_dropped_silently() -> None:
    wire = bytearray(Message(Method.BINDING, MessageClass.REQUEST, TID).encode(fingerprint=True))
    wire[-1] ^= 0xFF

    with pytest.raises(StunRemoteError, match="FINGERPRINT") as caught:
        Message.decode(bytes(wire))

    assert caught.value.request is None


def test_rfc8489_14_7_checksums_are_computed_by_encode_only() -> None:
    for attribute in (MessageIntegrity(bytes(20)), Fingerprint(0)):
        with pytest.raises(StunLocalError, match="computed by encode"):
            Message(Method.BINDING, MessageClass.REQUEST, TID, (attribute,)).encode()


def test_rfc8489_9_2_4_response_mirrors_request_integrity() -> None:
    request = Message.decode(
        Message(Method.ALLOCATE, MessageClass.REQUEST, TID).encode(KEY, integrity=Integrity.SHA256)
    )

    response = request.success_response([Lifetime(600)])
    wire = response.encode(KEY, integrity=request.integrity)

    decoded = Message.decode(wire)
    assert decoded.integrity is Integrity.SHA256
    assert decoded.verify_integrity(KEY)
    assert decoded.transaction_id == TID


def test_rfc8489_14_8_error_response_default_reason_phrase() -> None:
    request = Message(Method.ALLOCATE, MessageClass.REQUEST, TID)

    assert request.error_response(ErrorCode.ALLOCATION_QUOTA_REACHED).attributes == (
        ErrorCodeAttribute(486, "Allocation Quota Reached"),
    )
    assert request.error_response(499).attributes == (ErrorCodeAttribute(499, ""),)
    assert request.error_response(401, "Who?").find(ErrorCodeAttribute) == ErrorCodeAttribute(
        401, "Who?"
    )


def test_rfc8489_6_3_only_requests_are_answered() -> None:
    indication = Message(Method.SEND, MessageClass.INDICATION, TID)

    with pytest.raises(StunLocalError):
        indication.success_response()
    with pytest.raises(StunLocalError):
        indication.error_response(400)


@pytest.mark.parametrize(
    ("value", "code"),
    [(b"\x03\x00\x00\x00", ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED), (b"\x01\x00", 400)],
)
def test_rfc8656_7_2_requested_address_family_unknown_is_440(value: bytes, code: int) -> None:
    with pytest.raises(StunRemoteError) as caught:
        Message.decode(raw_message(0x0003, tlv(0x0017, value)))

    assert caught.value.code == code
    assert caught.value.request is not None


def test_rfc8656_12_2_channel_number_out_of_range_is_400() -> None:
    with pytest.raises(StunRemoteError) as caught:
        Message.decode(raw_message(0x0009, tlv(0x000C, b"\x80\x00\x00\x00")))

    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert Message.decode(raw_message(0x0009, tlv(0x000C, b"\x4f\xff\x00\x00"))).find(
        ChannelNumber
    ) == ChannelNumber(0x4FFF)


def test_rfc8656_create_permission_may_repeat_xor_peer_address() -> None:
    peers = (XorPeerAddress(ip_address("192.0.2.7"), 0), XorPeerAddress(ip_address("::1"), 0))
    message = Message(Method.CREATE_PERMISSION, MessageClass.REQUEST, TID, peers)

    assert Message.decode(message.encode()).find_all(XorPeerAddress) == peers


def test_rfc8489_14_2_xor_mapped_address_hides_the_address_bytes() -> None:
    attribute = XorMappedAddress(ip_address("192.0.2.1"), 32853)

    value = attribute.encode_value(TID)

    assert value == bytes.fromhex("0001a147e112a643")
    assert ip_address("192.0.2.1").packed not in value


def test_rfc8489_14_3_username_send_and_receive_limits() -> None:
    with pytest.raises(StunLocalError, match="too long to send"):
        Message(Method.BINDING, MessageClass.REQUEST, TID, (Username("u" * 509),)).encode()
    received = Message.decode(raw_message(0x0001, tlv(0x0006, b"u" * 763)))
    assert received.find(Username) == Username("u" * 763)
    with pytest.raises(StunRemoteError):
        Message.decode(raw_message(0x0001, tlv(0x0006, b"u" * 764)))
    with pytest.raises(StunRemoteError, match="UTF-8"):
        Message.decode(raw_message(0x0001, tlv(0x0006, b"\xff")))


def test_limits_message_size_is_bounded() -> None:
    wire = Message(Method.SEND, MessageClass.INDICATION, TID, (Data(bytes(1000)),)).encode()

    with pytest.raises(StunRemoteError, match="exceeds"):
        Message.decode(wire, max_size=1000)
    with pytest.raises(StunLocalError):
        Message(Method.SEND, MessageClass.INDICATION, TID, (Data(bytes(0xFFFF)),)).encode()


def test_limits_attribute_count_is_bounded() -> None:
    many = (Software("x"),) * MAX_ATTRIBUTES
    wire = Message(Method.BINDING, MessageClass.INDICATION, TID, many).encode()

    assert len(Message.decode(wire).attributes) == MAX_ATTRIBUTES
    with pytest.raises(StunRemoteError, match="attributes"):
        Message.decode(wire, max_attributes=MAX_ATTRIBUTES - 1)
    flood = raw_message(0x0011, *[tlv(0x0025, b"")] * 16383)  # 16383 empty attributes
    with pytest.raises(StunRemoteError, match="attributes"):
        Message.decode(flood)


def test_message_validates_when_built() -> None:
    with pytest.raises(StunLocalError):
        Message(Method.BINDING, MessageClass.REQUEST, b"short")
    with pytest.raises(StunLocalError):
        Message(0x1000, MessageClass.REQUEST, TID)
    with pytest.raises(StunLocalError):
        RequestedAddressFamily(3)  # type: ignore[arg-type]


def test_built_message_has_no_integrity_to_verify() -> None:
    message = Message(Method.BINDING, MessageClass.REQUEST, TID, (MessageIntegrity(bytes(20)),))

    assert not message.verify_integrity(KEY)
    assert not Message.decode(message.success_response().encode()).verify_integrity(KEY)


def test_find_on_a_decoded_message_answers_as_on_the_message_built() -> None:
    """``decode`` indexes attributes by class; ``find`` must still give the first of a
    repeated attribute, find by a base class, and find nothing absent."""
    from heron.stun.attributes import TextAttribute, XorAddressAttribute

    peers = (XorPeerAddress(ip_address("192.0.2.7"), 7), XorPeerAddress(ip_address("192.0.2.8"), 8))
    built = Message(
        Method.CREATE_PERMISSION,
        MessageClass.REQUEST,
        TID,
        (*peers, Username("alice"), Software("heron"), UnknownAttribute(0x7FFF, b"x")),
    )
    decoded = Message.decode(built.encode())
    kinds = (XorPeerAddress, Username, Software, TextAttribute, XorAddressAttribute, Lifetime)
    for kind in kinds:
        assert decoded.find(kind) == built.find(kind), kind
    assert decoded.find(XorPeerAddress) == peers[0]
    assert decoded.find(TextAttribute) == Username("alice")
    assert decoded.find(Lifetime) is None
    assert decoded.find_all(XorPeerAddress) == peers
    assert decoded.unknown_required() == built.unknown_required() == (0x7FFF,)
    assert (
        Message.decode(
            Message(Method.BINDING, MessageClass.REQUEST, TID).encode()
        ).unknown_required()
        == ()
    )
