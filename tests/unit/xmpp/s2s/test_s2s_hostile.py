"""Hostile peers: whatever arrives, in whatever pieces, the stream raises nothing; it
either goes on or ends with its StreamEnded last. And the tables are whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heron.xmpp.errors import StreamCondition
from heron.xmpp.s2s import Role, S2SStream, State, StreamEnded
from heron.xmpp.s2s.states import CALLER_INPUTS, REJECTIONS, TRANSITIONS, Input
from tests.unit.xmpp.s2s.s2s_harness import (
    EXAMPLE,
    FALCOT,
    Pair,
    incoming,
    outgoing,
    valid_for,
)

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
    b" xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
    b" from='falcot.com' to='example.org' id='r1' version='1.0'>"
)


def incoming_in(state: State) -> S2SStream:
    if state is State.HEADER:
        return incoming()
    if state is State.TLS_REQUIRED:
        stream = incoming()
        stream.receive_data(HEADER)
        return stream
    if state is State.TLS_OFFERED:
        stream = incoming(require_tls=False)
        stream.receive_data(HEADER)
        return stream
    if state is State.AUTH:
        stream = incoming(tls_active=True)
        stream.start_tls_done(valid_for(FALCOT))
        stream.receive_data(HEADER)
        return stream
    pair = Pair(inc_sees=valid_for()).run()
    return pair.inc


def outgoing_in(state: State) -> S2SStream:
    stream = outgoing(require_tls=False)
    stream.start()
    if state is State.FEATURES:
        stream.receive_data(HEADER)
    elif state is State.DIALBACK:
        stream.receive_data(HEADER + b"<stream:features/>")
    elif state is State.ESTABLISHED:
        return Pair(inc_sees=valid_for()).run().out
    return stream


def bidi_established() -> Pair:
    pair = Pair(out=outgoing(bidi=True), inc=incoming(bidi=True)).run()
    assert pair.out.bidi and pair.inc.bidi
    return pair


STARTS: dict[str, Callable[[], S2SStream]] = {
    **{
        f"in-{s.name}": (lambda s=s: incoming_in(s))
        for s in (
            State.HEADER,
            State.TLS_REQUIRED,
            State.TLS_OFFERED,
            State.AUTH,
            State.ESTABLISHED,
        )
    },
    **{
        f"out-{s.name}": (lambda s=s: outgoing_in(s))
        for s in (State.HEADER, State.FEATURES, State.DIALBACK, State.ESTABLISHED)
    },
    # XEP-0288: both ends of a bidirectional stream, each taking stanzas from the other.
    "in-bidi": lambda: bidi_established().inc,
    "out-bidi": lambda: bidi_established().out,
}


def drain(stream: S2SStream) -> list[object]:
    found: list[object] = []
    while (event := stream.next_event()) is not None:
        found.append(event)
    return found


def check_outcome(stream: S2SStream, seen: list[object]) -> None:
    ends = [event for event in seen if isinstance(event, StreamEnded)]
    if stream.closed:
        assert len(ends) == 1 and seen[-1] is ends[0]
    else:
        assert not ends


ELEMENTS = st.sampled_from(
    [
        b"<db:result from='falcot.com' to='example.org'>k</db:result>",
        b"<db:result from='falcot.com' to='example.org' type='valid'/>",
        b"<db:result to='example.org'>k</db:result>",
        b"<db:verify from='falcot.com' to='example.org' id='x'>k</db:verify>",
        b"<db:verify from='example.org' to='falcot.com' id='x' type='valid'/>",
        b"<db:verify from='falcot.com' to='example.org'>k</db:verify>",
        b"<message from='a@falcot.com' to='b@example.org'><body>x</body></message>",
        b"<iq from='falcot.com' to='example.org' type='get' id='1'/>",
        b"<presence from='a@falcot.com/r' to='b@example.org'/>",
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
        b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        b"<stream:features/>",
        b"<bidi xmlns='urn:xmpp:bidi'/>",
        b"<message from='b@example.org' to='a@falcot.com'/>",
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        b"</stream:stream>",
        b" ",
        HEADER,
        b"<!DOCTYPE x>",
        b"<a><b><c>",
        b"\xff\xfe",
    ]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    start=st.sampled_from(sorted(STARTS)),
    pieces=st.lists(st.one_of(ELEMENTS, st.binary(max_size=40)), max_size=8),
    chunk=st.integers(min_value=1, max_value=64),
)
def test_receive_data_never_raises_whatever_comes(
    start: str, pieces: list[bytes], chunk: int
) -> None:
    stream = STARTS[start]()
    seen = drain(stream)
    assert not stream.closed
    data = b"".join(pieces)
    for offset in range(0, len(data), chunk):
        stream.receive_data(data[offset : offset + chunk])
        seen += drain(stream)
    stream.data_to_send()
    check_outcome(stream, seen)


@pytest.mark.parametrize("chunk", [1, 7])
@pytest.mark.parametrize("certificates", [True, False], ids=["external", "dialback"])
def test_a_whole_negotiation_fed_in_small_pieces(chunk: int, certificates: bool) -> None:
    sees = valid_for(FALCOT) if certificates else valid_for()
    pair = Pair(inc_sees=sees, chunk=chunk).run()
    assert pair.out.state is State.ESTABLISHED and pair.inc.state is State.ESTABLISHED


def test_xep0368_direct_tls_calls_start_tls_done_first() -> None:
    pair = Pair(out=outgoing(tls_active=True), inc=incoming(tls_active=True))
    assert pair.out.state is State.TLS_HANDSHAKE and pair.inc.state is State.TLS_HANDSHAKE
    pair.out.receive_data(HEADER)  # ignored until the handshake is reported
    pair.inc.start_tls_done(pair.inc_sees)
    pair.out.start_tls_done(pair.out_sees)
    assert pair.out.state is State.IDLE and pair.out.data_to_send() == b""
    pair.run()
    assert "starttls" not in pair.sent_by_out()
    assert pair.out.state is State.ESTABLISHED and pair.inc.authenticated_domains == {FALCOT}


def test_rfc6120_4_9_3_14_a_stanza_over_the_size_limit_is_a_policy_violation() -> None:
    pair = Pair(inc=incoming(max_stanza_bytes=2048), inc_sees=valid_for()).run()
    body = "x" * 4096
    pair.inc.receive_data(
        f"<message from='a@falcot.com' to='b@example.org'><body>{body}</body></message>".encode()
    )
    ended = drain(pair.inc)[-1]
    assert isinstance(ended, StreamEnded) and ended.error is not None
    assert ended.error.condition is StreamCondition.POLICY_VIOLATION


def test_nesting_deeper_than_the_limit_ends_the_stream() -> None:
    stream = incoming(max_depth=8)
    stream.receive_data(HEADER + b"<db:verify>" + b"<a>" * 10)
    ended = drain(stream)[-1]
    assert isinstance(ended, StreamEnded) and ended.error is not None
    assert ended.error.condition is StreamCondition.POLICY_VIOLATION


# --- the tables ----------------------------------------------------------------------------


def test_every_input_has_a_rejection_and_every_edge_leads_somewhere_reachable() -> None:
    assert set(REJECTIONS) == set(Input)
    targets = {target for states in TRANSITIONS.values() for target in states}
    sources = {state for (_, state, _) in TRANSITIONS}
    # Every state but the end can be left, every state but the starts can be reached.
    assert sources == set(State) - {State.CLOSED}
    assert targets | {State.HEADER, State.IDLE, State.TLS_HANDSHAKE} == set(State)
    for role, state, input_ in TRANSITIONS:
        assert (role, state, Input.FOOTER) in TRANSITIONS
        assert (
            input_ in CALLER_INPUTS
            or REJECTIONS[input_] is not None
            or input_
            in {
                Input.DB_ANSWER,
                Input.VERIFY_ANSWER,
            }
        )


@pytest.mark.parametrize("role", list(Role))
def test_answers_of_the_server_with_no_edge_are_dropped(role: Role) -> None:
    stream = incoming() if role is Role.INCOMING else outgoing()
    stream.dialback_verified(FALCOT, EXAMPLE, True)
    stream.start_tls_done(valid_for())
    assert stream.data_to_send() == b"" and drain(stream) == []
    assert stream.state is (State.HEADER if role is Role.INCOMING else State.IDLE)


# --- every state and every input of the peer ------------------------------------------------

PEER_INPUTS = {
    Input.HEADER: HEADER,
    Input.FEATURES: b"<stream:features/>",
    Input.STARTTLS: b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    Input.PROCEED: b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    Input.TLS_FAILURE: b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    Input.AUTH: b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
    Input.SASL_SUCCESS: b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    Input.SASL_FAILURE: b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    Input.DB_REQUEST: b"<db:result from='falcot.com' to='example.org'>k</db:result>",
    Input.DB_ANSWER: b"<db:result from='example.org' to='falcot.com' type='valid'/>",
    Input.VERIFY_REQUEST: b"<db:verify from='falcot.com' to='example.org' id='i'>k</db:verify>",
    Input.VERIFY_ANSWER: b"<db:verify from='example.org' to='falcot.com' id='i' type='valid'/>",
    Input.STANZA: b"<message from='a@falcot.com' to='b@example.org'/>",
    Input.BIDI: b"<bidi xmlns='urn:xmpp:bidi'/>",
    Input.FOOTER: b"</stream:stream>",
}
FEATURES_WITH = {
    "starttls": b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    b"</stream:features>",
    "external": b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    b"<mechanism>EXTERNAL</mechanism></mechanisms></stream:features>",
}


def outgoing_at(state: State) -> S2SStream:
    if state is State.PROCEED:
        stream = outgoing()
        stream.start()
        stream.receive_data(HEADER + FEATURES_WITH["starttls"])
        return stream
    if state is State.SASL:
        stream = outgoing(tls_active=True)
        stream.start_tls_done(valid_for(EXAMPLE))
        stream.start()
        stream.receive_data(HEADER + FEATURES_WITH["external"])
        return stream
    return outgoing_in(state)


PLACES = [
    (Role.INCOMING, state)
    for state in (
        State.HEADER,
        State.TLS_REQUIRED,
        State.TLS_OFFERED,
        State.AUTH,
        State.ESTABLISHED,
    )
] + [
    (Role.OUTGOING, state)
    for state in (
        State.HEADER,
        State.FEATURES,
        State.PROCEED,
        State.SASL,
        State.DIALBACK,
        State.ESTABLISHED,
    )
]


@pytest.mark.parametrize("input_", list(PEER_INPUTS), ids=lambda i: i.name)
@pytest.mark.parametrize(("role", "state"), PLACES, ids=lambda p: getattr(p, "name", p))
def test_every_state_and_peer_input(role: Role, state: State, input_: Input) -> None:
    stream = incoming_in(state) if role is Role.INCOMING else outgoing_at(state)
    assert stream.state is state
    drain(stream)
    stream.data_to_send()
    stream.receive_data(PEER_INPUTS[input_])
    seen = drain(stream)
    check_outcome(stream, seen)
    edge = TRANSITIONS.get((role, state, input_))
    if state is State.HEADER and input_ is not Input.HEADER:
        assert stream.closed  # the stream must open first
    elif input_ is Input.HEADER and state is not State.HEADER:
        # A second XML declaration is not well-formed; without one, <stream:stream> is an
        # element that has not ended yet (bounded by max_stanza_bytes).
        assert stream.closed
        stream = incoming_in(state) if role is Role.INCOMING else outgoing_at(state)
        drain(stream)
        stream.receive_data(HEADER.removeprefix(b"<?xml version='1.0'?>"))
        assert not stream.closed and drain(stream) == []
    elif edge is not None:
        assert stream.state in edge | {State.CLOSED}
    elif REJECTIONS[input_] is None:
        assert stream.state is state and stream.data_to_send() == b"" and seen == []
    else:
        ended = seen[-1]
        assert isinstance(ended, StreamEnded) and ended.error is not None
        assert ended.error.condition is REJECTIONS[input_]
