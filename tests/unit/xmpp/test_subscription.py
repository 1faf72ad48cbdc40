"""RFC 6121 Appendix A, row by row: every state and every subscription stanza."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.subscription import (
    STATES,
    TABLES,
    Action,
    Direction,
    Kind,
    State,
    Subscription,
    transition,
)

NONE = "None"
NONE_OUT = "None + Pending Out"
NONE_IN = "None + Pending In"
NONE_OUT_IN = "None + Pending Out/In"
TO = "To"
TO_IN = "To + Pending In"
FROM = "From"
FROM_OUT = "From + Pending Out"
BOTH = "Both"
SAME = "no state change"

BY_NAME = {state.name: state for state in STATES}
ROUTE, DELIVER, REPLY, IGNORE, PRE = (
    Action.ROUTE,
    Action.DELIVER,
    Action.AUTO_REPLY,
    Action.IGNORE,
    Action.PRE_APPROVE,
)

# (existing state, action, new state) as the RFC prints the tables.
A_2_1 = [
    (NONE, ROUTE, NONE_OUT),
    (NONE_OUT, ROUTE, SAME),
    (NONE_IN, ROUTE, NONE_OUT_IN),
    (NONE_OUT_IN, ROUTE, SAME),
    (TO, ROUTE, SAME),
    (TO_IN, ROUTE, SAME),
    (FROM, ROUTE, FROM_OUT),
    (FROM_OUT, ROUTE, SAME),
    (BOTH, ROUTE, SAME),
]
A_2_2 = [
    (NONE, ROUTE, SAME),
    (NONE_OUT, ROUTE, NONE),
    (NONE_IN, ROUTE, SAME),
    (NONE_OUT_IN, ROUTE, NONE_IN),
    (TO, ROUTE, NONE),
    (TO_IN, ROUTE, NONE_IN),
    (FROM, ROUTE, SAME),
    (FROM_OUT, ROUTE, FROM),
    (BOTH, ROUTE, FROM),
]
A_3_1 = [
    (NONE, DELIVER, NONE_IN),
    (NONE_OUT, DELIVER, NONE_OUT_IN),
    (NONE_IN, IGNORE, SAME),
    (NONE_OUT_IN, IGNORE, SAME),
    (TO, DELIVER, TO_IN),
    (TO_IN, IGNORE, SAME),
    (FROM, REPLY, SAME),
    (FROM_OUT, REPLY, SAME),
    (BOTH, REPLY, SAME),
]
A_3_2 = [
    (NONE, IGNORE, SAME),
    (NONE_OUT, IGNORE, SAME),
    (NONE_IN, DELIVER, NONE),
    (NONE_OUT_IN, DELIVER, NONE_OUT),
    (TO, IGNORE, SAME),
    (TO_IN, DELIVER, TO),
    (FROM, DELIVER, NONE),
    (FROM_OUT, DELIVER, NONE_OUT),
    (BOTH, DELIVER, TO),
]
A_3_3 = [
    (NONE, IGNORE, SAME),
    (NONE_OUT, DELIVER, TO),
    (NONE_IN, IGNORE, SAME),
    (NONE_OUT_IN, DELIVER, TO_IN),
    (TO, IGNORE, SAME),
    (TO_IN, IGNORE, SAME),
    (FROM, IGNORE, SAME),
    (FROM_OUT, DELIVER, BOTH),
    (BOTH, IGNORE, SAME),
]
A_3_4 = [
    (NONE, IGNORE, SAME),
    (NONE_OUT, DELIVER, NONE),
    (NONE_IN, IGNORE, SAME),
    (NONE_OUT_IN, DELIVER, NONE_IN),
    (TO, DELIVER, NONE),
    (TO_IN, DELIVER, NONE_IN),
    (FROM, IGNORE, SAME),
    (FROM_OUT, DELIVER, FROM),
    (BOTH, DELIVER, FROM),
]
# Not tables in Appendix A; from the text of §3.1.5, §3.4 and §3.1.4, §3.2.2.
S_3_1_5_APPROVE = [
    (NONE, PRE, SAME),
    (NONE_OUT, PRE, SAME),
    (NONE_IN, ROUTE, FROM),
    (NONE_OUT_IN, ROUTE, FROM_OUT),
    (TO, PRE, SAME),
    (TO_IN, ROUTE, BOTH),
    (FROM, IGNORE, SAME),
    (FROM_OUT, IGNORE, SAME),
    (BOTH, IGNORE, SAME),
]
S_3_2_2_CANCEL = [
    (NONE, IGNORE, SAME),
    (NONE_OUT, IGNORE, SAME),
    (NONE_IN, ROUTE, NONE),
    (NONE_OUT_IN, ROUTE, NONE_OUT),
    (TO, IGNORE, SAME),
    (TO_IN, ROUTE, TO),
    (FROM, ROUTE, NONE),
    (FROM_OUT, ROUTE, NONE_OUT),
    (BOTH, ROUTE, TO),
]


def check(rows: list[tuple[str, Action, str]], direction: Direction, kind: Kind) -> None:
    assert [row[0] for row in rows] == [state.name for state in STATES]
    for old, action, new in rows:
        before = BY_NAME[old]
        after = before if new == SAME else BY_NAME[new]
        result = transition(before, direction, kind)
        assert (result.state, result.action) == (after, action), old
        visible = (after.subscription, after.pending_out)
        assert result.push == (visible != (before.subscription, before.pending_out)), old


def test_rfc6121_a_2_1_outbound_subscribe() -> None:
    check(A_2_1, Direction.OUTBOUND, Kind.SUBSCRIBE)


def test_rfc6121_a_2_2_outbound_unsubscribe() -> None:
    check(A_2_2, Direction.OUTBOUND, Kind.UNSUBSCRIBE)


def test_rfc6121_a_3_1_inbound_subscribe() -> None:
    check(A_3_1, Direction.INBOUND, Kind.SUBSCRIBE)


def test_rfc6121_a_3_2_inbound_unsubscribe() -> None:
    check(A_3_2, Direction.INBOUND, Kind.UNSUBSCRIBE)


def test_rfc6121_a_3_3_inbound_subscribed() -> None:
    check(A_3_3, Direction.INBOUND, Kind.SUBSCRIBED)


def test_rfc6121_a_3_4_inbound_unsubscribed() -> None:
    check(A_3_4, Direction.INBOUND, Kind.UNSUBSCRIBED)


def test_rfc6121_3_1_5_and_3_4_outbound_subscribed_approves_or_pre_approves() -> None:
    check(S_3_1_5_APPROVE, Direction.OUTBOUND, Kind.SUBSCRIBED)


def test_rfc6121_3_2_2_outbound_unsubscribed_denies_or_cancels() -> None:
    check(S_3_2_2_CANCEL, Direction.OUTBOUND, Kind.UNSUBSCRIBED)


def test_every_table_covers_the_nine_states() -> None:
    assert len(TABLES) == 8
    assert len(set(STATES)) == 9
    for table in TABLES.values():
        assert set(table) == set(STATES)


def test_rfc6121_a_1_impossible_states_are_refused() -> None:
    with pytest.raises(ValueError):
        State(Subscription.TO, pending_out=True)
    with pytest.raises(ValueError):
        State(Subscription.BOTH, pending_in=True)


@given(st.sampled_from(list(Subscription)), st.booleans(), st.booleans())
def test_stored_flags_always_make_a_state(
    subscription: Subscription, pending_out: bool, pending_in: bool
) -> None:
    state = State.of(subscription, pending_out, pending_in)
    assert state in STATES
    assert state.subscription == subscription


@given(
    st.sampled_from(STATES),
    st.lists(st.tuples(st.sampled_from(list(Direction)), st.sampled_from(list(Kind)))),
)
def test_any_sequence_of_stanzas_stays_within_the_nine_states(
    state: State, steps: list[tuple[Direction, Kind]]
) -> None:
    for direction, kind in steps:
        state = transition(state, direction, kind).state
        assert state in STATES
