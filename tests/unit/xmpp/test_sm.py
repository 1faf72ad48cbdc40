"""XEP-0198's rules, without a stream: counters mod 2^32, the bounded unacked queue, the
table of resumable sessions, and the fate of what a session never acknowledged."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import StreamCondition, StreamError
from heron.xmpp.jid import JID
from heron.xmpp.sm import MODULUS, Acks, Fate, Hibernation, SmLimits, fate, parse_h

ROLAND = JID("roland", "falcot.com")
RAPHAEL = JID("raphael", "falcot.com")

# An operation: send a stanza of a size, or the client acknowledges some of the unacked.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 300)),
        st.tuples(st.just("ack"), st.integers(0, 10)),
    ),
    max_size=60,
)


@given(start=st.integers(0, MODULUS - 1), ops=operations)
def test_xep0198_4_unacked_is_what_was_sent_and_not_acked_in_order_mod_2_32(
    start: int, ops: list[tuple[str, int]]
) -> None:
    acks: Acks[int] = Acks(SmLimits(stanzas=20, size=2000), start=start)
    model: list[int] = []  # the stanzas in flight, oldest first
    sent = 0
    acked = 0
    for op, value in ops:
        if op == "send":
            if not acks.fits(value):
                with pytest.raises(StreamError) as raised:
                    acks.queue(sent, value)
                assert raised.value.condition is StreamCondition.RESOURCE_CONSTRAINT
                assert acks.drain() == [*model, sent]  # kept: the stream ends with them all
                return
            acks.queue(sent, value)
            model.append(sent)
            sent += 1
        else:
            count = min(value, len(model))
            acked += count
            assert acks.ack((start + acked) % MODULUS) == model[:count]
            del model[:count]
        assert acks.unacked == model
        assert acks.sent == (start + sent) % MODULUS
        assert len(model) <= 20


@given(start=st.integers(0, MODULUS - 1), extra=st.integers(1, 1000))
def test_xep0198_4_an_h_above_what_was_sent_is_handled_count_too_high(
    start: int, extra: int
) -> None:
    acks: Acks[str] = Acks(SmLimits(), start=start)
    acks.queue("a", 10)
    with pytest.raises(StreamError) as raised:
        acks.ack((start + 1 + extra) % MODULUS)
    assert raised.value.condition is StreamCondition.UNDEFINED_CONDITION
    assert "handled-count-too-high" in raised.value.text
    assert acks.unacked == ["a"]


def test_xep0198_4_the_inbound_counter_wraps_to_zero() -> None:
    acks: Acks[str] = Acks(SmLimits(), start=MODULUS - 1)
    acks.handled()
    assert acks.inbound == 0


def test_the_queue_is_bounded_in_bytes_too() -> None:
    acks: Acks[str] = Acks(SmLimits(stanzas=100, size=1000))
    acks.queue("big", 900)
    assert not acks.fits(101)
    acks.ack(1)
    acks.queue("more", 101)
    with pytest.raises(StreamError):
        acks.queue("too much", 900)


def test_an_ack_is_asked_for_when_none_is_pending_or_every_few_stanzas() -> None:
    acks: Acks[int] = Acks(SmLimits(ack_every=3))
    assert not acks.request_due(0)
    assert acks.request_due(1)  # none pending
    assert not acks.request_due(1)
    assert not acks.request_due(1)
    assert acks.request_due(1)  # three since the last, still unanswered
    acks.ack(0)
    assert acks.request_due(1)


def test_drain_takes_everything_out() -> None:
    acks: Acks[int] = Acks(SmLimits())
    for n in range(3):
        acks.queue(n, 1)
    assert acks.drain() == [0, 1, 2]
    assert acks.unacked == []
    assert acks.ack(acks.sent) == []


@pytest.mark.parametrize("text", [None, "", "-1", "1.0", "x", "4294967296", "٣", " 1", "1" * 11])
def test_h_must_be_an_unsigned_32_bit_integer(text: str | None) -> None:
    with pytest.raises(StreamError) as raised:
        parse_h(text)
    assert raised.value.condition is StreamCondition.INVALID_XML


def test_h_values() -> None:
    assert parse_h("0") == 0
    assert parse_h("4294967295") == MODULUS - 1


# --- the table of resumable sessions ---------------------------------------------------


def test_xep0198_5_only_the_account_that_enabled_it_may_resume() -> None:
    table: Hibernation[str] = Hibernation(300)
    table.register("id-1", ROLAND.with_resource("phone"), "roland's")
    assert table.claim("id-1", RAPHAEL) is None  # item-not-found: not raphael's
    assert table.claim("id-2", ROLAND) is None  # unknown
    assert table.claim("id-1", ROLAND) == "roland's"


def test_xep0198_5_a_session_waits_until_its_deadline_then_is_gone() -> None:
    table: Hibernation[str] = Hibernation(300)
    table.register("a", ROLAND, "a")
    table.register("b", ROLAND, "b")
    assert table.hibernate("a", now=1000.0) == []
    assert table.hibernate("b", now=1100.0) == []
    assert table.next_deadline() == 1300.0
    assert table.expire(1299.0) == []
    assert table.expire(1300.0) == ["a"]
    assert table.claim("a", ROLAND) is None  # expired
    assert table.claim("b", ROLAND) == "b"  # awake again: no deadline
    assert table.next_deadline() is None
    assert table.expire(10_000.0) == []


def test_the_oldest_hibernating_session_of_an_account_makes_room() -> None:
    table: Hibernation[str] = Hibernation(300, per_account=2, total=3)
    for n, account in enumerate([ROLAND, ROLAND, ROLAND, RAPHAEL, RAPHAEL]):
        table.register(str(n), account, str(n))
    assert table.hibernate("0", 1.0) == []
    assert table.hibernate("1", 2.0) == []
    assert table.hibernate("2", 3.0) == ["0"]  # roland's third
    assert table.hibernate("3", 4.0) == []
    assert table.hibernate("4", 5.0) == ["1"]  # the fourth in all
    assert sorted(table.hibernating()) == ["2", "3", "4"]


def test_a_forgotten_session_cannot_be_resumed() -> None:
    table: Hibernation[str] = Hibernation(300)
    table.register("a", ROLAND, "a")
    table.forget("a")
    assert table.claim("a", ROLAND) is None
    assert len(table) == 0


@given(st.lists(st.tuples(st.sampled_from([ROLAND, RAPHAEL]), st.floats(0, 1e6)), max_size=30))
def test_hibernating_sessions_stay_within_both_limits(
    sessions: list[tuple[JID, float]],
) -> None:
    table: Hibernation[int] = Hibernation(60, per_account=3, total=4)
    owner = {}
    evicted: list[int] = []
    for n, (account, now) in enumerate(sessions):
        table.register(str(n), account, n)
        owner[n] = account
        evicted += table.hibernate(str(n), now)
        waiting = table.hibernating()
        assert len(waiting) <= 4
        for account_ in (ROLAND, RAPHAEL):
            assert sum(owner[item] == account_ for item in waiting) <= 3
    assert sorted(evicted + table.hibernating()) == list(range(len(sessions)))


# --- what becomes of the unacked ----------------------------------------------------------


def stanza(text: str) -> Element:
    return fromstring(f"<x xmlns='jabber:client'>{text}</x>")[0]


@pytest.mark.parametrize(
    ("text", "others", "expected"),
    [
        ("<message type='chat'><body>hi</body></message>", False, Fate.STORE),
        ("<message><body>hi</body></message>", False, Fate.STORE),
        ("<message type='chat'><body>hi</body></message>", True, Fate.DROP),
        (
            "<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            False,
            Fate.BOUNCE,
        ),
        ("<message type='groupchat'><body>hi</body></message>", False, Fate.BOUNCE),
        ("<message type='headline'><body>news</body></message>", False, Fate.DROP),
        ("<message type='error'><body>hi</body></message>", False, Fate.DROP),
        ("<message><received xmlns='urn:xmpp:carbons:2'/></message>", False, Fate.DROP),
        ("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", False, Fate.BOUNCE),
        ("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", True, Fate.BOUNCE),
        ("<iq type='result' id='1'/>", False, Fate.DROP),
        ("<presence/>", False, Fate.DROP),
        ("<presence type='subscribe'/>", False, Fate.DROP),
    ],
)
def test_the_fate_of_an_unacked_stanza(text: str, others: bool, expected: Fate) -> None:
    assert fate(stanza(text), others) is expected


def test_a_carbon_with_a_body_is_not_stored() -> None:
    message = Element("{jabber:client}message", {"type": "chat"})
    SubElement(message, "{urn:xmpp:carbons:2}sent")
    SubElement(message, "{jabber:client}body").text = "copy"
    assert fate(message, False) is Fate.DROP


def test_xep0198_5_the_h_of_an_ended_session_is_told_to_its_account_only() -> None:
    table: Hibernation[str] = Hibernation(300, total=2)
    table.ended("a", ROLAND, 7)
    assert table.handled("a", ROLAND) == 7
    assert table.handled("a", RAPHAEL) is None
    assert table.handled("unknown", ROLAND) is None
    table.ended("b", ROLAND, 1)
    table.ended("c", ROLAND, 2)
    assert table.handled("a", ROLAND) is None  # only the newest ``total`` are kept
    assert (table.handled("b", ROLAND), table.handled("c", ROLAND)) == (1, 2)
