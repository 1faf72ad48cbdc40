"""Attributes of the STUN extensions heron serves: TURN, ICE, NAT behaviour discovery.

TURN relays (RFC 8656, with RFC 6156's address families and RFC 6062's TCP
relaying), ICE connectivity checks (RFC 8445) and NAT behaviour discovery
(RFC 5780) add attributes to the STUN core of ``attributes``; they use the same
value shapes and the same rules.
"""

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from heron.stun.attributes import (
    FAMILIES,
    AddressAttribute,
    AddressFamily,
    AttributeType,
    BytesAttribute,
    FlagAttribute,
    IntegerAttribute,
    KnownAttribute,
    XorAddressAttribute,
    check_error,
    decode_error,
    decode_family,
    encode_error,
    expect_length,
    require,
)
from heron.stun.errors import ErrorCode, StunLocalError


class TransportProtocol(IntEnum):
    """REQUESTED-TRANSPORT values: IANA protocol numbers (RFC 8656 §18.8, RFC 6062 §5.1)."""

    TCP = 6
    UDP = 17


@dataclass(frozen=True, slots=True)
class ResponseOrigin(AddressAttribute):
    """RESPONSE-ORIGIN (RFC 5780 §7.3)."""

    TYPE = AttributeType.RESPONSE_ORIGIN


@dataclass(frozen=True, slots=True)
class OtherAddress(AddressAttribute):
    """OTHER-ADDRESS (RFC 5780 §7.4)."""

    TYPE = AttributeType.OTHER_ADDRESS


@dataclass(frozen=True, slots=True)
class XorPeerAddress(XorAddressAttribute):
    """XOR-PEER-ADDRESS (RFC 8656 §18.3)."""

    TYPE = AttributeType.XOR_PEER_ADDRESS


@dataclass(frozen=True, slots=True)
class XorRelayedAddress(XorAddressAttribute):
    """XOR-RELAYED-ADDRESS (RFC 8656 §18.5)."""

    TYPE = AttributeType.XOR_RELAYED_ADDRESS


@dataclass(frozen=True, slots=True)
class Data(BytesAttribute):
    """DATA: the application payload of Send and Data indications (RFC 8656 §18.4)."""

    TYPE = AttributeType.DATA


@dataclass(frozen=True, slots=True)
class Padding(BytesAttribute):
    """PADDING, to probe for fragmentation (RFC 5780 §7.6)."""

    TYPE = AttributeType.PADDING


@dataclass(frozen=True, slots=True)
class ReservationToken(BytesAttribute):
    """RESERVATION-TOKEN: 8 bytes naming a reserved relayed port (RFC 8656 §18.10)."""

    TYPE = AttributeType.RESERVATION_TOKEN
    SIZES = range(8, 9)


@dataclass(frozen=True, slots=True)
class Lifetime(IntegerAttribute):
    """LIFETIME in seconds (RFC 8656 §18.2)."""

    TYPE = AttributeType.LIFETIME


@dataclass(frozen=True, slots=True)
class Priority(IntegerAttribute):
    """PRIORITY (RFC 8445 §16.1)."""

    TYPE = AttributeType.PRIORITY


@dataclass(frozen=True, slots=True)
class ConnectionId(IntegerAttribute):
    """CONNECTION-ID of a TURN TCP peer connection (RFC 6062 §6.2.1)."""

    TYPE = AttributeType.CONNECTION_ID


@dataclass(frozen=True, slots=True)
class IceControlled(IntegerAttribute):
    """ICE-CONTROLLED tie-breaker (RFC 8445 §16.1)."""

    TYPE = AttributeType.ICE_CONTROLLED
    SIZE = 8


@dataclass(frozen=True, slots=True)
class IceControlling(IntegerAttribute):
    """ICE-CONTROLLING tie-breaker (RFC 8445 §16.1)."""

    TYPE = AttributeType.ICE_CONTROLLING
    SIZE = 8


@dataclass(frozen=True, slots=True)
class UseCandidate(FlagAttribute):
    """USE-CANDIDATE (RFC 8445 §16.1)."""

    TYPE = AttributeType.USE_CANDIDATE


@dataclass(frozen=True, slots=True)
class DontFragment(FlagAttribute):
    """DONT-FRAGMENT (RFC 8656 §18.9)."""

    TYPE = AttributeType.DONT_FRAGMENT


@dataclass(frozen=True, slots=True)
class AddressErrorCode(KnownAttribute):
    """ADDRESS-ERROR-CODE: why one family of a dual allocation failed (RFC 8656 §18.12)."""

    TYPE = AttributeType.ADDRESS_ERROR_CODE
    family: AddressFamily
    code: int
    reason: str = ""

    def __post_init__(self) -> None:
        require(self.family in FAMILIES, "unknown family")
        check_error(self.code, self.reason)

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        code, reason = decode_error(value)
        return cls(decode_family(value[0]), code, reason)

    def encode_value(self, transaction_id: bytes) -> bytes:
        return encode_error(self.family, self.code, self.reason)


CHANNEL_MIN = 0x4000
CHANNEL_MAX = 0x7FFF
"""RFC 8656 §12 narrowed channels to 0x4000-0x4FFF, but RFC 5766 §11 allowed up to
0x7FFF and its clients (coturn's turnutils_uclient among them) still pick numbers
there; like coturn, heron accepts the RFC 5766 range."""


@dataclass(frozen=True, slots=True)
class ChannelNumber(KnownAttribute):
    """CHANNEL-NUMBER, then 16 reserved bits (RFC 8656 §18.1).

    A number outside CHANNEL_MIN-CHANNEL_MAX decodes to 400, the answer RFC
    8656 §12.2 requires.
    """

    TYPE = AttributeType.CHANNEL_NUMBER
    number: int

    def __post_init__(self) -> None:
        if not CHANNEL_MIN <= self.number <= CHANNEL_MAX:
            raise StunLocalError(f"channel {self.number:#x} out of range")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 4)
        return cls(int.from_bytes(value[:2], "big"))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack("!HH", self.number, 0)


@dataclass(frozen=True, slots=True)
class _FamilyAttribute(KnownAttribute):
    """A family byte, then 24 reserved bits; an unknown family is 440 (RFC 8656 §7.2)."""

    family: AddressFamily

    def __post_init__(self) -> None:
        require(self.family in FAMILIES, "unknown family")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 4)
        return cls(decode_family(value[0], ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack("!B3x", self.family)


@dataclass(frozen=True, slots=True)
class RequestedAddressFamily(_FamilyAttribute):
    """REQUESTED-ADDRESS-FAMILY: the family of the relayed address (RFC 8656 §18.6)."""

    TYPE = AttributeType.REQUESTED_ADDRESS_FAMILY


@dataclass(frozen=True, slots=True)
class AdditionalAddressFamily(_FamilyAttribute):
    """ADDITIONAL-ADDRESS-FAMILY: ask for an IPv6 relay too (RFC 8656 §18.11).

    "The attribute value of 0x02 (IPv6 address) is the only valid value".
    """

    TYPE = AttributeType.ADDITIONAL_ADDRESS_FAMILY
    family: AddressFamily = AddressFamily.IPV6

    def __post_init__(self) -> None:
        require(self.family == AddressFamily.IPV6, "additional family must be IPv6")


@dataclass(frozen=True, slots=True)
class EvenPort(KnownAttribute):
    """EVEN-PORT: one byte whose top bit asks to reserve the next port (RFC 8656 §18.7)."""

    TYPE = AttributeType.EVEN_PORT
    reserve: bool = False

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 1)
        return cls(bool(value[0] & 0x80))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return b"\x80" if self.reserve else b"\x00"


@dataclass(frozen=True, slots=True)
class RequestedTransport(KnownAttribute):
    """REQUESTED-TRANSPORT: protocol number, then 24 reserved bits (RFC 8656 §18.8)."""

    TYPE = AttributeType.REQUESTED_TRANSPORT
    protocol: int = TransportProtocol.UDP

    def __post_init__(self) -> None:
        require(0 <= self.protocol <= 0xFF, "protocol out of range")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 4)
        return cls(value[0])

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack("!B3x", self.protocol)


@dataclass(frozen=True, slots=True)
class Icmp(KnownAttribute):
    """ICMP: the ICMP error a relayed datagram drew (RFC 8656 §18.13)."""

    TYPE = AttributeType.ICMP
    icmp_type: int
    icmp_code: int
    error_data: int = 0

    def __post_init__(self) -> None:
        require(0 <= self.icmp_type <= 0xFF and 0 <= self.icmp_code <= 0xFF, "type/code")
        require(0 <= self.error_data <= 0xFFFFFFFF, "error data out of range")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 8)
        return cls(*struct.unpack("!2xBBI", value))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack("!2xBBI", self.icmp_type, self.icmp_code, self.error_data)


@dataclass(frozen=True, slots=True)
class ChangeRequest(KnownAttribute):
    """CHANGE-REQUEST: flags A (change IP) and B (change port) (RFC 5780 §7.2)."""

    TYPE = AttributeType.CHANGE_REQUEST
    change_ip: bool = False
    change_port: bool = False

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 4)
        return cls(bool(value[3] & 0x04), bool(value[3] & 0x02))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack("!3xB", 0x04 * self.change_ip | 0x02 * self.change_port)


@dataclass(frozen=True, slots=True)
class ResponsePort(KnownAttribute):
    """RESPONSE-PORT: a port, then 2 bytes of padding (RFC 5780 §7.5)."""

    TYPE = AttributeType.RESPONSE_PORT
    port: int

    def __post_init__(self) -> None:
        require(0 <= self.port <= 0xFFFF, "port out of range")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 4)
        return cls(int.from_bytes(value[:2], "big"))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack("!H2x", self.port)
