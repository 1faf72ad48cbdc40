"""STUN messages: header, attribute framing, integrity and fingerprint (RFC 8489 §5, §14).

``Message.decode`` turns one whole message into a frozen ``Message``;
``Message.encode`` writes it back, adding MESSAGE-INTEGRITY(-SHA256) and
FINGERPRINT on request. Both are bounded (``MAX_MESSAGE_SIZE``,
``MAX_ATTRIBUTES``) and raise only the ``errors`` tree. Transaction ids are
arguments: the codec holds no randomness, clock or socket.
"""

import hmac
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Final, TypeGuard, TypeVar

from heron.stun.attributes import (
    MAGIC_COOKIE,
    AlternateDomain,
    AlternateServer,
    Attribute,
    AttributeType,
    ErrorCodeAttribute,
    Fingerprint,
    KnownAttribute,
    MappedAddress,
    MessageIntegrity,
    MessageIntegritySha256,
    Nonce,
    PasswordAlgorithm,
    PasswordAlgorithms,
    Realm,
    Software,
    UnknownAttribute,
    UnknownAttributes,
    UserHash,
    Username,
    XorMappedAddress,
    require,
)
from heron.stun.errors import ErrorCode, StunError, StunLocalError, StunRemoteError
from heron.stun.extensions import (
    AdditionalAddressFamily,
    AddressErrorCode,
    ChangeRequest,
    ChannelNumber,
    ConnectionId,
    Data,
    DontFragment,
    EvenPort,
    IceControlled,
    IceControlling,
    Icmp,
    Lifetime,
    OtherAddress,
    Padding,
    Priority,
    RequestedAddressFamily,
    RequestedTransport,
    ReservationToken,
    ResponseOrigin,
    ResponsePort,
    UseCandidate,
    XorPeerAddress,
    XorRelayedAddress,
)
from heron.stun.integrity import Integrity, fingerprint_crc, hmac_sha1, hmac_sha256

_TLV_HEADER = struct.Struct("!HH")
_MESSAGE_HEADER = struct.Struct("!HHI")
_SHA256_SIZES = MessageIntegritySha256.SIZES

HEADER_SIZE: Final = 20
MAX_MESSAGE_SIZE: Final = HEADER_SIZE + 0xFFFC
"""The largest message the 16-bit, 4-byte-aligned length field can describe."""
MAX_ATTRIBUTES: Final = 64
"""Real messages carry a dozen; past this a message is an attack, not a request."""

_TABLE: Mapping[int, type[KnownAttribute]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (
            # RFC 8489 §14
            MappedAddress,
            XorMappedAddress,
            Username,
            UserHash,
            MessageIntegrity,
            MessageIntegritySha256,
            Fingerprint,
            ErrorCodeAttribute,
            Realm,
            Nonce,
            PasswordAlgorithms,
            PasswordAlgorithm,
            UnknownAttributes,
            Software,
            AlternateServer,
            AlternateDomain,
            # RFC 8656 §18, RFC 6156, RFC 6062 §6.2
            ChannelNumber,
            Lifetime,
            XorPeerAddress,
            Data,
            XorRelayedAddress,
            RequestedAddressFamily,
            EvenPort,
            RequestedTransport,
            DontFragment,
            ReservationToken,
            AdditionalAddressFamily,
            AddressErrorCode,
            Icmp,
            ConnectionId,
            # RFC 5780 §7, RFC 8445 §16.1
            ChangeRequest,
            ResponseOrigin,
            OtherAddress,
            Padding,
            ResponsePort,
            Priority,
            UseCandidate,
            IceControlled,
            IceControlling,
        )
    }
)

_DECODERS: dict[int, type[KnownAttribute]] = dict(_TABLE)
"""``_TABLE`` as a plain dict: a mapping proxy's ``get`` costs more, once per attribute."""

_ALLOWED_AFTER: Mapping[int, frozenset[int]] = MappingProxyType(
    {
        # "agents MUST ignore all other attributes that follow MESSAGE-INTEGRITY,
        # with the exception of the MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
        # attributes" (RFC 8489 §14.5); likewise after -SHA256 (§14.6), and
        # FINGERPRINT is the last attribute (§14.7).
        AttributeType.MESSAGE_INTEGRITY: frozenset(
            {AttributeType.MESSAGE_INTEGRITY_SHA256, AttributeType.FINGERPRINT}
        ),
        AttributeType.MESSAGE_INTEGRITY_SHA256: frozenset({AttributeType.FINGERPRINT}),
        AttributeType.FINGERPRINT: frozenset(),
    }
)


_PRESENT: Mapping[tuple[bool, bool], Integrity] = MappingProxyType(
    {
        (False, False): Integrity.NONE,
        (True, False): Integrity.SHA1,
        (False, True): Integrity.SHA256,
        (True, True): Integrity.SHA1 | Integrity.SHA256,
    }
)
"""(MESSAGE-INTEGRITY present, -SHA256 present) -> the flag: a ``Flag``'s ``|`` and ``in``
are Python-level calls, and every signed request and answer asked them twice."""
_PARTS: Mapping[Integrity, tuple[bool, bool]] = MappingProxyType(
    {flag: pair for pair, flag in _PRESENT.items()}
)

_INTEGRITY_TYPES = frozenset(
    {AttributeType.MESSAGE_INTEGRITY, AttributeType.MESSAGE_INTEGRITY_SHA256}
)


class Method(IntEnum):
    """STUN methods (IANA "STUN Methods")."""

    BINDING = 0x001  # RFC 8489 §18.2
    ALLOCATE = 0x003  # RFC 8656 §17
    REFRESH = 0x004  # RFC 8656 §17
    SEND = 0x006  # RFC 8656 §17
    DATA = 0x007  # RFC 8656 §17
    CREATE_PERMISSION = 0x008  # RFC 8656 §17
    CHANNEL_BIND = 0x009  # RFC 8656 §17
    CONNECT = 0x00A  # RFC 6062 §6.1
    CONNECTION_BIND = 0x00B  # RFC 6062 §6.1
    CONNECTION_ATTEMPT = 0x00C  # RFC 6062 §6.1


class MessageClass(IntEnum):
    """The two class bits C1 C0 of the message type (RFC 8489 §5)."""

    REQUEST = 0b00
    INDICATION = 0b01
    SUCCESS_RESPONSE = 0b10
    ERROR_RESPONSE = 0b11


_METHODS = frozenset(Method)
_ERROR_CODES = frozenset(ErrorCode)

A = TypeVar("A", bound=Attribute)

_DECODED: frozenset[type[Attribute]] = frozenset({*_TABLE.values(), UnknownAttribute})
_INDEXED: frozenset[type[Attribute]] = frozenset(
    kind for kind in _DECODED if not any(o is not kind and issubclass(o, kind) for o in _DECODED)
)
"""Classes ``decode`` makes that no other such class derives from: for these, a decoded
message's attribute of that exact class is the answer to ``find``, so it is looked up in
the message's index instead of testing every attribute (the Allocate path calls ``find``
about twenty times a request; that was a tenth of the server's work)."""


def _is_a(attribute: Attribute, kind: type[A]) -> TypeGuard[A]:
    """``isinstance`` without ``ABCMeta.__instancecheck__``, a Python-level call per test.

    No attribute class is a registered virtual subclass, so the MRO says it all.
    """
    return kind in type(attribute).__mro__


def decode_attribute(attribute_type: int, value: bytes, transaction_id: bytes) -> Attribute:
    """Decode one attribute value through the table; unknown types are kept verbatim.

    Raises ``StunRemoteError`` (400, or the code the attribute's RFC names).
    """
    cls = _DECODERS.get(attribute_type)
    if cls is None:
        return UnknownAttribute(attribute_type, value)
    try:
        return cls.decode_value(value, transaction_id)
    except StunError as exc:
        code = exc.code if isinstance(exc, StunRemoteError) else ErrorCode.BAD_REQUEST
        raise StunRemoteError(f"{cls.TYPE.name}: {exc.reason}", code) from exc


def _message_type(method: int, message_class: MessageClass) -> int:
    """Interleave the bits as M11-M7 C1 M6-M4 C0 M3-M0 (RFC 8489 §5, figure 3)."""
    return (
        (method & 0x000F)
        | (method & 0x0070) << 1
        | (method & 0x0F80) << 2
        | (message_class & 0b01) << 4
        | (message_class & 0b10) << 7
    )


def _split_message_type(message_type: int) -> tuple[int, MessageClass]:
    split = _SPLIT.get(message_type)
    if split is None:
        method = (
            (message_type & 0x000F) | (message_type & 0x00E0) >> 1 | (message_type & 0x3E00) >> 2
        )
        klass = MessageClass((message_type >> 4) & 0b01 | (message_type >> 7) & 0b10)
        split = _SPLIT[message_type] = (Method(method) if method in _METHODS else method), klass
    return split


_SPLIT: dict[int, tuple[int, MessageClass]] = {}
"""Message types seen, split (at most 2**14 of them): making the enum members is most of
the work, and a server sees the same few types over and over."""


def _walk(data: bytes, max_attributes: int) -> list[tuple[int, int, bytes]]:
    """Type, offset and value of each attribute honoured; the lengths must tile the message.

    ``data`` is a whole message whose length is a multiple of 4, so every
    4-aligned offset short of the end has room for an attribute header. Every
    attribute counts towards ``max_attributes`` and must fit, but what follows the
    integrity attributes and FINGERPRINT is left out (``_ALLOWED_AFTER``).
    """
    kept: list[tuple[int, int, bytes]] = []
    allowed: frozenset[int] | None = None
    unpack = _TLV_HEADER.unpack_from
    offset = HEADER_SIZE
    end_of_message = len(data)
    count = 0
    while offset < end_of_message:
        if count == max_attributes:
            raise StunRemoteError(f"more than {max_attributes} attributes")
        count += 1
        attribute_type, size = unpack(data, offset)
        end = offset + 4 + size
        if end > end_of_message:
            raise StunRemoteError(f"attribute {attribute_type:#06x} runs past the message end")
        if allowed is None or attribute_type in allowed:
            kept.append((attribute_type, offset, data[offset + 4 : end]))
            if attribute_type in _ALLOWED_AFTER:
                allowed = _ALLOWED_AFTER[attribute_type]
        offset = end + (-size % 4)
    return kept


def _covered(data: bytes, offset: int, attribute_size: int) -> bytes:
    """What a checksum at ``offset`` covers: the message before it, with the header
    length rewritten to end just after the checksum attribute (RFC 8489 §14.5)."""
    length = offset + attribute_size - HEADER_SIZE
    return data[:2] + length.to_bytes(2, "big") + data[4:offset]


def _check_fingerprint(data: bytes, honoured: list[tuple[int, int, bytes]]) -> None:
    if not honoured or honoured[-1][0] != AttributeType.FINGERPRINT:
        return
    _, offset, value = honoured[-1]
    if value != fingerprint_crc(_covered(data, offset, 8)).to_bytes(4, "big"):
        raise StunRemoteError("FINGERPRINT mismatch: not a STUN message (RFC 8489 §14.7)")


def _tlv(attribute_type: int, value: bytes, pad_byte: int = 0) -> bytes:
    size = len(value)
    if size > 0xFFFF:
        raise StunLocalError(f"attribute {attribute_type:#06x} value too long")
    padding = -size % 4
    header = _TLV_HEADER.pack(attribute_type, size)
    if not padding:
        return header + value
    return header + value + (bytes((pad_byte,)) * padding if pad_byte else bytes(padding))


def _with_header(message_type: int, transaction_id: bytes, body: bytes, extra: int) -> bytes:
    """The message so far, its length counting ``extra`` bytes of an attribute to come
    (what a checksum covers, RFC 8489 §14.5), or 0 for the finished message."""
    length = len(body) + extra
    if length > MAX_MESSAGE_SIZE - HEADER_SIZE:
        raise StunLocalError(f"message body of {length} bytes")
    return _MESSAGE_HEADER.pack(message_type, length, MAGIC_COOKIE) + transaction_id + body


@dataclass(frozen=True, slots=True)
class Message:
    """One STUN message (RFC 8489 §5).

    ``method`` is a ``Method`` when known, else the raw 12-bit number, so a
    server can still answer an unknown method. ``raw`` holds the bytes a
    decoded message came from: integrity is checked over them, never over a
    re-encoding.
    """

    method: int
    message_class: MessageClass
    transaction_id: bytes
    attributes: tuple[Attribute, ...] = ()
    raw: bytes = field(default=b"", repr=False, compare=False)
    index: Mapping[type[Attribute], Attribute] | None = field(
        default=None, repr=False, compare=False
    )
    """Set by ``decode``: the first attribute of each class, for ``find``. Like ``raw``
    and ``checksums`` it describes the decoded bytes: a message made from another with
    other attributes must not carry it over (``find`` then tests every attribute)."""
    checksums: tuple[tuple[int, int, bytes], ...] = field(default=(), repr=False, compare=False)
    """Set by ``decode``: type, offset and value of each MESSAGE-INTEGRITY(-SHA256) honoured,
    so ``verify_integrity`` need not walk the attributes again."""

    def __post_init__(self) -> None:
        if not 0 <= self.method <= 0xFFF:
            raise StunLocalError(f"method {self.method:#x} is not 12 bits")
        if len(self.transaction_id) != 12:
            raise StunLocalError("transaction id must be 12 bytes")

    @classmethod
    def decode(
        cls,
        data: bytes,
        *,
        max_size: int = MAX_MESSAGE_SIZE,
        max_attributes: int = MAX_ATTRIBUTES,
    ) -> "Message":
        """Decode one whole message (a datagram, or a frame cut by ``framing``).

        Header, attribute framing and FINGERPRINT failures mean the bytes are
        not STUN and leave ``StunRemoteError.request`` None: they are dropped
        (RFC 8489 §6.3). A request whose attribute values do not decode gets
        ``request`` set, so the server can answer it.
        """
        data = bytes(data)
        if len(data) > max_size:
            raise StunRemoteError(f"message of {len(data)} bytes exceeds {max_size}")
        if len(data) < HEADER_SIZE:
            raise StunRemoteError("shorter than a STUN header")
        message_type, length, cookie = _MESSAGE_HEADER.unpack_from(data)
        if message_type & 0xC000:
            raise StunRemoteError("the two most significant bits are not zero (RFC 8489 §5)")
        if cookie != MAGIC_COOKIE:
            raise StunRemoteError("wrong magic cookie (RFC 8489 §5)")
        if length % 4 or HEADER_SIZE + length != len(data):
            raise StunRemoteError(f"length field {length} does not match {len(data)} bytes")
        honoured = _walk(data, max_attributes)
        _check_fingerprint(data, honoured)
        method, klass = _split_message_type(message_type)
        transaction_id = data[8:HEADER_SIZE]
        try:
            attributes = tuple([decode_attribute(t, v, transaction_id) for t, _, v in honoured])
        except StunRemoteError as exc:
            if klass is MessageClass.REQUEST:
                exc.request = cls(method, klass, transaction_id)
            raise
        index = {type(attribute): attribute for attribute in reversed(attributes)}
        checksums = tuple(entry for entry in honoured if entry[0] in _INTEGRITY_TYPES)
        return cls(method, klass, transaction_id, attributes, data, index, checksums)

    def encode(
        self,
        key: bytes | None = None,
        *,
        integrity: Integrity = Integrity.SHA1,
        sha256_length: int = 32,
        fingerprint: bool = False,
        pad_byte: int = 0,
    ) -> bytes:
        """The message on the wire.

        With ``key``, append the ``integrity`` attributes (RFC 8489 §14.5,
        §14.6; a truncated ``sha256_length`` only where the usage allows it);
        then FINGERPRINT if asked (§14.7). Those three are computed here, never
        taken from ``attributes``. Padding is zeros; ``pad_byte`` exists for the
        RFC 5769 vectors, which pad with spaces to show receivers ignore it.
        """
        if not 0 <= pad_byte <= 0xFF:
            raise StunLocalError("pad byte out of range")
        if sha256_length not in _SHA256_SIZES:
            raise StunLocalError("bad SHA-256 truncation")
        transaction_id = self.transaction_id
        parts: list[bytes] = []
        for attribute in self.attributes:
            attribute_type = attribute.type
            if attribute_type in _ALLOWED_AFTER:
                raise StunLocalError(
                    f"{AttributeType(attribute_type).name} is computed by encode()"
                )
            value = attribute.encode_value(transaction_id)
            parts.append(_tlv(attribute_type, value, pad_byte))
        body = b"".join(parts)
        message_type = _message_type(self.method, self.message_class)
        if key is not None:
            sha1, sha256 = _PARTS[integrity]
            if sha1:
                covered = _with_header(message_type, transaction_id, body, 24)
                body += _tlv(AttributeType.MESSAGE_INTEGRITY, hmac_sha1(key, covered))
            if sha256:
                covered = _with_header(message_type, transaction_id, body, 4 + sha256_length)
                mac = hmac_sha256(key, covered, sha256_length)
                body += _tlv(AttributeType.MESSAGE_INTEGRITY_SHA256, mac)
        if fingerprint:
            crc = fingerprint_crc(_with_header(message_type, transaction_id, body, 8))
            body += _tlv(AttributeType.FINGERPRINT, crc.to_bytes(4, "big"))
        return _with_header(message_type, transaction_id, body, 0)

    def find(self, kind: type[A]) -> A | None:
        """The first attribute of class ``kind``, or None."""
        if self.index is not None and kind in _INDEXED:
            return self.index.get(kind)  # type: ignore[return-value]  # the key is its class
        for attribute in self.attributes:
            if _is_a(attribute, kind):
                return attribute
        return None

    def find_all(self, kind: type[A]) -> tuple[A, ...]:
        """Every attribute of class ``kind`` (CreatePermission may repeat XOR-PEER-ADDRESS)."""
        return tuple(a for a in self.attributes if _is_a(a, kind))

    def unknown_required(self) -> tuple[int, ...]:
        """Unknown comprehension-required types, for the 420 answer (RFC 8489 §6.3.1)."""
        if self.index is not None and UnknownAttribute not in self.index:
            return ()
        return tuple(
            dict.fromkeys(
                a.type
                for a in self.attributes
                if _is_a(a, UnknownAttribute) and a.comprehension_required
            )
        )

    @property
    def integrity(self) -> Integrity:
        """The integrity attributes present, so a response can use the same (RFC 8489 §9.2.4)."""
        sha1 = self.find(MessageIntegrity) is not None
        return _PRESENT[sha1, self.find(MessageIntegritySha256) is not None]

    def verify_integrity(self, key: bytes) -> bool:
        """Check the message's HMAC over the bytes it was decoded from.

        MESSAGE-INTEGRITY-SHA256 is checked when present, since it also covers
        a MESSAGE-INTEGRITY before it; else MESSAGE-INTEGRITY. False when there
        is neither, or the message was built rather than decoded.
        """
        for attribute_type, offset, value in reversed(self.checksums):
            if attribute_type == AttributeType.MESSAGE_INTEGRITY_SHA256:
                covered = _covered(self.raw, offset, 4 + len(value))
                return hmac.compare_digest(hmac_sha256(key, covered, len(value)), value)
            if attribute_type == AttributeType.MESSAGE_INTEGRITY:
                covered = _covered(self.raw, offset, 4 + len(value))
                return hmac.compare_digest(hmac_sha1(key, covered), value)
        return False

    def success_response(self, attributes: Iterable[Attribute] = ()) -> "Message":
        """A success response to this request, same method and transaction id."""
        return self._response(MessageClass.SUCCESS_RESPONSE, tuple(attributes))

    def error_response(
        self, code: int, reason: str | None = None, attributes: Iterable[Attribute] = ()
    ) -> "Message":
        """An error response with ERROR-CODE first; the reason defaults to the IANA phrase."""
        if reason is None:
            reason = ErrorCode(code).phrase if code in _ERROR_CODES else ""
        error = ErrorCodeAttribute(code, reason)
        return self._response(MessageClass.ERROR_RESPONSE, (error, *attributes))

    def _response(
        self, message_class: MessageClass, attributes: tuple[Attribute, ...]
    ) -> "Message":
        require(self.message_class is MessageClass.REQUEST, "only requests are answered")
        return Message(self.method, message_class, self.transaction_id, attributes)
