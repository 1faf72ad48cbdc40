"""Telling STUN from ChannelData, and cutting a byte stream into either (RFC 8656 §12).

TURN clients send STUN messages and ChannelData frames on the same 5-tuple;
the first two bits tell them apart (0b00 STUN, 0b01 ChannelData, RFC 8656
§12.4; RFC 7983 §7 for the wider demultiplexing picture). On TCP and TLS both
are self-delimiting (RFC 8489 §6.2.2, RFC 8656 §12.5), which ``next_frame_size``
and ``StreamFramer`` turn into whole frames for ``Message.decode`` and
``ChannelData.decode``.
"""

import struct
from dataclasses import dataclass
from enum import Enum

from heron.stun.attributes import MAGIC_COOKIE, require
from heron.stun.errors import StunLocalError, StunRemoteError
from heron.stun.extensions import CHANNEL_MAX, CHANNEL_MIN
from heron.stun.message import HEADER_SIZE, MAX_MESSAGE_SIZE

_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")


class PacketKind(Enum):
    """What a datagram (or the start of a stream frame) carries."""

    STUN = "stun"
    CHANNEL_DATA = "channel-data"
    OTHER = "other"


# An Enum member looked up on its class costs more than the comparison it feeds.
_STUN, _CHANNEL_DATA, _OTHER = PacketKind.STUN, PacketKind.CHANNEL_DATA, PacketKind.OTHER

KIND_BY_FIRST_BYTE: tuple[PacketKind, ...] = tuple(
    _STUN if byte < 0x40 else _CHANNEL_DATA if byte <= CHANNEL_MAX >> 8 else _OTHER
    for byte in range(256)
)
"""What a packet can be by its first byte alone (RFC 8656 §12.4): the demultiplexing
rule in one place. Per-packet paths index it, which costs what an inline comparison
does; :func:`classify` adds the magic cookie check for STUN."""


def classify(data: bytes) -> PacketKind:
    """Sort a datagram by its first byte, and for STUN by its magic cookie too.

    The cookie check keeps TLS and DTLS records (first byte 20-63, also 0b00)
    from passing for STUN (RFC 8489 §5: the cookie "aids in distinguishing STUN
    packets from packets of other protocols"). A server that decodes what it takes
    for STUN need not check it first: ``Message.decode`` refuses a wrong cookie.
    """
    if not data:
        return _OTHER
    kind = KIND_BY_FIRST_BYTE[data[0]]
    if kind is _STUN and not (len(data) >= HEADER_SIZE and data[4:8] == _COOKIE_BYTES):
        return _OTHER
    return kind


@dataclass(frozen=True, slots=True)
class ChannelData:
    """A ChannelData message: 4-byte header, then the application data (RFC 8656 §12.4)."""

    channel: int
    data: bytes

    def __post_init__(self) -> None:
        if not CHANNEL_MIN <= self.channel <= CHANNEL_MAX:
            raise StunLocalError(f"channel {self.channel:#x} is not a channel number")
        require(len(self.data) <= 0xFFFF, "ChannelData longer than 65535 bytes")

    @classmethod
    def decode(cls, frame: bytes) -> "ChannelData":
        """Decode a datagram or a stream frame, padding included or not.

        A datagram shorter than 4 + Length is dropped (RFC 8656 §12.6); more
        than 3 bytes beyond it cannot be padding.
        """
        if len(frame) < 4:
            raise StunRemoteError("ChannelData shorter than its header")
        channel, length = struct.unpack_from("!HH", frame)
        if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
            raise StunRemoteError(f"channel number {channel:#06x} out of range")
        if not 4 + length <= len(frame) <= 4 + length + 3:
            raise StunRemoteError(f"ChannelData length {length} does not match {len(frame)}")
        return cls(channel, bytes(frame[4 : 4 + length]))

    def encode(self, *, stream: bool = False) -> bytes:
        """Header and data; padded to 4 bytes on TCP/TLS, where it "MUST" be (§12.5)."""
        padding = bytes(-len(self.data) % 4) if stream else b""
        return struct.pack("!HH", self.channel, len(self.data)) + self.data + padding


def next_frame_size(buffer: bytes | bytearray, *, max_size: int = MAX_MESSAGE_SIZE) -> int | None:
    """Bytes the frame at the start of ``buffer`` occupies, or None if 4 more are needed.

    Raises ``StunRemoteError`` when the stream can hold neither STUN nor
    ChannelData there; the connection is then beyond repair and must close.
    """
    if not buffer:
        return None
    kind = KIND_BY_FIRST_BYTE[buffer[0]]
    if kind is _OTHER:
        raise StunRemoteError(f"first byte {buffer[0]:#04x} is neither STUN nor ChannelData")
    if len(buffer) < 4:
        return None
    length = int.from_bytes(buffer[2:4], "big")
    if kind is _STUN:
        if length % 4:
            raise StunRemoteError("STUN length is not a multiple of 4 (RFC 8489 §5)")
        size = HEADER_SIZE + length
    else:
        size = 4 + length + (-length % 4)
    if size > max_size:
        raise StunRemoteError(f"frame of {size} bytes exceeds {max_size}")
    return size


class StreamFramer:
    """Cuts a TCP/TLS byte stream into whole STUN messages and ChannelData frames.

    Holds at most one incomplete frame (bounded by ``max_size``) plus the last
    chunk fed. Feed it the bytes a mux already peeked, then whatever arrives.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return every frame it completed, in order."""
        self._buffer += data
        frames: list[bytes] = []
        while (size := next_frame_size(self._buffer, max_size=self._max_size)) is not None:
            if len(self._buffer) < size:
                break
            frames.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return frames

    def rest(self) -> bytes:
        """Take what is buffered: the stream stops being STUN (RFC 6062 ConnectionBind)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)
