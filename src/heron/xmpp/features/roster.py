"""The roster (RFC 6121 §2): get with versioning, set, remove, and pushes.

Subscription states change through presence (``features.presence`` applies
``heron.xmpp.subscription``); here a client may only name and group its
contacts, or remove one, which cancels the subscriptions both ways (§2.5.2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext, StanzaRouter
from heron.xmpp.features.local import Hub
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, iq_result, qname
from heron.xmpp.subscription import Subscription

__all__ = ["Roster", "RosterItem", "RosterStore"]

log = logging.getLogger(__name__)

MAX_ITEMS = 1000  # per account; RFC 6121 §2.5.2 lets a server refuse more
MAX_JID = 320  # characters of a contact's bare JID the store keeps
MAX_NAME = 1023  # characters of a handle (RFC 6121 §2.3.3 allows a limit)
MAX_GROUP = 255  # characters of a group name
MAX_GROUPS = 50  # groups per item

_ITEM = qname(NS.ROSTER, "item")
_GROUP = qname(NS.ROSTER, "group")
_QUERY = qname(NS.ROSTER, "query")
_FROM_STATES = frozenset({Subscription.FROM, Subscription.BOTH})
_TO_STATES = frozenset({Subscription.TO, Subscription.BOTH})


@dataclass(frozen=True, slots=True)
class RosterItem:
    """One contact in an account's roster (RFC 6121 §2.1.2); ``ask`` is Pending Out,
    ``approved`` a pre-approval (§3.4).
    """

    jid: JID
    name: str | None = None
    subscription: Subscription = Subscription.NONE
    ask: bool = False
    approved: bool = False
    groups: tuple[str, ...] = ()


class RosterStore(Protocol):
    """Rosters, their versions (§2.6) and pending inbound subscription requests.

    Every change of an item bumps the owner's version and returns it. Owners
    and contacts are bare JIDs. Pending requests keep the stanza's text so it
    can be delivered again when the owner logs in (§3.1.3).
    """

    async def items(self, owner: JID) -> list[RosterItem]: ...

    async def get(self, owner: JID, contact: JID) -> RosterItem | None: ...

    async def count(self, owner: JID) -> int: ...

    async def version(self, owner: JID) -> int: ...

    async def put(self, owner: JID, item: RosterItem) -> int: ...

    async def remove(self, owner: JID, contact: JID) -> int | None:
        """Delete the item and any pending request; None when there was no item."""
        ...

    async def pending(self, owner: JID) -> list[tuple[JID, str]]: ...

    async def has_pending(self, owner: JID, contact: JID) -> bool: ...

    async def set_pending(self, owner: JID, contact: JID, stanza: str) -> None: ...

    async def clear_pending(self, owner: JID, contact: JID) -> None: ...


def item_element(item: RosterItem, *, removed: bool = False) -> Element:
    """The ``<item/>`` of a result or push (RFC 6121 §2.1.2)."""
    element = Element(_ITEM, {"jid": str(item.jid)})
    if removed:
        element.set("subscription", "remove")
        return element
    element.set("subscription", item.subscription.value)
    if item.name:
        element.set("name", item.name)
    if item.ask:
        element.set("ask", "subscribe")
    if item.approved:
        element.set("approved", "true")
    for group in item.groups:
        SubElement(element, _GROUP).text = group
    return element


async def route_presence(router: StanzaRouter, type_: str, sender: JID, to: JID) -> None:
    """Route a presence stanza the server sends on a user's behalf."""
    attributes = {"type": type_, "from": str(sender), "to": str(to)}
    await router.route(Element(qname(NS.CLIENT, "presence"), attributes), sender, to)


def _bad(condition: StanzaCondition, text: str) -> StanzaError:
    return StanzaError(condition, text)


def _parse_contact(element: Element) -> JID:
    value = element.get("jid")
    if not value:
        raise _bad(StanzaCondition.BAD_REQUEST, "item without jid")
    contact = parse_jid(value)  # raises jid-malformed
    if not contact.is_bare:
        raise _bad(StanzaCondition.BAD_REQUEST, "roster items are bare JIDs")
    return storable(contact)


def storable(contact: JID) -> JID:
    """``contact`` if a roster can hold it; RFC 7622 allows longer JIDs than the store keeps."""
    if len(str(contact)) > MAX_JID:
        raise _bad(
            StanzaCondition.NOT_ACCEPTABLE, f"JIDs in rosters have at most {MAX_JID} characters"
        )
    return contact


def _parse_groups(element: Element) -> tuple[str, ...]:
    groups = [group.text or "" for group in element.findall(_GROUP)]
    # RFC 6121 §2.3.3: duplicate groups are a bad request, empty ones not acceptable.
    if len(set(groups)) != len(groups):
        raise _bad(StanzaCondition.BAD_REQUEST, "duplicate group")
    if len(groups) > MAX_GROUPS or any(not g or len(g) > MAX_GROUP for g in groups):
        raise _bad(StanzaCondition.NOT_ACCEPTABLE, "empty, long or too many groups")
    return tuple(groups)


class Roster:
    """The ``jabber:iq:roster`` handler, and the roster pushes every feature sends.

    The rosters of accounts with a bound resource are kept in memory once read, so that
    presence broadcasts and the logout's unavailable presence need no database read. Every
    roster write goes through :meth:`save` or :meth:`remove` of this process, which drop
    the copy before and after writing.
    """

    namespace: str = NS.ROSTER
    disco_features: tuple[str, ...] = ()

    def __init__(self, hub: Hub, store: RosterStore, *, max_items: int = MAX_ITEMS) -> None:
        self._hub = hub
        self.store = store
        self._max_items = max_items
        self._cached: dict[JID, list[RosterItem]] = {}
        self.writes = 0
        """Roster writes begun or ended: a read that overlapped one is not kept."""

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        owner = context.sender.bare
        # RFC 6121 §2.1.5: only the account itself reads or writes its roster.
        if context.to != owner:
            raise _bad(StanzaCondition.FORBIDDEN, "not your roster")
        query = iq[0]
        if iq.get("type") == "get":
            return await self._get(iq, query, context.sender)
        items = list(query)
        if len(items) != 1 or items[0].tag != _ITEM:
            raise _bad(StanzaCondition.BAD_REQUEST, "a roster set carries exactly one item")
        item = items[0]
        contact = _parse_contact(item)
        if item.get("subscription") == "remove":
            if not await self.remove(owner, contact):
                raise _bad(StanzaCondition.ITEM_NOT_FOUND, "no such item")
            return iq_result(iq)
        name = item.get("name") or None
        if name is not None and len(name) > MAX_NAME:
            raise _bad(StanzaCondition.NOT_ACCEPTABLE, "name too long")
        groups = _parse_groups(item)
        # §2.3.3: a client cannot set subscription or ask; those stay as they are.
        existing = await self.store.get(owner, contact)
        base = existing or RosterItem(contact)
        await self.save(owner, replace(base, name=name, groups=groups), new=existing is None)
        return iq_result(iq)

    async def _get(self, iq: Element, query: Element, sender: JID) -> Element:
        owner = sender.bare
        resource = self._hub.resource(sender)
        if resource is not None:
            resource.interested = True
        version = str(await self.store.version(owner))
        # §2.6.3: the client's copy is current; the changes come as pushes.
        if query.get("ver") == version:
            return iq_result(iq)
        result = Element(_QUERY, {"ver": version})
        result.extend(item_element(item) for item in await self.store.items(owner))
        return iq_result(iq, result)

    async def save(self, owner: JID, item: RosterItem, *, new: bool) -> None:
        """Store ``item`` and push it; refuse a new item beyond the size cap."""
        if new and await self.store.count(owner) >= self._max_items:
            raise _bad(StanzaCondition.NOT_ALLOWED, f"rosters hold {self._max_items} items")
        self._changing(owner)
        try:
            version = await self.store.put(owner, item)
        finally:
            self._changing(owner)
        self.push(owner, item_element(item), version)

    async def remove(self, owner: JID, contact: JID) -> bool:
        """§2.5.2: remove the item, cancel both subscriptions, push the removal."""
        item = await self.store.get(owner, contact)
        if item is None:
            return False
        pending_in = await self.store.has_pending(owner, contact)
        self._changing(owner)
        try:
            version = await self.store.remove(owner, contact)
        finally:
            self._changing(owner)
        if version is not None:
            self.push(owner, item_element(item, removed=True), version)
        subscribed_from = item.subscription in (Subscription.FROM, Subscription.BOTH)
        if subscribed_from:
            await self.unavailable_to(owner, contact)
        if subscribed_from or pending_in:
            await route_presence(self._hub, "unsubscribed", owner, contact)
        if item.subscription in (Subscription.TO, Subscription.BOTH) or item.ask:
            await route_presence(self._hub, "unsubscribe", owner, contact)
        return True

    def push(self, owner: JID, item: Element, version: int) -> None:
        """§2.1.6: send the changed item to every interested resource of ``owner``."""
        for resource in self._hub.bound(owner):
            if not resource.interested:
                continue
            iq = Element(
                qname(NS.CLIENT, "iq"),
                {"type": "set", "id": self._hub.new_id(), "to": str(resource.jid)},
            )
            query = SubElement(iq, _QUERY, {"ver": str(version)})
            query.append(item)
            resource.session.send(iq)

    async def unavailable_to(self, owner: JID, contact: JID) -> None:
        """Tell ``contact`` that each available resource of ``owner`` is gone (§3.2.2)."""
        for resource in self._hub.bound(owner):
            if resource.available:
                await route_presence(self._hub, "unavailable", resource.jid, contact)

    async def subscribers(self, owner: JID) -> Sequence[JID]:
        """Contacts with a subscription to the owner's presence (from, both)."""
        return subscribers_in(await self.items(owner))

    async def items(self, owner: JID) -> list[RosterItem]:
        """The owner's roster, from memory while the owner has a bound resource."""
        cached = self._cached.get(owner)
        if cached is not None:
            return cached
        writes = self.writes
        items = await self.store.items(owner)
        self.remember(owner, items, writes)
        return items

    def remember(self, owner: JID, items: list[RosterItem], writes: int) -> None:
        """Keep ``items``, read when :attr:`writes` was ``writes``, if still current and
        the owner still has a bound resource (:meth:`forget` drops them when it has none)."""
        if writes == self.writes and self._hub.bound(owner):
            self._cached[owner] = items

    def forget(self, owner: JID) -> None:
        self._cached.pop(owner, None)

    def _changing(self, owner: JID) -> None:
        self.writes += 1
        self._cached.pop(owner, None)


def subscriptions_in(items: Sequence[RosterItem]) -> list[JID]:
    """Contacts whose presence the owner subscribed to (to, both)."""
    return [item.jid for item in items if item.subscription in _TO_STATES]


def subscribers_in(items: Sequence[RosterItem]) -> list[JID]:
    """Contacts with a subscription to the owner's presence (from, both)."""
    return [item.jid for item in items if item.subscription in _FROM_STATES]
