"""Presence subscription states and transitions (RFC 6121 §3, Appendix A), as data.

A roster item's subscription is one of nine states: the ``subscription``
attribute (none, to, from, both) plus two pending flags, *Pending Out* (the
user asked the contact; ``ask='subscribe'`` on the wire) and *Pending In* (the
contact asked the user and waits for an answer). The tables below say, for
each state and each subscription stanza, the next state and what the server
does with the stanza. The presence feature applies them and keeps the stores.

Sans-IO: no clock, no store, no stanzas; a test walks every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Action",
    "Direction",
    "Kind",
    "State",
    "Subscription",
    "Transition",
    "transition",
]


class Subscription(StrEnum):
    """The ``subscription`` attribute of a roster item (RFC 6121 §2.1.2.5)."""

    NONE = "none"
    TO = "to"  # the user receives the contact's presence
    FROM = "from"  # the contact receives the user's presence
    BOTH = "both"


class Kind(StrEnum):
    """The presence types that manage subscriptions (RFC 6121 §3)."""

    SUBSCRIBE = "subscribe"  # §3.1
    SUBSCRIBED = "subscribed"  # §3.1.5 (approve), §3.4 (pre-approve)
    UNSUBSCRIBE = "unsubscribe"  # §3.3
    UNSUBSCRIBED = "unsubscribed"  # §3.1.4 (deny), §3.2 (cancel)


class Direction(StrEnum):
    """Outbound: sent by the roster's owner. Inbound: addressed to the owner."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Action(StrEnum):
    """What the owner's server does with the stanza besides changing the state."""

    ROUTE = "route"  # outbound: send it on to the contact
    DELIVER = "deliver"  # inbound: deliver it to the owner's available resources
    AUTO_REPLY = "auto-reply"  # inbound subscribe already approved: answer "subscribed"
    PRE_APPROVE = "pre-approve"  # outbound subscribed with nothing pending (§3.4)
    IGNORE = "ignore"  # drop it, the state does not change


@dataclass(frozen=True, slots=True)
class State:
    """One of the nine states of RFC 6121 Appendix A.1."""

    subscription: Subscription = Subscription.NONE
    pending_out: bool = False
    pending_in: bool = False

    def __post_init__(self) -> None:
        # A.1: one cannot wait for what one already has.
        if self.pending_out and self.subscription in (Subscription.TO, Subscription.BOTH):
            raise ValueError(f"{self.subscription} with Pending Out is no state")
        if self.pending_in and self.subscription in (Subscription.FROM, Subscription.BOTH):
            raise ValueError(f"{self.subscription} with Pending In is no state")

    @classmethod
    def of(cls, subscription: Subscription, pending_out: bool, pending_in: bool) -> State:
        """The state of stored flags, dropping a pending flag the subscription already covers."""
        has_to = subscription in (Subscription.TO, Subscription.BOTH)
        has_from = subscription in (Subscription.FROM, Subscription.BOTH)
        return cls(subscription, pending_out and not has_to, pending_in and not has_from)

    @property
    def name(self) -> str:
        """The state's name in RFC 6121 Appendix A (``None + Pending Out/In``)."""
        pending = [word for word, on in (("Out", self.pending_out), ("In", self.pending_in)) if on]
        base = self.subscription.value.capitalize()
        return f"{base} + Pending {'/'.join(pending)}" if pending else base


NONE = State()
NONE_OUT = State(pending_out=True)
NONE_IN = State(pending_in=True)
NONE_OUT_IN = State(pending_out=True, pending_in=True)
TO = State(Subscription.TO)
TO_IN = State(Subscription.TO, pending_in=True)
FROM = State(Subscription.FROM)
FROM_OUT = State(Subscription.FROM, pending_out=True)
BOTH = State(Subscription.BOTH)
STATES = (NONE, NONE_OUT, NONE_IN, NONE_OUT_IN, TO, TO_IN, FROM, FROM_OUT, BOTH)


@dataclass(frozen=True, slots=True)
class Transition:
    """The next state, the action, and whether the roster item visibly changed."""

    state: State
    action: Action
    push: bool


_Table = Mapping[State, tuple[State | None, Action]]

# Each row: existing state -> (new state, or None for "no state change"; action).

# A.2.1: the user's server, when the user sends "subscribe". RFC 6121 §3.1.2: the
# server routes it whatever the state, so the contact can re-answer a lost request.
_OUT_SUBSCRIBE: _Table = {
    NONE: (NONE_OUT, Action.ROUTE),
    NONE_OUT: (None, Action.ROUTE),
    NONE_IN: (NONE_OUT_IN, Action.ROUTE),
    NONE_OUT_IN: (None, Action.ROUTE),
    TO: (None, Action.ROUTE),
    TO_IN: (None, Action.ROUTE),
    FROM: (FROM_OUT, Action.ROUTE),
    FROM_OUT: (None, Action.ROUTE),
    BOTH: (None, Action.ROUTE),
}

# A.2.2: the user's server, when the user sends "unsubscribe" (§3.3.2 routes it).
_OUT_UNSUBSCRIBE: _Table = {
    NONE: (None, Action.ROUTE),
    NONE_OUT: (NONE, Action.ROUTE),
    NONE_IN: (None, Action.ROUTE),
    NONE_OUT_IN: (NONE_IN, Action.ROUTE),
    TO: (NONE, Action.ROUTE),
    TO_IN: (NONE_IN, Action.ROUTE),
    FROM: (None, Action.ROUTE),
    FROM_OUT: (FROM, Action.ROUTE),
    BOTH: (FROM, Action.ROUTE),
}

# §3.1.5 (approve) and §3.4 (pre-approve): the contact's server, when the contact
# sends "subscribed". Appendix A has no table for it; these rows follow the text.
_OUT_SUBSCRIBED: _Table = {
    NONE: (None, Action.PRE_APPROVE),
    NONE_OUT: (None, Action.PRE_APPROVE),
    NONE_IN: (FROM, Action.ROUTE),
    NONE_OUT_IN: (FROM_OUT, Action.ROUTE),
    TO: (None, Action.PRE_APPROVE),
    TO_IN: (BOTH, Action.ROUTE),
    FROM: (None, Action.IGNORE),
    FROM_OUT: (None, Action.IGNORE),
    BOTH: (None, Action.IGNORE),
}

# §3.1.4 (deny) and §3.2.2 (cancel): the contact's server, when the contact sends
# "unsubscribed"; with nothing to deny or cancel there is nothing to route.
_OUT_UNSUBSCRIBED: _Table = {
    NONE: (None, Action.IGNORE),
    NONE_OUT: (None, Action.IGNORE),
    NONE_IN: (NONE, Action.ROUTE),
    NONE_OUT_IN: (NONE_OUT, Action.ROUTE),
    TO: (None, Action.IGNORE),
    TO_IN: (TO, Action.ROUTE),
    FROM: (NONE, Action.ROUTE),
    FROM_OUT: (NONE_OUT, Action.ROUTE),
    BOTH: (TO, Action.ROUTE),
}

# A.3.1: the contact's server, on an inbound "subscribe".
_IN_SUBSCRIBE: _Table = {
    NONE: (NONE_IN, Action.DELIVER),
    NONE_OUT: (NONE_OUT_IN, Action.DELIVER),
    NONE_IN: (None, Action.IGNORE),
    NONE_OUT_IN: (None, Action.IGNORE),
    TO: (TO_IN, Action.DELIVER),
    TO_IN: (None, Action.IGNORE),
    FROM: (None, Action.AUTO_REPLY),
    FROM_OUT: (None, Action.AUTO_REPLY),
    BOTH: (None, Action.AUTO_REPLY),
}

# A.3.2: the contact's server, on an inbound "unsubscribe".
_IN_UNSUBSCRIBE: _Table = {
    NONE: (None, Action.IGNORE),
    NONE_OUT: (None, Action.IGNORE),
    NONE_IN: (NONE, Action.DELIVER),
    NONE_OUT_IN: (NONE_OUT, Action.DELIVER),
    TO: (None, Action.IGNORE),
    TO_IN: (TO, Action.DELIVER),
    FROM: (NONE, Action.DELIVER),
    FROM_OUT: (NONE_OUT, Action.DELIVER),
    BOTH: (TO, Action.DELIVER),
}

# A.3.3: the user's server, on an inbound "subscribed".
_IN_SUBSCRIBED: _Table = {
    NONE: (None, Action.IGNORE),
    NONE_OUT: (TO, Action.DELIVER),
    NONE_IN: (None, Action.IGNORE),
    NONE_OUT_IN: (TO_IN, Action.DELIVER),
    TO: (None, Action.IGNORE),
    TO_IN: (None, Action.IGNORE),
    FROM: (None, Action.IGNORE),
    FROM_OUT: (BOTH, Action.DELIVER),
    BOTH: (None, Action.IGNORE),
}

# A.3.4: the user's server, on an inbound "unsubscribed".
_IN_UNSUBSCRIBED: _Table = {
    NONE: (None, Action.IGNORE),
    NONE_OUT: (NONE, Action.DELIVER),
    NONE_IN: (None, Action.IGNORE),
    NONE_OUT_IN: (NONE_IN, Action.DELIVER),
    TO: (NONE, Action.DELIVER),
    TO_IN: (NONE_IN, Action.DELIVER),
    FROM: (None, Action.IGNORE),
    FROM_OUT: (FROM, Action.DELIVER),
    BOTH: (FROM, Action.DELIVER),
}

TABLES: Mapping[tuple[Direction, Kind], _Table] = {
    (Direction.OUTBOUND, Kind.SUBSCRIBE): _OUT_SUBSCRIBE,
    (Direction.OUTBOUND, Kind.UNSUBSCRIBE): _OUT_UNSUBSCRIBE,
    (Direction.OUTBOUND, Kind.SUBSCRIBED): _OUT_SUBSCRIBED,
    (Direction.OUTBOUND, Kind.UNSUBSCRIBED): _OUT_UNSUBSCRIBED,
    (Direction.INBOUND, Kind.SUBSCRIBE): _IN_SUBSCRIBE,
    (Direction.INBOUND, Kind.UNSUBSCRIBE): _IN_UNSUBSCRIBE,
    (Direction.INBOUND, Kind.SUBSCRIBED): _IN_SUBSCRIBED,
    (Direction.INBOUND, Kind.UNSUBSCRIBED): _IN_UNSUBSCRIBED,
}


def transition(state: State, direction: Direction, kind: Kind) -> Transition:
    """Look ``state`` up in the table for a ``kind`` stanza going ``direction``.

    ``push`` says whether the roster item as the owner sees it (subscription,
    ``ask``) changed, which calls for a roster push (RFC 6121 §2.1.6); Pending
    In alone is not shown in the roster.
    """
    new, action = TABLES[direction, kind][state]
    after = state if new is None else new
    push = (after.subscription, after.pending_out) != (state.subscription, state.pending_out)
    return Transition(after, action, push)
