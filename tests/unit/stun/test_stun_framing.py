"""ChannelData and stream framing (RFC 8656 §12, RFC 8489 §6.2.2), fed whole and byte by byte."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.stun import (
    ChannelData,
    Data,
    Message,
    MessageClass,
    Method,
    PacketKind,
    StreamFramer,
    StunLocalError,
    StunRemoteError,
    classify,
    next_frame_size,
)

VECTORS = sorted((Path(__file__).parents[2] / "vectors" / "rfc5769").glob("*.bin"))
TLS_CLIENT_HELLO_START = bytes.fromhex("160301020001") + bytes(20)
DTLS_RECORD_START = bytes.fromhex("16fefd") + bytes(20)


def stream_of_frames() -> list[bytes]:
    """A TURN-over-TCP conversation: STUN messages between padded ChannelData frames."""
    frames = [path.read_bytes() for path in VECTORS]
    send = Message(Method.SEND, MessageClass.INDICATION, bytes(12), (Data(b"hello"),))
    frames.insert(1, send.encode(fingerprint=True))
    for channel, size in [(0x4000, 0), (0x4001, 1), (0x4FFF, 3), (0x4ABC, 4), (0x4002, 1001)]:
        frames.insert(
            size % 5, ChannelData(channel, bytes([size % 256]) * size).encode(stream=True)
        )
    return frames


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_rfc8656_12_4_classify_stun_by_first_bits_and_cookie(path: Path) -> None:
    assert classify(path.read_bytes()) is PacketKind.STUN


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (ChannelData(0x4000, b"x").encode(), PacketKind.CHANNEL_DATA),
        (ChannelData(0x4FFF, b"").encode(), PacketKind.CHANNEL_DATA),
        (b"\x80\x00\x00\x00", PacketKind.OTHER),  # above the RFC 5766 channel range
        (b"\x80" + bytes(11), PacketKind.OTHER),  # RTP
        (TLS_CLIENT_HELLO_START, PacketKind.OTHER),  # 0b00 too, but no magic cookie
        (DTLS_RECORD_START, PacketKind.OTHER),
        (b"\x00\x01\x00\x00\x21\x12\xa4\x42", PacketKind.OTHER),  # shorter than a header
        (b"", PacketKind.OTHER),
    ],
)
def test_rfc8656_12_4_classify_channel_data_and_others(data: bytes, kind: PacketKind) -> None:
    assert classify(data) is kind


def test_rfc8656_12_4_channel_data_header() -> None:
    frame = ChannelData(0x4001, b"abcde")

    assert frame.encode() == b"\x40\x01\x00\x05abcde"
    assert ChannelData.decode(frame.encode()) == frame


def test_rfc8656_12_5_channel_data_padded_on_streams_only() -> None:
    frame = ChannelData(0x4001, b"abcde")

    assert frame.encode(stream=True) == b"\x40\x01\x00\x05abcde\x00\x00\x00"
    assert ChannelData.decode(frame.encode(stream=True)) == frame


@pytest.mark.parametrize(
    "datagram",
    [
        b"\x40\x01\x00",  # shorter than the header
        b"\x40\x01\x00\x05abcd",  # shorter than 4 + Length: discarded (RFC 8656 §12.6)
        b"\x40\x01\x00\x01abcde",  # more than 3 bytes beyond: not padding
        b"\x80\x00\x00\x00",  # not a channel
        b"\x3f\xff\x00\x00",
    ],
)
def test_rfc8656_12_6_malformed_channel_data_is_refused(datagram: bytes) -> None:
    with pytest.raises(StunRemoteError):
        ChannelData.decode(datagram)


def test_rfc8656_12_channel_numbers_and_size_are_validated_when_built() -> None:
    for channel in (0x3FFF, 0x8000):
        with pytest.raises(StunLocalError):
            ChannelData(channel, b"")
    with pytest.raises(StunLocalError):
        ChannelData(0x4000, bytes(0x10000))


def test_rfc8489_6_2_2_next_frame_size() -> None:
    stun = VECTORS[0].read_bytes()

    assert next_frame_size(b"") is None
    assert next_frame_size(stun[:3]) is None
    assert next_frame_size(stun[:4]) == len(stun)
    assert next_frame_size(b"\x40\x00\x00\x05") == 12
    assert next_frame_size(b"\x40\x00\x00\x08") == 12
    assert next_frame_size(b"\x40\x00\xff\xff") == 4 + 0x10000


@pytest.mark.parametrize(
    "buffer",
    [
        b"\x90",  # no longer decidable: neither STUN nor ChannelData
        b"\x16\x03\x01\x02",  # TLS record: STUN length 0x0102 is not a multiple of 4
        b"\x80\x60\x00\x01",  # RTP
    ],
)
def test_rfc8489_6_2_2_next_frame_size_refuses_other_protocols(buffer: bytes) -> None:
    with pytest.raises(StunRemoteError):
        next_frame_size(buffer)


def test_limits_next_frame_size_is_bounded() -> None:
    with pytest.raises(StunRemoteError, match="exceeds"):
        next_frame_size(b"\x00\x01\x04\x00", max_size=1000)


def test_rfc8489_6_2_2_stream_fed_whole() -> None:
    frames = stream_of_frames()
    framer = StreamFramer()

    assert framer.feed(b"".join(frames)) == frames
    assert framer.pending == 0


def test_rfc8489_6_2_2_stream_fed_byte_by_byte() -> None:
    frames = stream_of_frames()
    framer = StreamFramer()

    received = [frame for byte in b"".join(frames) for frame in framer.feed(bytes([byte]))]

    assert received == frames
    assert framer.pending == 0


@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_rfc8489_6_2_2_stream_fed_in_any_chunks(cuts: list[int]) -> None:
    frames = stream_of_frames()
    stream = b"".join(frames)
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    framer = StreamFramer()

    received = [
        f for a, b in zip(bounds, bounds[1:], strict=False) for f in framer.feed(stream[a:b])
    ]

    assert received == frames


def test_rfc8489_6_2_2_every_frame_decodes() -> None:
    for frame in StreamFramer().feed(b"".join(stream_of_frames())):
        if classify(frame) is PacketKind.STUN:
            Message.decode(frame)
        else:
            ChannelData.decode(frame)


def test_rfc8489_6_2_2_partial_frame_is_held_back() -> None:
    stun = VECTORS[0].read_bytes()
    framer = StreamFramer()

    assert framer.feed(stun[:-1]) == []
    assert framer.pending == len(stun) - 1
    assert framer.feed(stun[-1:] + b"\x40") == [stun]
    assert framer.pending == 1
