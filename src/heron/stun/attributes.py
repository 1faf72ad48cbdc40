"""STUN attributes of RFC 8489: one frozen dataclass per attribute type.

Each class knows its wire type (``TYPE``) and turns its value to bytes and back
(``encode_value`` / ``decode_value``); the TLV framing around the value lives in
``message``. Classes sharing a value shape (text, address, XOR address, opaque
bytes, integer, flag) share one base, so the codec for each shape is written
once. Constructors validate, raising ``StunLocalError``; the decoding table in
``message`` turns that, and every wire-format problem, into ``StunRemoteError``
(400 unless the RFC names a more specific code). Attributes we do not know are
kept as ``UnknownAttribute`` so the server can answer 420 (RFC 8489 §6.3.1).
"""

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar, Self

from heron.stun.errors import ErrorCode, StunLocalError, StunRemoteError

MAGIC_COOKIE = 0x2112A442
"""Fixed header word (RFC 8489 §5); also the XOR mask of addresses (§14.2)."""

_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")


class AttributeType(IntEnum):
    """Attribute types (IANA "STUN Attributes"); below 0x8000 comprehension-required."""

    MAPPED_ADDRESS = 0x0001  # RFC 8489 §14.1
    CHANGE_REQUEST = 0x0003  # RFC 5780 §7.2
    USERNAME = 0x0006  # RFC 8489 §14.3
    MESSAGE_INTEGRITY = 0x0008  # RFC 8489 §14.5
    ERROR_CODE = 0x0009  # RFC 8489 §14.8
    UNKNOWN_ATTRIBUTES = 0x000A  # RFC 8489 §14.13
    CHANNEL_NUMBER = 0x000C  # RFC 8656 §18.1
    LIFETIME = 0x000D  # RFC 8656 §18.2
    XOR_PEER_ADDRESS = 0x0012  # RFC 8656 §18.3
    DATA = 0x0013  # RFC 8656 §18.4
    REALM = 0x0014  # RFC 8489 §14.9
    NONCE = 0x0015  # RFC 8489 §14.10
    XOR_RELAYED_ADDRESS = 0x0016  # RFC 8656 §18.5
    REQUESTED_ADDRESS_FAMILY = 0x0017  # RFC 8656 §18.6, RFC 6156 §4.1.1
    EVEN_PORT = 0x0018  # RFC 8656 §18.7
    REQUESTED_TRANSPORT = 0x0019  # RFC 8656 §18.8
    DONT_FRAGMENT = 0x001A  # RFC 8656 §18.9
    MESSAGE_INTEGRITY_SHA256 = 0x001C  # RFC 8489 §14.6
    PASSWORD_ALGORITHM = 0x001D  # RFC 8489 §14.12
    USERHASH = 0x001E  # RFC 8489 §14.4
    XOR_MAPPED_ADDRESS = 0x0020  # RFC 8489 §14.2
    RESERVATION_TOKEN = 0x0022  # RFC 8656 §18.10
    PRIORITY = 0x0024  # RFC 8445 §16.1
    USE_CANDIDATE = 0x0025  # RFC 8445 §16.1
    PADDING = 0x0026  # RFC 5780 §7.6
    RESPONSE_PORT = 0x0027  # RFC 5780 §7.5
    CONNECTION_ID = 0x002A  # RFC 6062 §6.2.1
    ADDITIONAL_ADDRESS_FAMILY = 0x8000  # RFC 8656 §18.11
    ADDRESS_ERROR_CODE = 0x8001  # RFC 8656 §18.12
    PASSWORD_ALGORITHMS = 0x8002  # RFC 8489 §14.11
    ALTERNATE_DOMAIN = 0x8003  # RFC 8489 §14.16
    ICMP = 0x8004  # RFC 8656 §18.13
    SOFTWARE = 0x8022  # RFC 8489 §14.14
    ALTERNATE_SERVER = 0x8023  # RFC 8489 §14.15
    FINGERPRINT = 0x8028  # RFC 8489 §14.7
    ICE_CONTROLLED = 0x8029  # RFC 8445 §16.1
    ICE_CONTROLLING = 0x802A  # RFC 8445 §16.1
    RESPONSE_ORIGIN = 0x802B  # RFC 5780 §7.3
    OTHER_ADDRESS = 0x802C  # RFC 5780 §7.4


class AddressFamily(IntEnum):
    """Address family byte of address attributes (RFC 8489 §14.1, RFC 8656 §18.6)."""

    IPV4 = 0x01
    IPV6 = 0x02


FAMILIES = frozenset(AddressFamily)


class PasswordAlgorithmId(IntEnum):
    """Long-term key algorithms (RFC 8489 §18.5)."""

    MD5 = 0x0001
    SHA256 = 0x0002


def is_comprehension_required(attribute_type: int) -> bool:
    """Types below 0x8000 must be understood or the request refused with 420 (RFC 8489 §14)."""
    return attribute_type < 0x8000


def require(ok: bool, reason: str) -> None:
    """Constructor checks: a value we build wrong is our bug (``StunLocalError``)."""
    if not ok:
        raise StunLocalError(reason)


def expect_length(value: bytes, *allowed: int) -> None:
    """Wire checks: a value of the wrong size is the peer's fault (``StunRemoteError``)."""
    if len(value) not in allowed:
        raise StunRemoteError(f"value of {len(value)} bytes, expected {allowed}")


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StunRemoteError("text is not UTF-8") from exc


def _utf8_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StunLocalError("text cannot be encoded as UTF-8") from exc


def decode_family(byte: int, code: int = ErrorCode.BAD_REQUEST) -> AddressFamily:
    """The family byte; unknown is 400, or ``code`` where the RFC names another answer."""
    if byte not in FAMILIES:
        raise StunRemoteError(f"unknown address family {byte:#04x}", code)
    return AddressFamily(byte)


@dataclass(frozen=True, slots=True)
class Attribute(ABC):
    """One attribute of a message: its type and how its value is written."""

    @property
    @abstractmethod
    def type(self) -> int:
        """The 16-bit attribute type on the wire."""

    @abstractmethod
    def encode_value(self, transaction_id: bytes) -> bytes:
        """The value bytes, without the TLV header or padding."""


@dataclass(frozen=True, slots=True)
class UnknownAttribute(Attribute):
    """An attribute this codec does not know, kept verbatim (RFC 8489 §14)."""

    type: int = field()  # field() so the base's property is not taken as a default
    value: bytes

    def __post_init__(self) -> None:
        require(0 <= self.type <= 0xFFFF, "attribute type out of range")
        require(len(self.value) <= 0xFFFF, "attribute value too long")

    @property
    def comprehension_required(self) -> bool:
        return is_comprehension_required(self.type)

    def encode_value(self, transaction_id: bytes) -> bytes:
        return self.value


@dataclass(frozen=True, slots=True)
class KnownAttribute(Attribute):
    """An attribute from the table: its type is a class constant."""

    TYPE: ClassVar[AttributeType]

    @property
    def type(self) -> int:
        return self.TYPE

    @classmethod
    @abstractmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        """Build the attribute from its value bytes (TLV header and padding removed)."""


# --- text (RFC 8489 §14.3, §14.9, §14.10, §14.14, §14.16) ---------------------


@dataclass(frozen=True, slots=True)
class TextAttribute(KnownAttribute):
    """UTF-8 text; receivers accept more than senders may send (RFC 8489 §14.9)."""

    value: str
    MAX_BYTES: ClassVar[int] = 763  # "as long as 763 bytes when decoding them"
    MAX_SEND_BYTES: ClassVar[int] = 508  # "as long as 509 bytes when encoding them"
    MAX_SEND_CHARS: ClassVar[int] = 127  # "fewer than 128 characters"

    def __post_init__(self) -> None:
        if self.value.isascii() and len(self.value) <= self.MAX_BYTES:
            return  # as many bytes as characters: no need to encode it to know
        size = len(_utf8_bytes(self.value))
        if size > self.MAX_BYTES:
            raise StunLocalError(f"text of {size} bytes exceeds {self.MAX_BYTES}")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        return cls(_utf8(value))

    def encode_value(self, transaction_id: bytes) -> bytes:
        data = _utf8_bytes(self.value)
        if len(data) > self.MAX_SEND_BYTES or len(self.value) > self.MAX_SEND_CHARS:
            raise StunLocalError(f"{self.TYPE.name} too long to send")
        return data


@dataclass(frozen=True, slots=True)
class Username(TextAttribute):
    """USERNAME: "fewer than 509 bytes" to send, 763 accepted (RFC 8489 §14.3)."""

    TYPE = AttributeType.USERNAME
    MAX_SEND_CHARS = 508


@dataclass(frozen=True, slots=True)
class Realm(TextAttribute):
    """REALM: its presence in a request means long-term credentials (RFC 8489 §14.9)."""

    TYPE = AttributeType.REALM


@dataclass(frozen=True, slots=True)
class Nonce(TextAttribute):
    """NONCE (RFC 8489 §14.10)."""

    TYPE = AttributeType.NONCE


@dataclass(frozen=True, slots=True)
class Software(TextAttribute):
    """SOFTWARE (RFC 8489 §14.14)."""

    TYPE = AttributeType.SOFTWARE


@dataclass(frozen=True, slots=True)
class AlternateDomain(TextAttribute):
    """ALTERNATE-DOMAIN: a DNS name, so at most 255 bytes (RFC 8489 §14.16)."""

    TYPE = AttributeType.ALTERNATE_DOMAIN
    MAX_BYTES = MAX_SEND_BYTES = MAX_SEND_CHARS = 255


# --- addresses (RFC 8489 §14.1, §14.2) -----------------------------------------


@dataclass(frozen=True, slots=True)
class AddressAttribute(KnownAttribute):
    """Family, port and address, sent in clear (RFC 8489 §14.1)."""

    address: IPv4Address | IPv6Address
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.address, IPv4Address | IPv6Address):
            raise StunLocalError("not an IP address")
        if not 0 <= self.port <= 0xFFFF:
            raise StunLocalError("port out of range")

    @classmethod
    def _from_plain(cls, value: bytes) -> Self:
        expect_length(value, 8, 20)
        family = decode_family(value[1])
        expect_length(value, 8 if family is AddressFamily.IPV4 else 20)
        port = int.from_bytes(value[2:4], "big")
        ip = IPv4Address(value[4:]) if family is AddressFamily.IPV4 else IPv6Address(value[4:])
        return cls(ip, port)

    def _to_plain(self) -> bytes:
        family = AddressFamily.IPV4 if self.address.version == 4 else AddressFamily.IPV6
        return struct.pack("!BBH", 0, family, self.port) + self.address.packed

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        return cls._from_plain(value)

    def encode_value(self, transaction_id: bytes) -> bytes:
        return self._to_plain()


def _xor(value: bytes, transaction_id: bytes) -> bytes:
    """XOR port and address with the cookie and transaction id (RFC 8489 §14.2).

    The same operation encodes and decodes: the port takes the cookie's top
    16 bits, an IPv4 address the cookie, an IPv6 address cookie + transaction id.
    Bytes beyond the mask's 18 are dropped (the length check then refuses them).
    The XOR is done on whole integers: byte by byte, it was a fifth of an
    Allocate answer's encoding.
    """
    size = min(len(value) - 2, 18)
    if size <= 0:
        return value[:2]
    mask = (_COOKIE_BYTES[:2] + _COOKIE_BYTES + transaction_id)[:size]
    xored = int.from_bytes(value[2 : 2 + size], "big") ^ int.from_bytes(mask, "big")
    return value[:2] + xored.to_bytes(size, "big")


@dataclass(frozen=True, slots=True)
class XorAddressAttribute(AddressAttribute):
    """An address XORed so that NATs rewriting addresses in payloads leave it alone."""

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        return cls._from_plain(_xor(value, transaction_id))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return _xor(self._to_plain(), transaction_id)


@dataclass(frozen=True, slots=True)
class MappedAddress(AddressAttribute):
    """MAPPED-ADDRESS: kept for RFC 3489 clients (RFC 8489 §14.1)."""

    TYPE = AttributeType.MAPPED_ADDRESS


@dataclass(frozen=True, slots=True)
class AlternateServer(AddressAttribute):
    """ALTERNATE-SERVER, sent with 300 Try Alternate (RFC 8489 §14.15)."""

    TYPE = AttributeType.ALTERNATE_SERVER


@dataclass(frozen=True, slots=True)
class XorMappedAddress(XorAddressAttribute):
    """XOR-MAPPED-ADDRESS: the client's reflexive address (RFC 8489 §14.2)."""

    TYPE = AttributeType.XOR_MAPPED_ADDRESS


# --- opaque bytes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BytesAttribute(KnownAttribute):
    """Bytes whose length must lie in ``SIZES``."""

    value: bytes
    SIZES: ClassVar[range] = range(0x10000)

    def __post_init__(self) -> None:
        if len(self.value) not in self.SIZES:
            raise StunLocalError(f"value of {len(self.value)} bytes")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        return cls(value)

    def encode_value(self, transaction_id: bytes) -> bytes:
        return self.value


@dataclass(frozen=True, slots=True)
class UserHash(BytesAttribute):
    """USERHASH: SHA-256 of "username:realm" (RFC 8489 §14.4)."""

    TYPE = AttributeType.USERHASH
    SIZES = range(32, 33)


@dataclass(frozen=True, slots=True)
class MessageIntegrity(BytesAttribute):
    """MESSAGE-INTEGRITY: HMAC-SHA1, computed by ``Message.encode`` (RFC 8489 §14.5)."""

    TYPE = AttributeType.MESSAGE_INTEGRITY
    SIZES = range(20, 21)


@dataclass(frozen=True, slots=True)
class MessageIntegritySha256(BytesAttribute):
    """MESSAGE-INTEGRITY-SHA256: "at least 16 bytes ... a multiple of 4" (RFC 8489 §14.6)."""

    TYPE = AttributeType.MESSAGE_INTEGRITY_SHA256
    SIZES = range(16, 33, 4)


# --- integers and flags ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntegerAttribute(KnownAttribute):
    """An unsigned big-endian integer of ``SIZE`` bytes."""

    value: int
    SIZE: ClassVar[int] = 4

    def __post_init__(self) -> None:
        if not 0 <= self.value < 1 << (8 * self.SIZE):  # not require(): a call per attribute
            raise StunLocalError("integer out of range")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, cls.SIZE)
        return cls(int.from_bytes(value, "big"))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return self.value.to_bytes(self.SIZE, "big")


@dataclass(frozen=True, slots=True)
class Fingerprint(IntegerAttribute):
    """FINGERPRINT: CRC-32 XOR 0x5354554e, computed by ``Message.encode`` (RFC 8489 §14.7)."""

    TYPE = AttributeType.FINGERPRINT


@dataclass(frozen=True, slots=True)
class FlagAttribute(KnownAttribute):
    """An attribute whose presence is the whole message: its value is empty."""

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        expect_length(value, 0)
        return cls()

    def encode_value(self, transaction_id: bytes) -> bytes:
        return b""


# --- structured values -----------------------------------------------------------


def encode_error(prefix: int, code: int, reason: str) -> bytes:
    """Class and number of an error code, then the phrase (RFC 8489 §14.8)."""
    phrase = _utf8_bytes(reason)
    require(len(reason) < 128 and len(phrase) <= 508, "reason phrase too long to send")
    return struct.pack("!BBBB", prefix, 0, code // 100, code % 100) + phrase


def decode_error(value: bytes) -> tuple[int, str]:
    if len(value) < 4:
        raise StunRemoteError("error code shorter than 4 bytes")
    klass, number = value[2] & 0x07, value[3]
    if not 3 <= klass <= 6 or number > 99:
        raise StunRemoteError(f"invalid error code class {klass} number {number}")
    return klass * 100 + number, _utf8(value[4:])


def check_error(code: int, reason: str) -> None:
    if not 300 <= code <= 699:
        raise StunLocalError(f"error code {code} outside 300-699")
    require(len(_utf8_bytes(reason)) <= 763, "reason phrase too long")


@dataclass(frozen=True, slots=True)
class ErrorCodeAttribute(KnownAttribute):
    """ERROR-CODE: code 300-699 and a reason phrase (RFC 8489 §14.8)."""

    TYPE = AttributeType.ERROR_CODE
    code: int
    reason: str = ""

    def __post_init__(self) -> None:
        check_error(self.code, self.reason)

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        return cls(*decode_error(value))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return encode_error(0, self.code, self.reason)


@dataclass(frozen=True, slots=True)
class UnknownAttributes(KnownAttribute):
    """UNKNOWN-ATTRIBUTES: the types a 420 response refuses (RFC 8489 §14.13)."""

    TYPE = AttributeType.UNKNOWN_ATTRIBUTES
    types: tuple[int, ...]

    def __post_init__(self) -> None:
        require(all(0 <= t <= 0xFFFF for t in self.types), "attribute type out of range")
        require(len(self.types) <= 0x7FFF, "too many attribute types")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        if len(value) % 2:
            raise StunRemoteError("odd length")
        return cls(struct.unpack(f"!{len(value) // 2}H", value))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return struct.pack(f"!{len(self.types)}H", *self.types)


def _algorithm_entries(value: bytes) -> list[tuple[int, bytes]]:
    """Algorithm, parameters length, parameters padded to 4 bytes (RFC 8489 §14.11)."""
    entries, offset = [], 0
    while offset < len(value):
        if offset + 4 > len(value):
            raise StunRemoteError("truncated password algorithm")
        algorithm, size = struct.unpack_from("!HH", value, offset)
        end = offset + 4 + size
        if end + (-size % 4) > len(value):
            raise StunRemoteError("password algorithm parameters run past the value")
        entries.append((algorithm, value[offset + 4 : end]))
        offset = end + (-size % 4)
    return entries


@dataclass(frozen=True, slots=True)
class PasswordAlgorithm(KnownAttribute):
    """PASSWORD-ALGORITHM: the algorithm the client chose (RFC 8489 §14.12)."""

    TYPE = AttributeType.PASSWORD_ALGORITHM
    algorithm: int
    parameters: bytes = b""

    def __post_init__(self) -> None:
        require(0 <= self.algorithm <= 0xFFFF, "algorithm out of range")
        require(len(self.parameters) <= 0xFFF0, "parameters too long")

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        entries = _algorithm_entries(value)
        if len(entries) != 1:
            raise StunRemoteError(f"{len(entries)} algorithms, expected one")
        return cls(*entries[0])

    def encode_value(self, transaction_id: bytes) -> bytes:
        size = len(self.parameters)
        return struct.pack("!HH", self.algorithm, size) + self.parameters + bytes(-size % 4)


@dataclass(frozen=True, slots=True)
class PasswordAlgorithms(KnownAttribute):
    """PASSWORD-ALGORITHMS: what the server offers, in order of preference (RFC 8489 §14.11)."""

    TYPE = AttributeType.PASSWORD_ALGORITHMS
    algorithms: tuple[PasswordAlgorithm, ...]

    @classmethod
    def decode_value(cls, value: bytes, transaction_id: bytes) -> Self:
        return cls(tuple(PasswordAlgorithm(a, p) for a, p in _algorithm_entries(value)))

    def encode_value(self, transaction_id: bytes) -> bytes:
        return b"".join(a.encode_value(transaction_id) for a in self.algorithms)
