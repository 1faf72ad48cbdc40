"""XEP-0288 bidirectional s2s streams: both ends in memory, and the spoofing rules of
each direction."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.xmpp.errors import StreamCondition
from heron.xmpp.jid import JID
from heron.xmpp.s2s import Authenticated, AuthMethod, S2SStream, StanzaReceived, State
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.s2s.s2s_harness import (
    CONFERENCE,
    EXAMPLE,
    FALCOT,
    Pair,
    incoming,
    outgoing,
    valid_for,
)

BIDI_REQUEST = '<bidi xmlns="urn:xmpp:bidi"/>'
BIDI_FEATURE = '<bidi xmlns="urn:xmpp:features:bidi"/>'


def bidi_pair(**options: object) -> Pair:
    arguments: dict[str, object] = {"out": outgoing(bidi=True), "inc": incoming(bidi=True)}
    arguments.update(options)
    return Pair(**arguments)  # type: ignore[arg-type]


def message(sender: str, to: str) -> Element:
    stanza = Element(qname(NS.CLIENT, "message"), {"from": sender, "to": to, "type": "chat"})
    SubElement(stanza, qname(NS.CLIENT, "body")).text = "Salut"
    return stanza


def received(pair: Pair) -> StanzaReceived:
    last = pair.out_events[-1]
    assert isinstance(last, StanzaReceived)
    return last


def ended_with(stream: S2SStream) -> StreamCondition:
    assert stream.closed
    last = None
    while (event := stream.next_event()) is not None:
        last = event
    error = getattr(last, "error", None)
    assert error is not None
    return error.condition


def test_xep0288_2_external_then_stanzas_both_ways_on_one_stream() -> None:
    pair = bidi_pair().run()
    sent = pair.sent_by_out()
    # §2.1: offered after TLS; §2.2: asked for before SASL.
    assert pair.sent_by_inc().count(BIDI_FEATURE) == 1
    assert sent.index(BIDI_REQUEST) < sent.index("<auth ")
    assert pair.inc_events[-1] == Authenticated(FALCOT, AuthMethod.EXTERNAL, EXAMPLE, bidi=True)
    assert pair.out_events[-1] == Authenticated(EXAMPLE, AuthMethod.EXTERNAL, FALCOT, bidi=True)
    assert pair.inc.bidi and pair.out.bidi
    assert pair.inc.send_stanza(message("bob@example.org/pda", "roland@falcot.com"))
    assert pair.out.send_stanza(message("roland@falcot.com", "bob@example.org"))
    pair.pump()
    assert received(pair).sender == JID("bob", EXAMPLE, "pda")
    assert received(pair).to == JID("roland", FALCOT)
    assert isinstance(pair.inc_events[-1], StanzaReceived)


def test_xep0288_2_2_a_stanza_sent_during_the_restart_after_sasl_waits_for_our_header() -> None:
    pair = bidi_pair()
    pair.out.start()
    pair.pump(until=lambda: bool(pair.inc.authenticated_domains))
    assert pair.inc.state is State.HEADER
    assert pair.inc.send_stanza(message("bob@example.org", "roland@falcot.com"))
    assert pair.inc.data_to_send() == b""
    pair.pump()
    assert received(pair).to == JID("roland", FALCOT)
    assert pair.sent_by_inc().rindex("<stream:features") < pair.sent_by_inc().rindex("<message")


def test_xep0288_2_2_dialback_pairs_are_sent_back_in_reverse() -> None:
    pair = bidi_pair(inc_sees=valid_for()).run()
    assert pair.inc_events[-1] == Authenticated(FALCOT, AuthMethod.DIALBACK, EXAMPLE, bidi=True)
    assert pair.out.authenticate_more(CONFERENCE)
    pair.pump()
    assert pair.inc.send_stanza(message("bob@example.org", f"room@{CONFERENCE}"))
    pair.pump()
    assert received(pair).to == JID("room", CONFERENCE)


def test_no_bidi_without_a_certificate_valid_for_the_receiving_server() -> None:
    pair = bidi_pair(out_sees=valid_for()).run()
    assert BIDI_REQUEST not in pair.sent_by_out()
    assert pair.inc_events[-1] == Authenticated(FALCOT, AuthMethod.EXTERNAL, EXAMPLE)
    assert not pair.inc.bidi and not pair.out.bidi
    assert not pair.inc.send_stanza(message("bob@example.org", "roland@falcot.com"))


@pytest.mark.parametrize("side", ["out", "inc"])
def test_bidi_needs_both_sides(side: str) -> None:
    plain = {"out": outgoing(), "inc": incoming()}
    pair = bidi_pair(**{side: plain[side]}).run()
    assert BIDI_REQUEST not in pair.sent_by_out()
    assert (BIDI_FEATURE in pair.sent_by_inc()) is (side == "out")
    assert not pair.inc.bidi and not pair.out.bidi


@pytest.mark.parametrize(
    ("sender", "to"),
    [
        ("bob@chat.example.org", "roland@falcot.com"),  # not the authenticated pair
        ("bob@example.org", f"room@{CONFERENCE}"),  # conference.falcot.com not authenticated
        ("bob@example.org", "someone@elsewhere.example"),
        ("roland@falcot.com", "bob@example.org"),
    ],
)
def test_xep0288_2_2_the_receiving_server_sends_only_for_authenticated_pairs(
    sender: str, to: str
) -> None:
    pair = bidi_pair().run()
    assert not pair.inc.send_stanza(message(sender, to))
    assert pair.inc.data_to_send() == b""


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        # RFC 6120 §4.9.3.9 on the way back: only the domain the certificate proved.
        ("<message from='mallory@evil.example' to='roland@falcot.com'/>", "invalid-from"),
        ("<message from='bob@chat.example.org' to='roland@falcot.com'/>", "invalid-from"),
        ("<message from='roland@falcot.com' to='roland@falcot.com'/>", "invalid-from"),
        # Only to our domains this stream authenticated.
        ("<message from='bob@example.org' to='room@conference.falcot.com'/>", "host-unknown"),
        ("<message from='bob@example.org' to='x@elsewhere.example'/>", "host-unknown"),
        ("<message to='roland@falcot.com'/>", "improper-addressing"),
    ],
)
def test_xep0288_the_initiating_server_checks_what_comes_back(stanza: str, condition: str) -> None:
    pair = bidi_pair().run()
    pair.out.receive_data(stanza.encode())
    assert ended_with(pair.out) == condition


def test_stanzas_back_on_a_stream_without_bidi_are_not_authorized() -> None:
    pair = bidi_pair(out_sees=valid_for()).run()
    pair.out.receive_data(b"<message from='bob@example.org' to='roland@falcot.com'/>")
    assert ended_with(pair.out) is StreamCondition.NOT_AUTHORIZED


def test_xep0288_2_2_bidi_after_authentication_is_a_policy_violation() -> None:
    pair = bidi_pair(out_sees=valid_for()).run()
    pair.inc.receive_data(b"<bidi xmlns='urn:xmpp:bidi'/>")
    assert ended_with(pair.inc) is StreamCondition.POLICY_VIOLATION


def test_xep0288_a_repeated_bidi_is_dropped() -> None:
    pair = bidi_pair().run()
    pair.inc.receive_data(b"<bidi xmlns='urn:xmpp:bidi'/>")
    assert not pair.inc.closed and pair.inc.bidi


def test_xep0288_2_1_bidi_before_tls_is_a_policy_violation() -> None:
    inc = incoming(bidi=True, require_tls=False)
    inc.receive_data(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
        b" xmlns:stream='http://etherx.jabber.org/streams' from='falcot.com'"
        b" to='example.org' version='1.0'><bidi xmlns='urn:xmpp:bidi'/>"
    )
    assert BIDI_FEATURE not in inc.data_to_send().decode()
    assert ended_with(inc) is StreamCondition.POLICY_VIOLATION


def test_bidi_refused_where_it_is_switched_off() -> None:
    pair = Pair(out=outgoing(bidi=True), inc=incoming(), inc_sees=valid_for())
    pair.out.start()
    pair.pump(until=lambda: pair.inc.state is State.AUTH)
    pair.inc.receive_data(b"<bidi xmlns='urn:xmpp:bidi'/>")
    assert ended_with(pair.inc) is StreamCondition.UNSUPPORTED_STANZA_TYPE
