"""The classifier on clear bytes: STUN, SIP and HTTP request lines, XMPP stream openings,
and whatever else a port-443 listener on the Internet receives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.mux import MAX_PEEK, NeedMore, Refuse, Service, Verdict, classify
from heron.stun import Message, MessageClass, Method, Software

TURN = Verdict(Service.TURN, tls=False)
SIP = Verdict(Service.SIP, tls=False)
XMPP = Verdict(Service.XMPP_CLIENT, tls=False)
HTTP = Verdict(Service.WEB, tls=False)


def assert_every_prefix_needs_more(data: bytes) -> None:
    for cut in range(len(data)):
        decision = classify(data[:cut])
        assert isinstance(decision, NeedMore), (cut, decision)
        assert 1 <= decision.at_most <= MAX_PEEK - cut


def decides(data: bytes, verdict: Verdict) -> None:
    """``data`` decides ``verdict`` at its last byte, and bytes after it change nothing."""
    assert_every_prefix_needs_more(data)
    assert classify(data) == verdict
    assert classify(data + bytes(range(256))) == verdict


@pytest.mark.parametrize(
    "message",
    [
        Message(Method.ALLOCATE, MessageClass.REQUEST, bytes(range(12))),
        Message(Method.BINDING, MessageClass.REQUEST, b"\xff" * 12),
        Message(Method.REFRESH, MessageClass.REQUEST, bytes(12), (Software("aioice"),)),
    ],
    ids=lambda message: Method(message.method).name,
)
def test_rfc8489_5_stun_header_with_magic_cookie_is_turn(message: Message) -> None:
    data = message.encode(fingerprint=True)
    decides(data[:8], TURN)
    assert classify(data) == TURN


def test_rfc8489_5_stun_header_without_cookie_or_with_odd_length_is_refused() -> None:
    assert classify(b"\x00\x01\x00\x00\x21\x12\xa4\x43") == Refuse(
        "no STUN magic cookie (RFC 8489 §5)"
    )
    assert classify(b"\x00\x01\x00\x00\x20") == Refuse("no STUN magic cookie (RFC 8489 §5)")
    assert classify(b"\x00\x01\x00\x02") == Refuse("STUN length not a multiple of 4 (RFC 8489 §5)")


@pytest.mark.parametrize(
    "line",
    [
        # What sipp's built-in uac, uas and regexp scenarios send first.
        b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n",
        b"REGISTER sip:falcot.com SIP/2.0\r\n",
        b"OPTIONS sip:127.0.0.1:5060;transport=TCP SIP/2.0\r\n",
        b"MESSAGE sips:rhertzog@falcot.com SIP/2.0\r\n",
        b"INVITE tel:+33123456789 SIP/2.0\r\n",
        b"NEWMETHOD sip:x@[2001:db8::1]:5061 SIP/2.0\r\n",
        b"REGISTER sip:falcot.com sip/2.0\r\n",  # RFC 3261 §7.1: case-insensitive
        b"\r\n\r\nREGISTER sip:falcot.com SIP/2.0\r\n",  # RFC 3261 §7.5: CRLF ignored
    ],
)
def test_rfc3261_7_1_request_line_is_sip(line: bytes) -> None:
    decides(line, SIP)
    assert classify(line + b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-1\r\n") == SIP


@pytest.mark.parametrize(
    "line",
    [
        b"SIP/2.0 200 OK\r\n",  # a response opens no connection
        b"INVITE sip:x SIP/3.0\r\n",
        b"INVITE sip:x SIP/2.0 \r\n",
        b"INVITE sip:x SIP/2.0\n",
        b"INVITE /x SIP/2.0\r\n",
        b"INVITE falcot.com SIP/2.0\r\n",
        b"INVITE  sip:x SIP/2.0\r\n",
        b"INVITE\tsip:x SIP/2.0\r\n",
        b"INV\x00ITE sip:x SIP/2.0\r\n",
        b"INVITE sip:x\x7f SIP/2.0\r\n",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
    ],
)
def test_rfc3261_7_1_what_is_no_request_line_is_refused(line: bytes) -> None:
    assert isinstance(classify(line), Refuse)


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/1.1\r\n",
        b"GET /phone HTTP/1.1\r\n",
        b"HEAD /index.html HTTP/1.0\r\n",
        b"POST /api/login HTTP/1.1\r\n",
        b"OPTIONS /call/alice HTTP/1.1\r\n",
    ],
)
def test_rfc9112_3_http_origin_form_is_the_web_in_clear(line: bytes) -> None:
    method, _, _ = line.partition(b" ")
    decides(method + b" /", HTTP)
    assert classify(line) == HTTP


@pytest.mark.parametrize(
    "line",
    [
        b"CONNECT falcot.com:443 HTTP/1.1\r\n",
        b"GET http://falcot.com/ HTTP/1.1\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        b"get / HTTP/1.1\r\n",
        b"BREW /pot HTTP/1.1\r\n",
    ],
)
def test_proxy_and_unknown_http_requests_are_refused(line: bytes) -> None:
    assert isinstance(classify(line), Refuse)


@pytest.mark.parametrize(
    "opening",
    [
        b"<?xml version='1.0'?><stream:stream to='falcot.com' xmlns='jabber:client'",
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
    ],
)
def test_rfc6120_4_2_stream_opening_is_xmpp_for_starttls(opening: bytes) -> None:
    start = b"<?xml" if opening.startswith(b"<?xml") else b"<stream:stream"
    decides(start, XMPP)
    assert classify(opening) == XMPP


@pytest.mark.parametrize("data", [b"<html>", b"<stream:features/>", b"<?xm l", b"<s"])
def test_other_xml_is_refused(data: bytes) -> None:
    assert isinstance(classify(data + b"<stream:stream>"), Refuse)


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x2e\x01\x03\x01",  # an SSLv2-compatible ClientHello
        b"\x17\x03\x03\x00\x10",  # TLS application data first
        b"\x04\x00\x00\x00",  # a first byte past STUN's 0-3 (RFC 7983 §7)
        b"\xff" * 20,
        b" GET / HTTP/1.1\r\n",
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    assert isinstance(classify(data), Refuse)


@pytest.mark.parametrize(
    "stall",
    [
        b"\r\n" * (MAX_PEEK // 2),  # CRLFs forever
        b"INVITE sip:" + b"a" * MAX_PEEK,  # a Request-URI that never ends
        b"X" * MAX_PEEK,  # a method that never ends
    ],
    ids=["crlf", "uri", "method"],
)
def test_no_decision_within_the_limit_is_refused(stall: bytes) -> None:
    assert isinstance(classify(stall[: MAX_PEEK - 1]), NeedMore)
    assert classify(stall[:MAX_PEEK]) == Refuse(f"no decision within {MAX_PEEK} bytes")
    assert classify(stall + b" SIP/2.0\r\n") == Refuse(f"no decision within {MAX_PEEK} bytes")


def test_a_caller_limit_bounds_every_kind() -> None:
    assert classify(b"REGISTER sip:falcot.com SIP/2.0\r\n", limit=20) == Refuse(
        "no decision within 20 bytes"
    )
    assert classify(b"REGISTER sip:falcot", limit=20) == NeedMore(1)
    assert classify(b"", limit=20) == NeedMore(20)


@settings(max_examples=1000)
@given(st.binary(max_size=64), st.integers(1, 64))
def test_any_bytes_only_decide_and_never_ask_past_the_limit(data: bytes, limit: int) -> None:
    decision = classify(data, limit=limit)
    assert isinstance(decision, NeedMore | Verdict | Refuse)
    if isinstance(decision, NeedMore):
        assert len(data) < limit
        assert 1 <= decision.at_most <= limit - len(data)


@settings(max_examples=500)
@given(
    st.sampled_from(
        [
            b"",
            b"\x00\x03\x00\x00\x21\x12",
            b"\x16\x03\x01\x00",
            b"REGISTER sip:falcot.com SIP",
            b"GET ",
            b"<stream:",
            b"\r\n",
        ]
    ),
    st.binary(max_size=40),
    st.binary(max_size=40),
)
def test_a_decision_is_final(start: bytes, first: bytes, more: bytes) -> None:
    """Once decided, more bytes never change the answer: the listener may stop reading."""
    decision = classify(start + first)
    if not isinstance(decision, NeedMore):
        assert classify(start + first + more) == decision
