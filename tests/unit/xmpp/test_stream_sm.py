"""XEP-0198 on the c2s stream: transcripts of enable, acks both ways, hibernation and
resumption, without sockets."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StreamCondition
from heron.xmpp.sm import SmLimits
from heron.xmpp.stream import C2SStream, ResumeRequested, SmEnabled, StanzaReceived, State
from tests.unit.xmpp.test_stream import (
    BIND,
    CLIENT_HEADER,
    ENABLE,
    MESSAGE,
    PLAIN,
    ROLAND,
    SM_NS,
    Peer,
    login,
    new_stream,
    with_sm,
)

SM = f'xmlns="{SM_NS}"'


def chat(body: str) -> Element:
    message = Element("{jabber:client}message", {"from": "bob@falcot.com/x", "type": "chat"})
    SubElement(message, "{jabber:client}body").text = body
    return message


def wire(body: str) -> str:
    return f'<message from="bob@falcot.com/x" type="chat"><body>{body}</body></message>'


def enabled(stream: C2SStream | None = None) -> tuple[C2SStream, Peer]:
    stream = stream or with_sm()
    client = login(stream)
    output = client.send(ENABLE)
    assert output == f'<enabled {SM} id="id0" resume="true" max="300"/>'
    assert client.events() == [SmEnabled("id0")]
    return stream, client


def test_xep0198_2_sm_is_offered_with_bind_only_when_configured() -> None:
    stream = with_sm()
    login(stream, through=State.SASL_HEADER)
    assert f"<sm {SM}/>" in Peer(stream).send(CLIENT_HEADER)
    plain = new_stream()
    login(plain, through=State.SASL_HEADER)
    assert "urn:xmpp:sm:3" not in Peer(plain).send(CLIENT_HEADER)


def test_xep0198_3_enable_without_resume_gives_no_id() -> None:
    stream = with_sm()
    client = login(stream)
    assert client.send(f"<enable xmlns='{SM_NS}'/>".encode()) == f"<enabled {SM}/>"
    assert client.events() == [SmEnabled(None)]
    assert stream.resume_id is None
    assert not stream.connection_lost()  # nothing to resume: the session ends


def test_xep0198_3_enable_before_bind_or_twice_fails() -> None:
    stream = with_sm()
    client = login(stream, through=State.BIND)
    failed = (
        f'<failed {SM}><unexpected-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></failed>'
    )
    assert client.send(ENABLE) == failed
    assert stream.state is State.BIND
    client.send(BIND)
    stream.bind_done(ROLAND.with_resource("laptop"))
    stream.data_to_send()
    client.events()
    assert client.send(ENABLE).startswith("<enabled")
    assert client.send(ENABLE) == failed


def test_xep0198_4_the_server_counts_what_the_client_sent_and_answers_r() -> None:
    stream, client = enabled()
    client.send(MESSAGE + MESSAGE)
    assert [type(e) for e in client.events()] == [StanzaReceived, StanzaReceived]
    assert client.send(f"<r xmlns='{SM_NS}'/>".encode()) == f'<a {SM} h="2"/>'


def test_xep0198_4_the_server_asks_for_acks_and_forgets_what_is_acked() -> None:
    stream, client = enabled()
    stream.send_stanza(chat("one"))
    assert stream.data_to_send().decode() == wire("one") + f"<r {SM}/>"
    stream.send_stanza(chat("two"))
    assert stream.data_to_send().decode() == wire("two")  # an <r/> is still unanswered
    assert client.send(f"<a xmlns='{SM_NS}' h='1'/>".encode()) == ""
    assert stream.take_unacked()[0].findtext("{jabber:client}body") == "two"


def test_xep0198_4_acking_more_than_was_sent_ends_the_stream() -> None:
    stream, client = enabled()
    stream.send_stanza(chat("one"))
    stream.data_to_send()
    output = client.send(f"<a xmlns='{SM_NS}' h='2'/>".encode())
    assert "undefined-condition" in output and "handled-count-too-high" in output
    assert stream.closed


def test_xep0198_the_unacked_queue_is_bounded() -> None:
    stream, _ = enabled(with_sm(sm=SmLimits(stanzas=2)))
    for body in ("one", "two", "three"):
        stream.send_stanza(chat(body))
    output = stream.data_to_send().decode()
    assert "<resource-constraint" in output
    assert stream.closed
    # All three end where unacked stanzas end (offline storage, bounces).
    assert [m.findtext("{jabber:client}body") for m in stream.take_unacked()] == [
        "one",
        "two",
        "three",
    ]


def resumed_transcript(previous: C2SStream, h: int) -> tuple[C2SStream, Peer, str]:
    stream = with_sm()
    client = login(stream, through=State.BIND)
    assert client.send(f"<resume xmlns='{SM_NS}' previd='id0' h='{h}'/>".encode()) == ""
    assert client.events() == [ResumeRequested("id0", h)]
    assert stream.state is State.RESUMING
    stream.resumed(previous)
    return stream, client, stream.data_to_send().decode()


def test_xep0198_5_a_dropped_session_hibernates_and_resumes_with_what_it_missed() -> None:
    old, old_client = enabled()
    old_client.send(MESSAGE)
    for body in ("one", "two"):
        old.send_stanza(chat(body))
    old.data_to_send()
    assert old.connection_lost()
    assert old.state is State.HIBERNATED
    old.send_stanza(chat("three"))  # while away: kept, not written
    assert old.data_to_send() == b""

    # The client got "one" only; it says so in <resume/>.
    stream, client, output = resumed_transcript(old, h=1)
    assert output == (
        f'<resumed {SM} previd="id0" h="1"/>' + wire("two") + wire("three") + f"<r {SM}/>"
    )
    assert stream.state is State.ESTABLISHED
    assert stream.jid == ROLAND.with_resource("laptop")
    assert stream.resume_id == "id0"
    assert old.closed
    # Counting goes on from where it was.
    client.send(MESSAGE)
    client.events()
    assert client.send(f"<r xmlns='{SM_NS}'/>".encode()) == f'<a {SM} h="2"/>'
    assert client.send(f"<a xmlns='{SM_NS}' h='3'/>".encode()) == ""
    assert stream.take_unacked() == []


def test_xep0198_5_resumption_over_a_websocket_frames_the_stanzas_for_it() -> None:
    old, _ = enabled()
    old.send_stanza(chat("one"))
    old.data_to_send()
    assert old.connection_lost()
    stream = with_sm(websocket=True, tls_active=True)
    peer = Peer(stream)
    opening = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='falcot.com' version='1.0'/>"
    peer.send(opening)
    peer.send(PLAIN)
    stream.plain_verified(True)
    peer.send(opening)
    stream.messages_to_send()
    peer.events()
    stream.receive_data(f"<resume xmlns='{SM_NS}' previd='id0' h='0'/>".encode())
    stream.resumed(old)
    messages = stream.messages_to_send()
    assert messages[0] == f'<resumed {SM} previd="id0" h="0"/>'
    assert messages[1] == (
        '<message xmlns="jabber:client" from="bob@falcot.com/x" type="chat">'
        "<body>one</body></message>"
    )


def test_xep0198_5_a_failed_resumption_leaves_binding_open() -> None:
    stream = with_sm()
    client = login(stream, through=State.BIND)
    client.send(f"<resume xmlns='{SM_NS}' previd='nope' h='0'/>".encode())
    stream.resume_failed()
    assert stream.data_to_send().decode() == (
        f'<failed {SM}><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></failed>'
    )
    assert stream.state is State.BIND


def test_xep0198_5_a_failed_resumption_of_an_ended_session_carries_its_h() -> None:
    stream = with_sm()
    client = login(stream, through=State.BIND)
    client.send(f"<resume xmlns='{SM_NS}' previd='gone' h='0'/>".encode())
    stream.resume_failed(handled=42)
    assert stream.data_to_send().decode() == (
        f'<failed {SM} h="42"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        "</failed>"
    )
    assert stream.state is State.BIND


def test_xep0198_5_resume_after_binding_is_unexpected() -> None:
    stream, client = enabled()
    output = client.send(f"<resume xmlns='{SM_NS}' previd='id0' h='0'/>".encode())
    assert "unexpected-request" in output
    assert stream.state is State.ESTABLISHED


def test_a_closed_stream_does_not_hibernate() -> None:
    stream, client = enabled()
    client.send(b"</stream:stream>")
    assert not stream.connection_lost()


def test_a_hibernating_session_that_is_closed_gives_back_its_unacked() -> None:
    stream, _ = enabled()
    stream.send_stanza(chat("one"))
    assert stream.connection_lost()
    stream.send_stanza(chat("two"))
    stream.close(StreamCondition.CONFLICT)
    assert [m.findtext("{jabber:client}body") for m in stream.take_unacked()] == ["one", "two"]


def test_sm_nonzas_before_authentication_end_the_stream() -> None:
    stream = with_sm()
    client = login(stream, through=State.SASL)
    output = client.send(ENABLE)
    assert "<not-authorized" in output
    assert stream.closed


def test_a_malformed_h_ends_the_stream() -> None:
    stream, client = enabled()
    assert "<invalid-xml" in client.send(f"<a xmlns='{SM_NS}' h='-1'/>".encode())
    assert stream.closed
    other = with_sm()
    peer = login(other, through=State.BIND)
    assert "<invalid-xml" in peer.send(f"<resume xmlns='{SM_NS}' previd='x'/>".encode())
    assert other.closed


def test_an_ack_before_enabling_is_ignored() -> None:
    stream = with_sm()
    client = login(stream)
    assert client.send(f"<a xmlns='{SM_NS}' h='7'/><r xmlns='{SM_NS}'/>".encode()) == ""
    assert stream.state is State.ESTABLISHED


def test_without_resumption_enable_gives_acks_only_and_resume_finds_nothing() -> None:
    """``xmpp.resume_timeout = 0``: acks stay, resumption is never offered."""
    stream = with_sm(resume_ids=None)
    client = login(stream)
    assert client.send(ENABLE) == f"<enabled {SM}/>"
    other = with_sm(resume_ids=None)
    peer = login(other, through=State.BIND)
    output = peer.send(f"<resume xmlns='{SM_NS}' previd='id0' h='0'/>".encode())
    assert "<item-not-found" in output
    assert other.state is State.BIND
