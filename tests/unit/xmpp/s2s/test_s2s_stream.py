"""The s2s stream (RFC 6120 §4 to §9, XEP-0178, XEP-0220): both ends in memory."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.xmpp.errors import StanzaCondition, StreamCondition
from heron.xmpp.jid import JID
from heron.xmpp.s2s import (
    Authenticated,
    AuthenticationFailed,
    AuthMethod,
    DialbackVerifyNeeded,
    S2SEvent,
    S2SStream,
    StanzaReceived,
    StartTlsRequested,
    State,
    StreamEnded,
    VerifyAnswered,
    dialback_key,
)
from heron.xmpp.s2s.stream import MAX_DOMAINS
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.s2s.s2s_harness import (
    CONFERENCE,
    EXAMPLE,
    EXAMPLE_SECRET,
    FALCOT,
    FALCOT_SECRET,
    Pair,
    incoming,
    outgoing,
    valid_for,
)

HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
    " xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
    " from='falcot.com' to='example.org' version='1.0'>"
)


def events(stream: S2SStream) -> list[S2SEvent]:
    found = []
    while (event := stream.next_event()) is not None:
        found.append(event)
    return found


def ended(stream: S2SStream) -> StreamEnded:
    last = events(stream)[-1]
    assert isinstance(last, StreamEnded) and stream.closed
    return last


def condition_of(stream: S2SStream) -> StreamCondition:
    error = ended(stream).error
    assert error is not None
    return error.condition


def feed(stream: S2SStream, *pieces: str) -> str:
    for piece in pieces:
        stream.receive_data(piece.encode())
    return stream.data_to_send().decode()


def established_by_dialback(**options: object) -> Pair:
    pair = Pair(inc_sees=valid_for(), **options).run()  # type: ignore[arg-type]
    assert pair.out.state is State.ESTABLISHED and pair.inc.state is State.ESTABLISHED
    return pair


def message(sender: str, to: str, namespace: str = NS.CLIENT) -> Element:
    stanza = Element(qname(namespace, "message"), {"from": sender, "to": to, "type": "chat"})
    SubElement(stanza, qname(namespace, "body")).text = "Salut"
    return stanza


# --- authentication ----------------------------------------------------------------------


def test_rfc6120_9_2_starttls_then_sasl_external_when_both_certificates_are_valid() -> None:
    pair = Pair().run()
    assert pair.out_events == [
        StartTlsRequested(),
        Authenticated(EXAMPLE, AuthMethod.EXTERNAL, FALCOT),
    ]
    assert pair.inc_events == [
        StartTlsRequested(),
        Authenticated(FALCOT, AuthMethod.EXTERNAL, EXAMPLE),
    ]
    sent = pair.sent_by_out()
    # XEP-0178 §3: the authzid is our domain, as Prosody sends it; no dialback happened.
    assert '<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="EXTERNAL">' in sent
    assert "ZmFsY290LmNvbQ==</auth>" in sent and "db:result" not in sent
    # RFC 6120 §4.3.3: three headers (start, after TLS, after SASL), a new id for each.
    assert sent.count("<stream:stream") == 3
    assert [pair.inc.stream_id, pair.out.stream_id] == ["D60000229F-2"] * 2
    assert pair.inc.authenticated_domains == {FALCOT}
    assert pair.out.authenticated_domains == {FALCOT}
    assert pair.out.tls_active and pair.inc.tls_active


def test_rfc6120_5_4_before_tls_only_required_starttls_is_offered() -> None:
    inc = incoming()
    answer = feed(inc, HEADER)
    assert answer.endswith(
        '<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls">'
        "<required/></starttls></stream:features>"
    )
    assert 'xmlns:db="jabber:server:dialback" id="D60000229F"' in answer
    assert inc.local == EXAMPLE and inc.remote == FALCOT


def test_xep0220_dialback_when_the_certificate_is_not_valid_for_the_sender() -> None:
    pair = established_by_dialback()
    key = dialback_key(FALCOT_SECRET, EXAMPLE, FALCOT, "D60000229F-1")
    assert f'<db:result from="falcot.com" to="example.org">{key}</db:result>' in pair.sent_by_out()
    assert DialbackVerifyNeeded("D60000229F-1", FALCOT, EXAMPLE, key) in pair.inc_events
    assert '<db:result from="example.org" to="falcot.com" type="valid"/>' in pair.sent_by_inc()
    assert pair.out_events[-1] == Authenticated(EXAMPLE, AuthMethod.DIALBACK, FALCOT)
    assert pair.inc_events[-1] == Authenticated(FALCOT, AuthMethod.DIALBACK, EXAMPLE)
    # EXTERNAL was not offered: no certificate named falcot.com.
    assert "EXTERNAL" not in pair.sent_by_inc()


def test_xep0220_2_2_1_an_invalid_key_is_answered_invalid_and_the_stream_closed() -> None:
    pair = Pair(out=outgoing(dialback_secret=b"not falcot's"), inc_sees=valid_for()).run()
    assert '<db:result from="example.org" to="falcot.com" type="invalid"/>' in pair.sent_by_inc()
    assert pair.inc.closed and pair.out.closed
    last = pair.out_events[-1]
    assert isinstance(last, StreamEnded) and last.error is not None
    assert last.error.condition is StreamCondition.NOT_AUTHORIZED
    assert not any(isinstance(event, Authenticated) for event in pair.out_events)


def test_xep0220_2_5_a_verdict_that_could_not_be_reached_is_a_dialback_error() -> None:
    pair = Pair(inc_sees=valid_for(), auto_verify=False).run()
    pair.inc.dialback_failed(FALCOT, EXAMPLE, StanzaCondition.REMOTE_SERVER_NOT_FOUND)
    pair.inc.dialback_verified(FALCOT, EXAMPLE, True)  # nothing waits any more: dropped
    pair.pump()
    assert (
        '<db:result from="example.org" to="falcot.com" type="error">'
        '<error xmlns="jabber:server" type="cancel">'
        '<remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>'
        "</db:result>"
    ) in pair.sent_by_inc()
    # The stream's only pair failed: the initiating server gives up the stream.
    end = pair.out_events[-1]
    assert isinstance(end, StreamEnded) and end.error is not None
    assert end.error.text == "dialback refused: remote-server-not-found"


def test_prosody_s2s_secure_auth_refuses_dialback_on_incoming_streams() -> None:
    pair = Pair(inc=incoming(secure_auth=True), inc_sees=valid_for()).run()
    assert "db:result" not in pair.sent_by_out()
    last = pair.out_events[-1]
    assert isinstance(last, StreamEnded) and last.by_peer and last.error is not None
    assert last.error.condition is StreamCondition.NOT_AUTHORIZED


def test_prosody_s2s_secure_auth_still_takes_external() -> None:
    pair = Pair(inc=incoming(secure_auth=True), out=outgoing(secure_auth=True)).run()
    assert pair.out_events[-1] == Authenticated(EXAMPLE, AuthMethod.EXTERNAL, FALCOT)
    assert "urn:xmpp:features:dialback" not in pair.sent_by_inc()


def test_prosody_s2s_secure_auth_outgoing_never_falls_back_to_dialback() -> None:
    pair = Pair(out=outgoing(secure_auth=True), inc_sees=valid_for()).run()
    assert "db:result" not in pair.sent_by_out()
    last = pair.out_events[-1]
    assert isinstance(last, StreamEnded) and not last.by_peer and last.error is not None
    assert last.error.condition is StreamCondition.UNSUPPORTED_FEATURE


def test_prosody_s2s_secure_auth_outgoing_checks_the_peers_certificate() -> None:
    pair = Pair(out=outgoing(secure_auth=True), out_sees=valid_for()).run()
    assert condition_of_events(pair.out_events) is StreamCondition.NOT_AUTHORIZED


def condition_of_events(seen: list[S2SEvent]) -> StreamCondition:
    last = seen[-1]
    assert isinstance(last, StreamEnded) and last.error is not None
    return last.error.condition


@pytest.mark.parametrize(
    ("element", "condition"),
    [
        ("<db:result from='falcot.com' to='example.org'>k</db:result>", "policy-violation"),
        (
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>",
            "policy-violation",
        ),
        ("<message from='a@falcot.com' to='b@example.org'/>", "not-authorized"),
    ],
)
def test_rfc6120_5_3_1_nothing_but_starttls_while_tls_is_required(
    element: str, condition: str
) -> None:
    inc = incoming()
    answer = feed(inc, HEADER, element)
    assert f'<{condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>' in answer
    assert answer.endswith("</stream:stream>")
    assert condition_of(inc) == condition


def test_rfc6120_5_3_1_a_peer_offering_no_starttls_is_left_when_tls_is_required() -> None:
    out = outgoing()
    out.start()
    answer = feed(
        out,
        HEADER.replace("from='falcot.com' to='example.org'", "from='example.org' id='x1'"),
        "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
    )
    assert "db:result" not in answer
    assert condition_of(out) is StreamCondition.POLICY_VIOLATION


def test_without_required_tls_dialback_may_run_in_plaintext() -> None:
    pair = Pair(out=outgoing(require_tls=False), inc=incoming(require_tls=False))
    # The outgoing end still takes the STARTTLS offer, as Prosody does.
    assert pair.run().out_events[0] == StartTlsRequested()
    inc = incoming(require_tls=False)
    answer = feed(inc, HEADER)
    assert '<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>' in answer
    assert "urn:xmpp:features:dialback" in answer
    feed(inc, "<db:result from='falcot.com' to='example.org'>k</db:result>")
    assert events(inc) == [DialbackVerifyNeeded("D60000229F", FALCOT, EXAMPLE, "k")]
    inc.dialback_verified(FALCOT, EXAMPLE, True)
    assert inc.state is State.ESTABLISHED
    # RFC 6120 §6.5.3: EXTERNAL needs TLS.
    answer = feed(inc, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>")
    assert "policy-violation" in answer  # after authentication, no SASL any more


# --- db:verify: we are the Authoritative Server --------------------------------------------


def verify(key: str, to: str = EXAMPLE, stream_id: str = "417GAF25") -> str:
    return f"<db:verify from='falcot.com' to='{to}' id='{stream_id}'>{key}</db:verify>"


def test_xep0220_2_2_2_verify_requests_are_answered_with_our_secret() -> None:
    inc = incoming()
    good = dialback_key(EXAMPLE_SECRET, FALCOT, EXAMPLE, "417GAF25")
    answer = feed(inc, HEADER, verify(good), verify("0" * 64))
    assert (
        '<db:verify from="example.org" to="falcot.com" id="417GAF25" type="valid"/>'
        '<db:verify from="example.org" to="falcot.com" id="417GAF25" type="invalid"/>'
    ) in answer
    assert not inc.closed and events(inc) == []


def test_xep0220_2_2_2_a_verify_for_a_domain_not_served_here_is_item_not_found() -> None:
    inc = incoming()
    answer = feed(inc, HEADER, verify("k", to="elsewhere.example"))
    assert 'type="error"' in answer and "item-not-found" in answer and not inc.closed


def test_xep0220_2_1_2_send_verify_is_queued_until_authentication_then_answered() -> None:
    pair = Pair(inc_sees=valid_for())
    good = dialback_key(EXAMPLE_SECRET, FALCOT, EXAMPLE, "id-1")
    assert pair.out.send_verify(EXAMPLE, FALCOT, "id-1", good)
    assert pair.out.send_verify(EXAMPLE, FALCOT, "id-2", "bad")
    assert not pair.out.send_verify("other.example", FALCOT, "id-3", good)
    pair.run()
    # Not before TLS: the first header and <starttls/> carry no db:verify.
    assert "db:verify" not in pair.wire_out[0].decode()
    answers = [event for event in pair.out_events if isinstance(event, VerifyAnswered)]
    assert answers == [
        VerifyAnswered("id-1", EXAMPLE, FALCOT, True),
        VerifyAnswered("id-2", EXAMPLE, FALCOT, False),
    ]


def test_xep0220_unsolicited_answers_are_dropped() -> None:
    pair = established_by_dialback()
    feed(
        pair.out,
        "<db:verify from='example.org' to='falcot.com' id='nobody-asked' type='valid'/>",
        "<db:result from='example.org' to='conference.falcot.com' type='valid'/>",
    )
    assert events(pair.out) == [] and pair.out.authenticated_domains == {FALCOT}
    # Nor may the initiating server answer its own request on the incoming stream.
    feed(pair.inc, "<db:result from='chat.example.org' to='falcot.com' type='valid'/>")
    assert pair.inc.authenticated_domains == {FALCOT} and not pair.inc.closed


# --- multiplexing (XEP-0220 §2.6) ----------------------------------------------------------


@pytest.mark.parametrize("external", [True, False])
def test_xep0220_2_6_a_subdomain_piggybacks_on_an_authenticated_stream(external: bool) -> None:
    pair = Pair(inc_sees=valid_for(FALCOT) if external else valid_for()).run()
    assert pair.out.authenticate_more(CONFERENCE)
    pair.pump()
    assert pair.out_events[-1] == Authenticated(EXAMPLE, AuthMethod.DIALBACK, CONFERENCE)
    assert pair.inc.authenticated_domains == {FALCOT, CONFERENCE}
    assert pair.out.send_stanza(message(f"room@{CONFERENCE}/nick", "bob@example.org"))
    pair.pump()
    received = pair.inc_events[-1]
    assert isinstance(received, StanzaReceived)
    assert received.sender == JID("room", CONFERENCE, "nick")


def test_authenticate_more_is_refused_where_it_cannot_work() -> None:
    pair = established_by_dialback()
    assert not pair.out.authenticate_more("not-ours.example")
    assert not pair.inc.authenticate_more(CONFERENCE)
    assert not outgoing().authenticate_more(CONFERENCE)  # not established yet
    secure = Pair(out=outgoing(secure_auth=True), inc=incoming(secure_auth=True)).run()
    assert not secure.out.authenticate_more(CONFERENCE)


def test_xep0220_2_2_1_a_target_not_served_is_a_dialback_error_and_the_stream_goes_on() -> None:
    pair = established_by_dialback()
    answer = feed(pair.inc, "<db:result from='falcot.com' to='nowhere.example'>k</db:result>")
    assert 'type="error"' in answer and "item-not-found" in answer
    assert not pair.inc.closed and pair.inc.authenticated_domains == {FALCOT}


def test_a_refused_piggyback_fails_that_pair_only() -> None:
    pair = Pair(inc_sees=valid_for(), auto_verify=False).run()
    (request,) = [event for event in pair.inc_events if isinstance(event, DialbackVerifyNeeded)]
    pair.inc.dialback_verified(FALCOT, EXAMPLE, True)
    pair.pump()
    pair.out.authenticate_more(CONFERENCE)
    pair.pump()
    pair.inc.dialback_failed(CONFERENCE, EXAMPLE, StanzaCondition.REMOTE_SERVER_TIMEOUT)
    pair.pump()
    assert pair.out_events[-1] == AuthenticationFailed(CONFERENCE, EXAMPLE, "remote-server-timeout")
    assert pair.out.state is State.ESTABLISHED and request.originating == FALCOT
    assert not pair.out.send_stanza(message(f"room@{CONFERENCE}", "bob@example.org"))


def test_dialback_requests_waiting_at_once_are_bounded() -> None:
    inc = incoming(require_tls=False)
    pieces = [
        f"<db:result from='d{n}.falcot.com' to='example.org'>k</db:result>" for n in range(17)
    ]
    feed(inc, HEADER, *pieces)
    assert condition_of(inc) is StreamCondition.POLICY_VIOLATION


# --- stanzas -------------------------------------------------------------------------------


def test_rfc6120_4_8_3_stanzas_are_jabber_server_on_the_wire_and_jabber_client_inside() -> None:
    pair = established_by_dialback()
    stanza = message("roland@falcot.com/laptop", "bob@example.org")
    SubElement(stanza, qname(NS.CLIENT, "error"), {"type": "cancel"})
    SubElement(stanza, "{urn:xmpp:receipts}request")
    assert pair.out.send_stanza(stanza)
    wire = pair.out.data_to_send().decode()
    assert wire.startswith('<message from="roland@falcot.com/laptop"')
    assert "<body>Salut</body>" in wire and '<request xmlns="urn:xmpp:receipts"/>' in wire
    assert "jabber:client" not in wire
    pair.inc.receive_data(wire.encode())
    (received,) = events(pair.inc)
    assert isinstance(received, StanzaReceived)
    assert received.sender == JID("roland", FALCOT, "laptop") and received.to == JID("bob", EXAMPLE)
    tags = [node.tag for node in received.stanza.iter()]
    assert tags == [
        qname(NS.CLIENT, "message"),
        qname(NS.CLIENT, "body"),
        qname(NS.CLIENT, "error"),
        "{urn:xmpp:receipts}request",
    ]


def test_send_stanza_refuses_what_the_peer_would_end_the_stream_for() -> None:
    pair = established_by_dialback()
    assert not pair.out.send_stanza(message(f"room@{CONFERENCE}", "bob@example.org"))
    assert not pair.out.send_stanza(message("roland@falcot.com", "bob@elsewhere.example"))
    assert not pair.out.send_stanza(Element(qname(NS.CLIENT, "message"), {"to": EXAMPLE}))
    assert not pair.inc.send_stanza(message("bob@example.org", "roland@falcot.com"))
    assert not outgoing().send_stanza(message("roland@falcot.com", "bob@example.org"))
    assert pair.out.data_to_send() == b""


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        # RFC 6120 §4.9.3.9, §8.1.2.2: the rule against spoofing.
        ("<message from='mallory@evil.example' to='bob@example.org'/>", "invalid-from"),
        ("<message from='conference.falcot.com' to='bob@example.org'/>", "invalid-from"),
        # §4.9.3.6, §8.1.1.2
        ("<message from='roland@falcot.com' to='bob@elsewhere.example'/>", "host-unknown"),
        # §4.9.3.7: no address, or one that is not a JID.
        ("<message to='bob@example.org'/>", "improper-addressing"),
        ("<presence from='roland@falcot.com'/>", "improper-addressing"),
        ("<iq from='a@@falcot.com' to='example.org' type='get' id='1'/>", "improper-addressing"),
        # §4.8.3: s2s stanzas are in jabber:server.
        (
            "<message xmlns='jabber:client' from='roland@falcot.com' to='bob@example.org'/>",
            "invalid-namespace",
        ),
        ("<bidi xmlns='urn:xmpp:bidi'/>", "unsupported-stanza-type"),
    ],
)
def test_rfc6120_8_1_stanzas_from_the_peer_are_checked(stanza: str, condition: str) -> None:
    pair = established_by_dialback()
    answer = feed(pair.inc, stanza)
    assert f'<{condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>' in answer
    assert condition_of(pair.inc) == condition


def test_stanzas_on_our_outgoing_stream_are_not_authorized() -> None:
    pair = established_by_dialback()
    feed(pair.out, "<message from='bob@example.org' to='roland@falcot.com'/>")
    assert condition_of(pair.out) is StreamCondition.NOT_AUTHORIZED


def test_whitespace_keepalives_are_ignored() -> None:
    pair = established_by_dialback()
    assert feed(pair.inc, " ", "\n", " \t") == "" and not pair.inc.closed


# --- endings -------------------------------------------------------------------------------


def test_rfc6120_4_4_close_and_the_peers_close() -> None:
    pair = established_by_dialback()
    pair.out.close()
    assert pair.out.data_to_send() == b"</stream:stream>"
    assert ended(pair.out) == StreamEnded(None, False)
    pair.inc.receive_data(b"</stream:stream>")
    assert pair.inc.data_to_send() == b"</stream:stream>"
    assert ended(pair.inc) == StreamEnded(None, True)
    pair.out.close(StreamCondition.SYSTEM_SHUTDOWN)  # once only
    assert pair.out.data_to_send() == b""


def test_rfc6120_4_9_the_peers_stream_error_is_reported() -> None:
    pair = established_by_dialback()
    answer = feed(
        pair.out,
        "<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>idle</text></stream:error>",
    )
    end = ended(pair.out)
    assert end.by_peer and end.error is not None and end.error.text == "idle"
    assert end.error.condition is StreamCondition.CONNECTION_TIMEOUT
    assert answer == "</stream:stream>"


def test_rfc6120_4_9_1_1_an_error_in_the_header_still_gets_our_header_first() -> None:
    inc = incoming()
    answer = feed(inc, HEADER.replace("to='example.org'", "to='elsewhere.example'"))
    assert answer.startswith("<?xml version='1.0'?><stream:stream")
    assert "<host-unknown " in answer and answer.endswith("</stream:stream>")


@pytest.mark.parametrize(
    ("header", "condition"),
    [
        (HEADER.replace("' version='1.0'>", "'>"), "unsupported-version"),
        (HEADER.replace("from='falcot.com'", "from='@'"), "improper-addressing"),
        (HEADER.replace("from='falcot.com'", "from='chat.example.org'"), "invalid-from"),
        (HEADER.replace("<stream:stream", "<stream:strem"), "invalid-namespace"),
        ("<message/>", "invalid-namespace"),
    ],
)
def test_bad_incoming_headers(header: str, condition: str) -> None:
    inc = incoming()
    feed(inc, header)
    assert condition_of(inc) == condition


def test_a_refused_domain_gets_policy_violation_before_any_feature() -> None:
    inc = incoming(refused=lambda domain: domain == FALCOT)
    answer = feed(inc, HEADER)
    assert condition_of(inc) is StreamCondition.POLICY_VIOLATION
    assert "<stream:features" not in answer and "EXTERNAL" not in answer


def test_an_outgoing_stream_needs_the_peers_stream_id() -> None:
    out = outgoing()
    out.start()
    feed(out, HEADER)  # a header without id
    assert condition_of(out) is StreamCondition.UNDEFINED_CONDITION


def test_xep0220_2_5_a_verification_error_is_reported_with_its_condition() -> None:
    pair = established_by_dialback()
    assert pair.out.send_verify(EXAMPLE, FALCOT, "id-9", "k")
    feed(
        pair.out,
        "<db:verify from='example.org' to='falcot.com' id='id-9' type='error'>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></db:verify>",
    )
    assert events(pair.out) == [
        VerifyAnswered("id-9", EXAMPLE, FALCOT, False, StanzaCondition.ITEM_NOT_FOUND)
    ]


def test_rfc6120_5_4_2_2_a_starttls_failure_ends_the_stream() -> None:
    out = outgoing()
    out.start()
    feed(
        out,
        HEADER.replace("from='falcot.com' to='example.org'", "from='example.org' id='x1'"),
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    )
    answer = feed(out, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert answer == "</stream:stream>"
    end = ended(out)
    assert end.by_peer and end.error is not None
    assert end.error.condition is StreamCondition.UNDEFINED_CONDITION


def test_the_domains_one_stream_may_authenticate_are_bounded() -> None:
    inc = incoming(require_tls=False)
    feed(inc, HEADER)
    for n in range(MAX_DOMAINS):
        feed(inc, f"<db:result from='d{n}.falcot.com' to='example.org'>k</db:result>")
        inc.dialback_verified(f"d{n}.falcot.com", EXAMPLE, True)
    answer = feed(inc, "<db:result from='one-more.falcot.com' to='example.org'>k</db:result>")
    assert 'type="error"' in answer and "resource-constraint" in answer
    # Those already authenticated may verify again.
    feed(inc, "<db:result from='d0.falcot.com' to='example.org'>k</db:result>")
    assert isinstance(events(inc)[-1], DialbackVerifyNeeded) and not inc.closed
