"""Messages, the field list, and what a proxy does to them (RFC 3261 §7, §8.2.6, §16)."""

import pytest

from heron.sip import (
    BadRequest,
    Headers,
    MalformedValue,
    NameAddr,
    Request,
    Response,
    SipLocalError,
    SipUri,
    Status,
    Via,
    parse_address,
    parse_datagram,
    parse_uri,
    reason_phrase,
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8,"
    b" SIP/2.0/UDP p1.example.com;branch=z9hG4bK1\r\n"
    b"v: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"f: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Timestamp: 54\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    b"X-Unknown: anything ;;,, goes\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def invite() -> Request:
    message = parse_datagram(INVITE)
    assert isinstance(message, Request)
    return message


def test_rfc3261_7_a_parsed_message_encodes_to_its_bytes() -> None:
    assert invite().encode() == INVITE


def test_rfc3261_7_3_1_folding_is_one_space() -> None:
    data = INVITE.replace(b"X-Unknown: anything", b"X-Unknown: any \r\n\t  \r\n   thing")
    assert invite_from(data).headers.get("x-unknown") == "any thing ;;,, goes"


def invite_from(data: bytes) -> Request:
    message = parse_datagram(data)
    assert isinstance(message, Request)
    return message


def test_rfc3261_7_3_field_names_are_case_insensitive_and_compact() -> None:
    headers = invite().headers
    assert (
        headers.get("FROM")
        == headers.get("f")
        == "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl"
    )
    assert headers.get_all("via") == headers.get_all("V") and len(headers.get_all("v")) == 2
    assert [v.sent_by for v in headers.vias] == [
        "pc33.atlanta.example.com",
        "p1.example.com",
        "client.atlanta.example.com:5060",
    ]
    assert "x-UNKNOWN" in headers and "Subject" not in headers and 3 not in headers
    assert headers.get("Subject") is None and headers.get_all("Subject") == ()


def test_headers_typed_access_reports_missing_and_malformed_fields() -> None:
    headers = Headers.of([("Max-Forwards", "256"), ("Expires", "x"), ("Contact", "*, <sip:a@b>")])
    for accessor in (
        "from_",
        "to",
        "call_id",
        "cseq",
        "top_via",
        "max_forwards",
        "expires",
        "contacts",
    ):
        with pytest.raises(MalformedValue):
            getattr(headers, accessor)
    assert Headers.of([("Contact", "*")]).contact_star
    assert Headers.of([("Contact", "*")]).contacts == ()
    assert Headers.of([("Supported", ""), ("Accept", "")]).split("Supported") == ()
    with pytest.raises(MalformedValue):  # a Via, Contact or Route list is never empty
        _ = Headers.of([("Via", "")]).vias


def test_headers_edits_return_new_lists() -> None:
    headers = Headers.of([("Via", "SIP/2.0/UDP a"), ("To", "<sip:b@c>"), ("Via", "SIP/2.0/UDP d")])
    assert [h.value for h in headers.prepend("v", "SIP/2.0/UDP z")] == [
        "SIP/2.0/UDP z",
        "SIP/2.0/UDP a",
        "<sip:b@c>",
        "SIP/2.0/UDP d",
    ]
    assert [h.name for h in headers.prepend("Record-Route", "<sip:p>")][0] == "Record-Route"
    assert [h.name for h in headers.add("X", "1")][-1] == "X"
    assert headers.remove("VIA").get_all("Via") == ()
    assert [h.value for h in headers.replace("via", "SIP/2.0/TCP e")] == [
        "SIP/2.0/TCP e",
        "<sip:b@c>",
    ]
    assert headers.replace("Max-Forwards", "70").get("max-forwards") == "70"
    assert len(headers) == 3


def test_rfc3261_16_7_pop_first_takes_one_value_of_a_shared_line() -> None:
    headers = Headers.of([("Route", "<sip:a;lr>, <sip:b;lr>"), ("Route", "<sip:c;lr>")])
    once = headers.pop_first("Route")
    assert once.get_all("Route") == ("<sip:b;lr>", "<sip:c;lr>")
    assert once.pop_first("route").pop_first("route").get_all("route") == ()
    with pytest.raises(SipLocalError):
        Headers().pop_first("Route")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X", "a\r\nVia: evil"),
        ("X", "a\nb"),
        ("Bad Name", "v"),
        ("", "v"),
        ("X:", "v"),
        ("X", "\ud800"),
    ],
)
def test_rfc3261_7_3_fields_that_cannot_be_sent_are_refused(name: str, value: str) -> None:
    with pytest.raises(SipLocalError):
        Headers.of([(name, value)])
    with pytest.raises(SipLocalError):
        Headers().add(name, value)


def test_rfc3261_8_2_6_response_copies_the_transaction_fields() -> None:
    request = invite()
    response = request.response(Status.RINGING, to_tag="8321234356")
    assert (response.status, response.reason) == (180, "Ringing")
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.headers.get("From") == request.headers.get("From")
    assert response.headers.to.tag == "8321234356"
    assert response.headers.call_id == request.headers.call_id
    assert response.headers.cseq == request.headers.cseq
    assert "Timestamp" not in response.headers and "X-Unknown" not in response.headers
    assert response.encode().endswith(b"Content-Length: 0\r\n\r\n")


def test_rfc3261_8_2_6_1_trying_copies_timestamp_and_needs_no_tag() -> None:
    trying = invite().response(Status.TRYING)
    assert trying.headers.get("Timestamp") == "54" and trying.headers.to.tag is None


def test_rfc3261_8_2_6_2_to_tag_is_required_and_kept() -> None:
    with pytest.raises(SipLocalError):
        invite().response(Status.OK)
    tagged = parse_datagram(
        INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"t: <sip:b@c>;tag=old")
    )
    assert isinstance(tagged, Request)
    assert tagged.response(Status.OK, to_tag="new").headers.to.tag == "old"


def test_rfc3261_17_1_1_3_ack_is_never_answered() -> None:
    ack = Request("ACK", SipUri("example.com"), invite().headers.replace("CSeq", "2 ACK"))
    with pytest.raises(SipLocalError):
        ack.response(Status.OK, to_tag="t")


def test_response_with_reason_and_extra_fields() -> None:
    response = invite().response(
        Status.UNAUTHORIZED,
        "Who Are You",
        to_tag="t",
        headers=[("WWW-Authenticate", 'Digest realm="atlanta.example.com", nonce="84a4cc6f"')],
    )
    assert response.encode().startswith(b"SIP/2.0 401 Who Are You\r\n")
    assert response.headers.www_authenticates[0].param("realm") == "atlanta.example.com"


def test_rfc3261_21_reason_phrases() -> None:
    assert reason_phrase(200) == "OK"
    assert reason_phrase(404) == "Not Found"
    assert reason_phrase(481) == "Call/Transaction Does Not Exist"
    assert reason_phrase(504) == "Server Time-out"
    assert reason_phrase(499) == "Client Error"


def test_bad_request_is_answered_from_the_fields_that_parsed() -> None:
    data = INVITE.replace(b"CSeq: 2 INVITE", b"CSeq: 2 BYE")
    with pytest.raises(BadRequest) as caught:
        parse_datagram(data)
    answer = Response.from_error(caught.value, to_tag="zz")
    assert answer.encode().startswith(b"SIP/2.0 400 CSeq method does not match\r\n")
    assert [h.name for h in answer.headers] == ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
    assert answer.headers.to.tag == "zz"


@pytest.mark.parametrize(
    "fault",
    [
        (b"Content-Length: 4", b"Content-Length: x"),
        (b"Call-ID: 3848276298220188511@atlanta.example.com\r\n", b""),
        (b"CSeq: 2 INVITE", b"CSeq: 2 BYE"),
    ],
)
def test_rfc3261_8_2_7_a_bad_request_without_a_to_tag_gets_a_stateless_one(
    fault: tuple[bytes, bytes],
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_datagram(INVITE.replace(*fault))
    first = Response.from_error(caught.value)
    again = Response.from_error(caught.value)
    assert first.status == 400 and first.headers.to.tag
    assert first.headers.to.tag == again.headers.to.tag  # the same request, the same tag


def test_rfc3581_4_a_bad_request_answer_is_stamped_with_its_source() -> None:
    data = INVITE.replace(
        b"pc33.atlanta.example.com;branch", b"pc33.atlanta.example.com;rport;branch"
    )
    with pytest.raises(BadRequest) as caught:
        parse_datagram(data.replace(b"CSeq: 2 INVITE", b"CSeq: 2 BYE"))
    answer = Response.from_error(caught.value, source=("192.0.2.7", 5099))
    vias = answer.headers.vias
    assert (vias[0].received, vias[0].rport) == ("192.0.2.7", 5099)
    assert len(vias) == 3 and vias[1].host == "p1.example.com"


def test_rfc3261_18_2_1_received_from_stamps_only_the_top_via() -> None:
    request = invite().received_from("192.0.2.7", 5099)
    vias = request.headers.vias
    assert vias[0].received == "192.0.2.7" and vias[0].rport is None
    assert [v.host for v in vias[1:]] == ["p1.example.com", "client.atlanta.example.com"]
    assert request.headers.get_all("Via")[0].endswith(
        ", SIP/2.0/UDP p1.example.com;branch=z9hG4bK1"
    )
    same = invite().received_from("pc33.atlanta.example.com", 5060)
    assert same.headers.top_via.received is None


def test_rfc3261_16_6_proxy_forwarding_steps() -> None:
    request = invite()
    route = request.headers.routes[0].uri
    assert isinstance(route, SipUri) and route.lr
    via = Via(
        "UDP", "p1.example.com", params=request.headers.vias[0].params.set("branch", "z9hG4bKp1")
    )
    forwarded = (
        request.pop_route()
        .decrement_max_forwards()
        .push_record_route(NameAddr(parse_uri("sip:p1.example.com;lr")))
        .push_via(via)
    )
    headers = forwarded.headers
    assert [str(r.uri) for r in headers.routes] == ["sip:p2.example.com;lr"]
    assert headers.max_forwards == 69
    assert headers.record_routes[0] == parse_address("<sip:p1.example.com;lr>")
    assert headers.top_via.branch == "z9hG4bKp1" and len(headers.vias) == 4
    assert headers.get("X-Unknown") == "anything ;;,, goes"
    assert parse_datagram(forwarded.encode()) == forwarded


def test_rfc3261_16_7_response_loses_the_proxy_via() -> None:
    response = invite().response(Status.OK, to_tag="t")
    popped = response.pop_via()
    assert [v.host for v in popped.headers.vias] == ["p1.example.com", "client.atlanta.example.com"]
    assert [v.host for v in popped.pop_via().pop_via().headers.vias] == []


def test_rfc3261_20_14_encode_fixes_content_length() -> None:
    request = invite()
    assert request.encode().count(b"Content-Length") == 1
    longer = Request(request.method, request.uri, request.headers, b"v=0\r\no=x\r\n")
    encoded = longer.encode()
    assert b"Content-Length: 10\r\n\r\nv=0" in encoded and encoded.count(b"Content-Length") == 1
    doubled = request.headers.add("l", "4")
    assert Request("INVITE", request.uri, doubled, b"v=0\n").encode().count(b"Content-Length") == 1


def test_built_messages_round_trip() -> None:
    headers = Headers.of(
        [
            (
                "Via",
                str(
                    Via(
                        "TLS",
                        "[2001:db8::1]",
                        5061,
                        parse_address("<sip:x>;branch=z9hG4bKa").params,
                    )
                ),
            ),
            (
                "From",
                str(
                    NameAddr(
                        SipUri("example.com", "a"), 'Ä "q"', parse_address("<sip:x>;tag=1").params
                    )
                ),
            ),
            ("To", "<sip:b@example.com>"),
            ("Call-ID", "1@h"),
            ("CSeq", "1 MESSAGE"),
            ("Content-Type", "text/plain;charset=UTF-8"),
        ]
    )
    request = Request("MESSAGE", SipUri("example.com", "b"), headers, "héllo".encode())
    again = parse_datagram(request.encode())
    assert again == Request(
        "MESSAGE", request.uri, headers.add("Content-Length", "6"), request.body
    )
    assert again.headers.content_type == "text/plain"


def test_messages_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(SipLocalError):
        Request("IN VITE", SipUri("h"))
    with pytest.raises(SipLocalError):
        Response(1000, "Too Big")
    with pytest.raises(SipLocalError):
        Response(200, "OK\r\nVia: x")
    with pytest.raises(SipLocalError):
        Response(200, "\ud800").encode()
