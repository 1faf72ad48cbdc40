"""Presence (RFC 6121 §3, §4): subscriptions, broadcasts, probes, directed presence.

Outbound presence comes from a local resource (``from`` already stamped with
its full JID); inbound presence is addressed to an existing local account. The
subscription rules are the tables of :mod:`heron.xmpp.subscription`; this
module applies them to the roster store, pushes roster changes and routes.
Pending subscription requests are stored as stanza text, so a request made
while the contact is offline is shown at its next login (§3.1.3).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features.local import Hub, Resource, from_text, to_text
from heron.xmpp.features.offline import OfflineMessages, OfflineStore
from heron.xmpp.features.roster import (
    MAX_JID,
    Roster,
    RosterItem,
    RosterStore,
    route_presence,
    storable,
    subscribers_in,
    subscriptions_in,
)
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, qname
from heron.xmpp.subscription import (
    Action,
    Direction,
    Kind,
    State,
    Subscription,
    Transition,
    transition,
)

__all__ = [
    "LoginData",
    "LoginStore",
    "PresenceFeature",
    "PresenceListener",
    "SeparateReads",
    "item_state",
]

log = logging.getLogger(__name__)

_PRIORITY = qname(NS.CLIENT, "priority")
_KINDS = frozenset(kind.value for kind in Kind)
_FROM_STATES = (Subscription.FROM, Subscription.BOTH)
MAX_DIRECTED = 1000  # directed-presence recipients remembered per resource


def _priority(stanza: Element) -> int:
    """RFC 6121 §4.7.2.3: an integer from -128 to +127, zero when absent."""
    element = stanza.find(_PRIORITY)
    if element is None:
        return 0
    try:
        value = int((element.text or "").strip())
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "priority is not an integer") from None
    if not -128 <= value <= 127:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "priority out of range")
    return value


def _addressed(stanza: Element, sender: JID, to: JID) -> Element:
    """A copy of ``stanza`` from ``sender`` to ``to``."""
    result = copy.deepcopy(stanza)
    result.set("from", str(sender))
    result.set("to", str(to))
    return result


def _has_from(state: State) -> bool:
    return state.subscription in _FROM_STATES


@dataclass(frozen=True, slots=True)
class LoginData:
    """What an initial presence needs from storage: the roster (§4.2), the subscription
    requests that came while the user was away (§3.1.3) and, when asked for, the offline
    messages (XEP-0160 §4), already taken out of storage."""

    roster: list[RosterItem]
    pending: list[tuple[JID, str]]
    offline: list[tuple[str, float]]


class LoginStore(Protocol):
    """Reads :class:`LoginData` at once: a login is the busiest time for the store, and
    one round trip costs less than three."""

    async def login(self, owner: JID, *, offline: bool) -> LoginData:
        """The owner's data; with ``offline``, its offline messages, removed from storage."""
        ...


class SeparateReads:
    """:class:`LoginStore` over a roster and an offline store, one read each."""

    def __init__(self, roster: RosterStore, offline: OfflineStore) -> None:
        self._roster = roster
        self._offline = offline

    async def login(self, owner: JID, *, offline: bool) -> LoginData:
        items = await self._roster.items(owner)
        pending = await self._roster.pending(owner)
        messages = await self._offline.pop_all(owner) if offline else []
        return LoginData(items, pending, messages)


class PresenceListener(Protocol):
    """A feature that follows resources' availability (PEP reads their caps)."""

    async def available(self, resource: Resource) -> None:
        """``resource`` sent available presence, now in ``resource.presence``."""
        ...

    async def unavailable(self, resource: Resource) -> None: ...

    async def contact_presence(self, stanza: Element, sender: JID, to: JID) -> None:
        """Available or unavailable presence from ``sender`` (any contact, local or not)
        to the local account ``to``."""
        ...


class PresenceFeature:
    """Presence for the accounts of this server; ``listeners`` hear local resources'
    available and unavailable presence once it is broadcast."""

    def __init__(
        self, hub: Hub, roster: Roster, offline: OfflineMessages, login: LoginStore
    ) -> None:
        self._hub = hub
        self._roster = roster
        self._store = roster.store
        self._offline = offline
        self._login_store = login
        self.listeners: list[PresenceListener] = []
        self.stamp: Callable[[JID, Element], Awaitable[None]] | None = None
        """What adds the server's part to a resource's available presence, broadcast or
        directed, given the account: the XEP-0153 avatar hash (XEP-0398 §4)."""

    # --- from a local resource ----------------------------------------------------

    async def outbound(self, resource: Resource, stanza: Element, to: JID | None) -> None:
        """A presence stanza a local resource sent; raises StanzaError to refuse it."""
        type_ = stanza.get("type")
        if type_ in _KINDS:
            if to is None:
                raise StanzaError(StanzaCondition.BAD_REQUEST, "subscription without 'to'")
            contact = storable(to.bare)
            await self._outbound_subscription(resource.jid.bare, contact, Kind(type_), stanza)
        elif to is None:
            if type_ is None:
                await self._available(resource, stanza)
            elif type_ == "unavailable":
                await self.unavailable(resource, stanza)
        else:
            # §4.6: directed presence; remembered so that "unavailable" reaches it too.
            if type_ is None and len(resource.directed) < MAX_DIRECTED:
                resource.directed.add(to)
            elif type_ == "unavailable":
                resource.directed.discard(to)
            if type_ is None and self.stamp is not None:
                await self.stamp(resource.jid.bare, stanza)
            await self._hub.route(stanza, resource.jid, to)

    async def _available(self, resource: Resource, stanza: Element) -> None:
        priority = _priority(stanza)
        initial = not resource.available
        was_negative = resource.priority < 0
        broadcast = copy.deepcopy(stanza)
        broadcast.attrib.pop("to", None)
        if self.stamp is not None:
            await self.stamp(resource.jid.bare, broadcast)
        resource.presence = broadcast
        resource.priority = priority
        owner = resource.jid.bare
        # XEP-0160 §4: offline messages once the resource takes messages to the bare JID.
        offline = priority >= 0 and (initial or was_negative)
        data = None
        if initial:
            writes = self._roster.writes
            data = await self._login_store.login(owner, offline=offline)
            self._roster.remember(owner, data.roster, writes)
            subscribers: Sequence[JID] = subscribers_in(data.roster)
        else:
            subscribers = await self._roster.subscribers(owner)
        # §4.2.2, §4.4.2: to the subscribers, and to every available resource
        # of the user including this one (one is subscribed to oneself).
        for contact in subscribers:
            await self._route(broadcast, resource.jid, contact)
        for own in self._hub.bound(owner):
            if own.available:
                own.session.send(_addressed(broadcast, resource.jid, own.jid))
        if data is not None:
            await self._login(resource, data)
            self._offline.hand_over(resource, data.offline)
        elif offline:
            await self._offline.deliver(resource)
        for listener in self.listeners:
            await listener.available(resource)

    async def _login(self, resource: Resource, data: LoginData) -> None:
        """§4.2: what an initial presence triggers besides its broadcast."""
        owner = resource.jid.bare
        for own in self._hub.bound(owner):
            if own is not resource and own.presence is not None:
                resource.session.send(_addressed(own.presence, own.jid, resource.jid))
        # §4.2.2: probe the contacts whose presence the user subscribed to, from
        # the new resource, so that only it gets the answers.
        for contact in subscriptions_in(data.roster):
            await route_presence(self._hub, "probe", resource.jid, contact)
        # §3.1.3: subscription requests that arrived while the user was away.
        for _contact, text in data.pending:
            request = from_text(text)
            if request is not None:
                resource.session.send(request)

    async def unavailable(self, resource: Resource, stanza: Element | None = None) -> None:
        """§4.5: the resource goes away (explicitly, or its stream ended)."""
        if not resource.available and not resource.directed:
            return
        gone = Element(qname(NS.CLIENT, "presence"), {"type": "unavailable"})
        if stanza is not None:
            gone = copy.deepcopy(stanza)
            gone.attrib.pop("to", None)
        owner = resource.jid.bare
        recipients = set(resource.directed)
        if resource.available:
            subscribers = await self._roster.subscribers(owner)
            # A directed recipient who is also a subscriber hears it once, at the bare JID.
            recipients = {jid for jid in recipients if jid.bare not in subscribers}
            recipients.update(subscribers)
        resource.presence = None
        resource.directed.clear()
        for listener in self.listeners:
            await listener.unavailable(resource)
        for recipient in sorted(recipients, key=str):
            await self._route(gone, resource.jid, recipient)
        for own in self._hub.bound(owner):
            if own is not resource and own.available:
                own.session.send(_addressed(gone, resource.jid, own.jid))

    async def _outbound_subscription(
        self, owner: JID, contact: JID, kind: Kind, stanza: Element
    ) -> None:
        item, step = await self._step(owner, contact, Direction.OUTBOUND, kind)
        approved = item is not None and item.approved
        if step.action is Action.PRE_APPROVE:
            approved = True  # §3.4
        elif kind is Kind.UNSUBSCRIBED:
            approved = False  # §3.4: "unsubscribed" also cancels a pre-approval
        await self._apply(owner, contact, item, step, approved)
        if step.action is not Action.ROUTE:
            return
        # §3.1.2: subscription stanzas leave stamped with the user's bare JID.
        await self._route(stanza, owner, contact)
        if kind is Kind.SUBSCRIBED:
            await self._current_presence_to(owner, contact)  # §3.1.5
        elif kind is Kind.UNSUBSCRIBED:
            await self._roster.unavailable_to(owner, contact)  # §3.2.2

    # --- to a local account -------------------------------------------------------

    async def inbound(self, stanza: Element, to: JID, sender: JID) -> None:
        """Presence addressed to an existing local account, ``from`` already checked."""
        type_ = stanza.get("type")
        if type_ in (None, "unavailable"):
            for listener in self.listeners:
                await listener.contact_presence(stanza, sender, to)
        if type_ in _KINDS:
            if len(str(sender.bare)) <= MAX_JID:  # longer ones cannot be roster items
                await self._inbound_subscription(to.bare, sender.bare, Kind(type_), stanza)
        elif type_ == "probe":
            await self._probe(to.bare, sender)
        elif to.is_bare:
            for resource in self._hub.bound(to):
                if resource.available:
                    resource.session.send(stanza)
        elif (target := self._hub.resource(to)) is not None:
            # §8.5.3.2.3: presence to a resource that is not there is dropped.
            target.session.send(stanza)

    async def _inbound_subscription(
        self, owner: JID, contact: JID, kind: Kind, stanza: Element
    ) -> None:
        item, step = await self._step(owner, contact, Direction.INBOUND, kind)
        stamped = _addressed(stanza, contact, owner)
        if step.action is Action.AUTO_REPLY:
            await route_presence(self._hub, "subscribed", owner, contact)
            return
        if step.action is not Action.DELIVER:
            return
        if kind is Kind.SUBSCRIBE and item is not None and item.approved:
            # §3.4: pre-approved; answer for the user instead of asking.
            approve = transition(step.state, Direction.OUTBOUND, Kind.SUBSCRIBED)
            await self._apply(owner, contact, item, approve, approved=False)
            await route_presence(self._hub, "subscribed", owner, contact)
            await self._current_presence_to(owner, contact)
            return
        if kind is Kind.SUBSCRIBE:
            await self._store.set_pending(owner, contact, to_text(stamped))
        else:
            before = item_state(item, pending_in=await self._store.has_pending(owner, contact))
            await self._apply(owner, contact, item, step, item is not None and item.approved)
            if kind is Kind.UNSUBSCRIBE and _has_from(before) and not _has_from(step.state):
                await self._roster.unavailable_to(owner, contact)  # §3.3.3
        for resource in self._hub.bound(owner):
            if resource.available:
                resource.session.send(stamped)

    async def _probe(self, owner: JID, prober: JID) -> None:
        """§4.3.2: answer for each available resource, if the prober may know."""
        item = await self._store.get(owner, prober.bare)
        if prober.bare != owner and (item is None or item.subscription not in _FROM_STATES):
            return
        answered = False
        for resource in self._hub.bound(owner):
            if resource.presence is not None:
                await self._route(resource.presence, resource.jid, prober)
                answered = True
        if not answered:
            await route_presence(self._hub, "unavailable", owner, prober)

    # --- blocking (XEP-0191 §3.3, §3.4) ----------------------------------------------

    async def withdraw(self, owner: JID, chosen: Callable[[JID], bool]) -> None:
        """§3.3: the subscribers ``chosen`` picks (those a new block matches) learn that
        ``owner`` is unavailable; sent before the block is stored, which would stop it."""
        gone = Element(qname(NS.CLIENT, "presence"), {"type": "unavailable"})
        for contact in await self._chosen_subscribers(owner, chosen):
            for resource in self._hub.bound(owner):
                if resource.available:
                    await self._route(gone, resource.jid, contact)

    async def restore(self, owner: JID, chosen: Callable[[JID], bool]) -> None:
        """§3.4: the subscribers ``chosen`` picks (those an unblock freed) get ``owner``'s
        current presence again."""
        for contact in await self._chosen_subscribers(owner, chosen):
            await self._current_presence_to(owner, contact)

    async def _chosen_subscribers(self, owner: JID, chosen: Callable[[JID], bool]) -> list[JID]:
        return sorted((c for c in await self._roster.subscribers(owner) if chosen(c)), key=str)

    # --- shared -------------------------------------------------------------------

    async def _route(self, stanza: Element, sender: JID, to: JID) -> None:
        """A copy of ``stanza`` from ``sender`` to ``to``, routed with those JIDs."""
        await self._hub.route(_addressed(stanza, sender, to), sender, to)

    async def _step(
        self, owner: JID, contact: JID, direction: Direction, kind: Kind
    ) -> tuple[RosterItem | None, Transition]:
        item = await self._store.get(owner, contact)
        pending_in = await self._store.has_pending(owner, contact)
        return item, transition(item_state(item, pending_in), direction, kind)

    async def _apply(
        self,
        owner: JID,
        contact: JID,
        item: RosterItem | None,
        step: Transition,
        approved: bool,
    ) -> None:
        """Store the new state: the roster item (pushed when it visibly changed)
        and the pending inbound request.
        """
        if not step.state.pending_in:
            await self._store.clear_pending(owner, contact)
        base = item or RosterItem(contact)
        new = replace(
            base,
            subscription=step.state.subscription,
            ask=step.state.pending_out,
            approved=approved,
        )
        if new != base:
            await self._roster.save(owner, new, new=item is None)

    async def _current_presence_to(self, owner: JID, contact: JID) -> None:
        for resource in self._hub.bound(owner):
            if resource.presence is not None:
                await self._route(resource.presence, resource.jid, contact)


def item_state(item: RosterItem | None, pending_in: bool) -> State:
    """The Appendix A state of a stored item (none without one)."""
    if item is None:
        return State.of(Subscription.NONE, False, pending_in)
    return State.of(item.subscription, item.ask, pending_in)
