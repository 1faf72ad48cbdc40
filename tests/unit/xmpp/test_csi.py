"""XEP-0352 Client State Indication: mod_csi_simple's rules, the bounded queue, the stream."""

from __future__ import annotations

from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.xmpp.errors import StreamCondition
from heron.xmpp.features.csi import ClientState, QueueLimits, holds, important
from heron.xmpp.stream import StanzaReceived, State
from heron.xmpp.xml import serialize
from tests.unit.xmpp.test_stream import ended_with, login, new_stream

INACTIVE = b"<inactive xmlns='urn:xmpp:csi:0'/>"
ACTIVE = b"<active xmlns='urn:xmpp:csi:0'/>"
PING = b"<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"


def stanza(xml: str) -> Element:
    """``xml`` parsed as a stream's child, in ``jabber:client``."""
    return fromstring(f"<stream xmlns='jabber:client'>{xml}</stream>")[0]


UNIMPORTANT = {
    "available presence": "<presence from='a@b/c'><show>away</show></presence>",
    "unavailable presence": "<presence type='unavailable' from='a@b/c'/>",
    "presence error": "<presence type='error' from='a@b'/>",
    "chat state without body": (
        "<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ),
    "receipt": "<message><received xmlns='urn:xmpp:receipts' id='1'/></message>",
    "headline with body": "<message type='headline'><body>news</body></message>",
    "carbon of a chat state": (
        "<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<message xmlns='jabber:client' type='chat'>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        "</forwarded></received></message>"
    ),
}
IMPORTANT = {
    "message with body": "<message type='chat'><body>hi</body></message>",
    "group chat subject": "<message type='groupchat'><subject>s</subject></message>",
    "message error": "<message type='error'/>",
    "carbon of a sent message": (
        "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<message xmlns='jabber:client' type='chat'/></forwarded></sent></message>"
    ),
    "carbon of a received body": (
        "<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<message xmlns='jabber:client' type='chat'><body>hi</body></message>"
        "</forwarded></received></message>"
    ),
    "encrypted without body": "<message><encryption xmlns='urn:xmpp:eme:0'/></message>",
    "direct invitation": "<message><x xmlns='jabber:x:conference' jid='r@c'/></message>",
    "mediated invitation": (
        "<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>"
    ),
    "subscription request": "<presence type='subscribe' from='a@b'/>",
    "iq": "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
}


@pytest.mark.parametrize("xml", UNIMPORTANT.values(), ids=list(UNIMPORTANT))
def test_mod_csi_simple_holds_presence_and_payloads_without_body(xml: str) -> None:
    assert not important(stanza(xml))


@pytest.mark.parametrize("xml", IMPORTANT.values(), ids=list(IMPORTANT))
def test_mod_csi_simple_sends_bodies_invitations_errors_and_iqs_at_once(xml: str) -> None:
    assert important(stanza(xml))


def test_holds_only_unimportant_stanzas_of_an_inactive_session_that_fit() -> None:
    presence, iq = stanza(UNIMPORTANT["available presence"]), stanza(IMPORTANT["iq"])
    limits = QueueLimits(stanzas=1, size=100)
    assert holds(False, 0, 0, 100, limits, presence)
    assert not holds(True, 0, 0, 1, limits, presence)  # §5: active until it says otherwise
    assert not holds(False, 1, 1, 1, limits, presence)  # too many: sent, after all held
    assert not holds(False, 0, 0, 101, limits, presence)  # too big, likewise
    assert not holds(False, 0, 0, 1, limits, iq)


def held_elements(stanzas: int = 4, size: int = 1 << 20) -> ClientState[Element]:
    """A state whose items are the stanzas themselves."""
    return ClientState(QueueLimits(stanzas, size))


def offer(state: ClientState[Element], element: Element, size: int = 1) -> list[Element]:
    return state.send(element, element, size)


def test_xep0352_5_a_session_starts_active() -> None:
    state = held_elements()
    presence = stanza(UNIMPORTANT["available presence"])
    assert offer(state, presence) == [presence]


def test_an_important_stanza_goes_out_after_everything_held_in_order() -> None:
    state = held_elements()
    state.deactivate()
    first, second = stanza(UNIMPORTANT["available presence"]), stanza(UNIMPORTANT["receipt"])
    body = stanza(IMPORTANT["message with body"])
    assert offer(state, first) == [] and offer(state, second) == []
    assert offer(state, body) == [first, second, body]
    assert state.held == []
    assert not state.active  # still inactive: the next presence waits again


def test_a_full_queue_is_sent_whole() -> None:
    state = held_elements(stanzas=2)
    state.deactivate()
    presences = [stanza(UNIMPORTANT["available presence"]) for _ in range(3)]
    assert offer(state, presences[0]) == [] and offer(state, presences[1]) == []
    assert offer(state, presences[2]) == presences


def test_a_queue_over_its_bytes_is_sent_whole() -> None:
    state = held_elements(size=100)
    state.deactivate()
    presences = [stanza(UNIMPORTANT["available presence"]) for _ in range(3)]
    assert offer(state, presences[0], 60) == []
    assert offer(state, presences[1], 60) == presences[:2]
    assert offer(state, presences[2], 60) == []  # counted afresh after the flush


def test_active_releases_what_was_held() -> None:
    state = held_elements()
    state.deactivate()
    presence = stanza(UNIMPORTANT["available presence"])
    offer(state, presence)
    assert state.activate() == [presence]
    assert state.activate() == []


@pytest.mark.parametrize(("stanzas", "size"), [(0, 1), (1, 0)])
def test_the_queue_holds_at_least_one(stanzas: int, size: int) -> None:
    with pytest.raises(ValueError):
        QueueLimits(stanzas, size)


KINDS = sorted(UNIMPORTANT | IMPORTANT)
ACTIONS = st.lists(
    st.one_of(st.sampled_from(KINDS), st.sampled_from(["<active/>", "<inactive/>"])),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    actions=ACTIONS,
    limit=st.integers(min_value=1, max_value=5),
    size=st.integers(min_value=1, max_value=300),
    sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=1),
)
def test_nothing_lost_order_kept_queue_bounded(
    actions: list[str], limit: int, size: int, sizes: list[int]
) -> None:
    state = held_elements(limit, size)
    held_size = 0
    offered: list[Element] = []
    sent: list[Element] = []
    for action in actions:
        if action == "<active/>":
            sent += state.activate()
            held_size = 0
        elif action == "<inactive/>":
            state.deactivate()
        else:
            element = stanza((UNIMPORTANT | IMPORTANT)[action])
            element_size = sizes[len(offered) % len(sizes)]
            offered.append(element)
            out = offer(state, element, element_size)
            sent += out
            held_size = 0 if out else held_size + element_size
            if important(element):
                assert out[-1:] == [element]  # at once, after what was held
        assert len(state.held) <= limit
        assert held_size <= size
        if state.active:
            assert state.held == []
    assert [*sent, *state.held] == offered  # same objects, same order: none lost, none twice


# --- the stream (XEP-0352 §4, §5.1) -------------------------------------------------------


def presence_from(contact: str) -> Element:
    return stanza(f"<presence from='{contact}' to='roland@falcot.com/laptop'/>")


def test_xep0352_4_2_nonzas_get_no_reply_and_hold_presence_until_active() -> None:
    stream = new_stream()
    client = login(stream)
    assert client.send(INACTIVE) == ""
    assert client.events() == []
    stream.send_stanza(presence_from("bob@falcot.com/a"))
    stream.send_stanza(presence_from("carol@falcot.com/b"))
    assert stream.data_to_send() == b""
    output = client.send(ACTIVE)
    assert (
        output
        == (
            serialize(presence_from("bob@falcot.com/a"))
            + serialize(presence_from("carol@falcot.com/b"))
        ).decode()
    )
    assert stream.state is State.ESTABLISHED


def test_xep0352_a_body_message_flushes_the_held_presence_before_it() -> None:
    stream = new_stream()
    client = login(stream)
    client.send(INACTIVE)
    stream.send_stanza(presence_from("bob@falcot.com/a"))
    body = stanza("<message from='bob@falcot.com/a' type='chat'><body>hi</body></message>")
    stream.send_stanza(body)
    assert stream.data_to_send() == serialize(presence_from("bob@falcot.com/a")) + serialize(body)


def test_xep0352_5_1_active_releases_before_the_answer_to_what_follows() -> None:
    stream = new_stream()
    client = login(stream)
    client.send(INACTIVE)
    stream.send_stanza(presence_from("bob@falcot.com/a"))
    # The held presence is on the wire before the ping even reaches the router.
    assert client.send(ACTIVE + PING) == serialize(presence_from("bob@falcot.com/a")).decode()
    (event,) = client.events()
    assert isinstance(event, StanzaReceived)
    assert event.stanza.get("id") == "p1"


def test_the_stream_queue_is_bounded_by_csi_queue() -> None:
    stream = new_stream(csi_queue=2)
    client = login(stream)
    client.send(INACTIVE)
    stream.send_stanza(presence_from("a@falcot.com/1"))
    stream.send_stanza(presence_from("b@falcot.com/1"))
    assert stream.data_to_send() == b""
    stream.send_stanza(presence_from("c@falcot.com/1"))
    assert stream.data_to_send().count(b"<presence") == 3


def test_csi_before_binding_is_not_authorized() -> None:
    stream = new_stream()
    login(stream, through=State.BIND)
    assert ended_with(stream, INACTIVE)[0] == StreamCondition.NOT_AUTHORIZED


def test_other_elements_of_the_csi_namespace_are_unsupported() -> None:
    stream = new_stream()
    login(stream)
    condition = ended_with(stream, b"<csi xmlns='urn:xmpp:csi:0'/>")[0]
    assert condition == StreamCondition.UNSUPPORTED_STANZA_TYPE


def test_the_stream_holds_at_most_a_slow_clients_worth_of_bytes() -> None:
    stream = new_stream()
    client = login(stream)
    client.send(INACTIVE)
    big = presence_from("bob@falcot.com/a")
    big.append(stanza(f"<status>{'x' * 600_000}</status>"))  # two exceed MAX_HELD_BYTES
    stream.send_stanza(big)
    assert stream.data_to_send() == b""
    stream.send_stanza(big)
    assert stream.data_to_send().count(b"<presence") == 2
