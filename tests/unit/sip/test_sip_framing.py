"""Framing: one message per datagram, or a byte stream cut by Content-Length
(RFC 3261 §7.5, §18.3, §20.14), CRLF keep-alives (RFC 5626 §3.5.1) and limits.
"""

import pytest

from heron.sip import (
    PONG,
    BadRequest,
    LimitExceeded,
    MessageLimits,
    Ping,
    Request,
    Response,
    SipRemoteError,
    StreamFramer,
    UnanswerableMessage,
    parse_datagram,
)
from heron.sip.parser import Event


def options(body: bytes = b"", length: int | None = None, extra: bytes = b"") -> bytes:
    """A small OPTIONS request; ``length`` None writes the true Content-Length."""
    declared = (
        b""
        if length == -1
        else b"Content-Length: %d\r\n" % (len(body) if length is None else length)
    )
    return (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK1\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"Call-ID: a@b\r\n"
        b"CSeq: 1 OPTIONS\r\n" + extra + declared + b"\r\n" + body
    )


RESPONSE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\n"
    b"To: <sip:bob@example.com>;tag=2\r\n"
    b"Call-ID: a@b\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def events(data: bytes, chunk: int) -> list[Event]:
    framer, found = StreamFramer(), []
    for start in range(0, len(data), chunk):
        framer.feed(data[start : start + chunk])
        while (event := framer.next_event()) is not None:
            found.append(event)
    return found


# -- datagrams (RFC 3261 §18.3) --------------------------------------------------


def test_rfc3261_18_3_datagram_without_content_length_takes_the_rest() -> None:
    message = parse_datagram(options(b"hello", length=-1))
    assert isinstance(message, Request) and message.body == b"hello"


def test_rfc3261_18_3_shorter_content_length_truncates() -> None:
    message = parse_datagram(options(b"hello world", length=5))
    assert isinstance(message, Request) and message.body == b"hello"


def test_rfc3261_18_3_longer_content_length_is_a_400() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_datagram(options(b"hello", length=6))
    assert caught.value.status == 400 and caught.value.framing


@pytest.mark.parametrize("value", [b"five", b"-1", b"1.0", b"", b"99999999999"])
def test_rfc4475_3_1_2_3_content_length_must_be_digits(value: bytes) -> None:
    data = options(length=-1, extra=b"Content-Length: " + value + b"\r\n")
    with pytest.raises(BadRequest) as caught:
        parse_datagram(data)
    assert caught.value.framing


def test_rfc5626_3_5_1_crlf_only_datagram_is_a_keep_alive() -> None:
    assert parse_datagram(b"\r\n\r\n") == Ping()
    assert isinstance(parse_datagram(b"\r\n" + RESPONSE), Response)
    with pytest.raises(UnanswerableMessage):
        parse_datagram(b"")


def test_rfc3261_7_missing_empty_line_is_a_400() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_datagram(options().removesuffix(b"\r\n"))
    assert caught.value.reason == "Missing empty line after header fields"


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"hello",
        b"SIP/2.0 200\r\n\r\n",
        b"ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n",
        options().replace(b"Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK1\r\n", b""),
        RESPONSE.replace(b"CSeq: 1 OPTIONS", b"CSeq: x"),
    ],
)
def test_rfc3261_18_2_1_what_cannot_be_answered_is_dropped(data: bytes) -> None:
    with pytest.raises(UnanswerableMessage):
        parse_datagram(data)


def test_rfc3261_7_3_malformed_field_line_is_a_400() -> None:
    for extra in (
        b"No colon here\r\n",
        b"Bad Name: x\r\n",
        b"X: bare\nLF\r\n",
        b" continuation\r\n",
    ):
        data = options().replace(
            b"OPTIONS sip:bob@example.com SIP/2.0\r\n",
            b"OPTIONS sip:bob@example.com SIP/2.0\r\n" + extra,
        )
        with pytest.raises(BadRequest):
            parse_datagram(data)


def test_limits_on_datagrams() -> None:
    small = MessageLimits(max_message_size=200, max_header_count=6, max_line_length=60)
    with pytest.raises(LimitExceeded):
        parse_datagram(options(b"x" * 200), small)
    with pytest.raises(LimitExceeded):
        parse_datagram(options(extra=b"X: 1\r\n"), MessageLimits(max_header_count=6))
    with pytest.raises(LimitExceeded):
        parse_datagram(
            options(extra=b"X: " + b"y" * 60 + b"\r\n"), MessageLimits(max_line_length=60)
        )
    with pytest.raises(LimitExceeded) as caught:  # folding does not get around it
        parse_datagram(
            options(extra=b"X: y\r\n" + b" y\r\n" * 40), MessageLimits(max_line_length=60)
        )
    assert caught.value.status == 513 and caught.value.framing


# -- streams (RFC 3261 §18.3) ----------------------------------------------------

TRANSCRIPT = (
    b"\r\n\r\n"
    + options(b"hello")
    + b"\r\n"  # a stray CRLF before a start line is ignored (RFC 3261 §7.5)
    + RESPONSE
    + b"\r\n\r\n\r\n\r\n"
    + options(b"\x00\r\n\r\n\x00", extra=b"l: 6\r\n", length=-1)
)


@pytest.mark.parametrize("chunk", [len(TRANSCRIPT), 1, 2, 3, 7, 64])
def test_rfc3261_18_3_stream_transcript(chunk: int) -> None:
    found = events(TRANSCRIPT, chunk)
    assert [type(e).__name__ for e in found] == [
        "Ping",
        "Request",
        "Response",
        "Ping",
        "Ping",
        "Request",
    ]
    first, last = found[1], found[5]
    assert isinstance(first, Request) and first.body == b"hello"
    assert isinstance(last, Request) and last.body == b"\x00\r\n\r\n\x00"


def test_rfc5626_3_5_1_ping_is_answered_with_pong() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n")
    assert framer.next_event() is None  # half a ping, or a stray CRLF: wait
    framer.feed(b"\r")
    assert framer.next_event() is None
    framer.feed(b"\n")
    assert framer.next_event() == Ping() and PONG == b"\r\n"
    assert framer.next_event() is None


def test_rfc3261_18_3_partial_message_needs_more() -> None:
    framer = StreamFramer()
    data = options(b"0123456789")
    framer.feed(data[:-1])
    assert framer.next_event() is None
    framer.feed(data[-1:] + data[:10])
    assert isinstance(framer.next_event(), Request)
    assert framer.next_event() is None


def test_rfc3261_20_14_stream_needs_content_length() -> None:
    framer = StreamFramer()
    framer.feed(options(length=-1) + RESPONSE)
    with pytest.raises(BadRequest) as caught:
        framer.next_event()
    assert caught.value.framing and caught.value.reason == "Missing Content-Length"
    with pytest.raises(BadRequest):  # the stream is lost: close it
        framer.next_event()


def test_stream_garbage_loses_the_framing() -> None:
    framer = StreamFramer()
    framer.feed(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + RESPONSE)
    with pytest.raises(UnanswerableMessage) as caught:
        framer.next_event()
    assert caught.value.framing


def test_stream_skips_a_bad_message_and_keeps_going() -> None:
    framer = StreamFramer()
    framer.feed(options(extra=b"Max-Forwards: 256\r\n") + RESPONSE)
    with pytest.raises(BadRequest) as caught:
        framer.next_event()
    assert not caught.value.framing and caught.value.reason == "Bad Max-Forwards"
    assert isinstance(framer.next_event(), Response)


@pytest.mark.parametrize(
    ("data", "limits"),
    [
        (b"OPTIONS sip:a SIP/2.0\r\n" + b"X: y\r\n" * 40, MessageLimits(max_message_size=200)),
        (b"OPTIONS sip:a SIP/2.0\r\nX: " + b"y" * 100, MessageLimits(max_line_length=60)),
        (options(length=10_000), MessageLimits(max_message_size=1000)),
        (options(extra=b"X: 1\r\n" * 10), MessageLimits(max_header_count=8)),
        (b"x" * 70_000, MessageLimits()),
    ],
)
def test_limits_on_streams(data: bytes, limits: MessageLimits) -> None:
    framer = StreamFramer(limits)
    with pytest.raises(LimitExceeded):
        for start in range(0, len(data), 10):
            framer.feed(data[start : start + 10])
            assert framer.next_event() is None
    with pytest.raises(SipRemoteError):
        framer.next_event()


def test_long_line_is_refused_before_the_message_limit() -> None:
    framer = StreamFramer(MessageLimits(max_line_length=100))
    framer.feed(b"OPTIONS sip:a SIP/2.0\r\nX: " + b"y" * 97)
    assert framer.next_event() is None
    framer.feed(b"\r")  # exactly at the limit, CR of the line end pending
    assert framer.next_event() is None
    framer.feed(b"yy")
    with pytest.raises(LimitExceeded):
        framer.next_event()
