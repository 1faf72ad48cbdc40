"""Blocking Command (XEP-0191): each user's blocklist, its pushes, and the check the router asks.

The router calls :meth:`BlockingHandler.is_blocked` for stanzas to and from
local users, so the lists are cached in memory (a bounded LRU of owners) and
the store is read once per owner. An item matches as XEP-0016 §2.1 orders
JIDs: full JID, bare JID, domain/resource, then domain.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = [
    "MAX_BLOCKED_JID",
    "MAX_BLOCKLIST",
    "BlockingHandler",
    "BlocklistStore",
    "ConnectedResources",
]

MAX_BLOCKLIST = 1000
"""Items one user may block; more is refused with policy-violation."""
MAX_BLOCKED_JID = 400
"""Longest JID kept in a blocklist (characters), the width of the store's column."""
_CACHED_OWNERS = 10_000

_BLOCKLIST = qname(NS.BLOCKING, "blocklist")
_BLOCK = qname(NS.BLOCKING, "block")
_UNBLOCK = qname(NS.BLOCKING, "unblock")
_ITEM = qname(NS.BLOCKING, "item")


class BlocklistStore(Protocol):
    """Blocked JIDs (prepared strings) by owner bare JID, in the order they were blocked."""

    async def blocklist(self, owner: str) -> list[str]: ...

    async def block(self, owner: str, jids: Sequence[str]) -> None: ...

    async def unblock(self, owner: str, jids: Sequence[str]) -> None: ...

    async def unblock_all(self, owner: str) -> None: ...


class ConnectedResources(Protocol):
    """The full JIDs an account is connected with now (the router's sessions)."""

    def resources(self, account: JID) -> list[JID]: ...


class PresenceToBlocked(Protocol):
    """What a block or an unblock does to presence (XEP-0191 §3.3, §3.4): the presence
    feature, for the subscribers a predicate picks."""

    async def withdraw(self, owner: JID, chosen: Callable[[JID], bool]) -> None: ...

    async def restore(self, owner: JID, chosen: Callable[[JID], bool]) -> None: ...


def _candidates(other: JID) -> tuple[str, ...]:
    """XEP-0016 §2.1: the item JIDs that would match ``other``."""
    domain = JID("", other.domain)
    return (
        str(other),
        str(other.bare),
        str(JID("", other.domain, other.resource)),
        str(domain),
    )


def _matching(jids: Sequence[str]) -> Callable[[JID], bool]:
    """Whether a contact is one that blocklist items ``jids`` match."""
    items = frozenset(jids)
    return lambda contact: any(candidate in items for candidate in _candidates(contact))


def _items(element: Element) -> list[str]:
    """The prepared JIDs of ``element``'s <item/> children, deduplicated, in order."""
    jids: dict[str, None] = {}
    for item in element.iterfind(_ITEM):
        text = item.get("jid")
        if not text:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "<item/> without a jid")
        # §3.3: "If the JID is malformed, the server MUST return a <jid-malformed/> error."
        jid = str(parse_jid(text))
        if len(jid) > MAX_BLOCKED_JID:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "JID too long to block")
        jids[jid] = None
    return list(jids)


def _command(tag: str, jids: Sequence[str]) -> Element:
    element = Element(tag)
    for jid in jids:
        SubElement(element, _ITEM, {"jid": jid})
    return element


class BlockingHandler:
    """XEP-0191 §3.2 (get the blocklist), §3.3 (block), §3.4 (unblock, unblock all)."""

    namespace: str = NS.BLOCKING
    disco_features: tuple[str, ...] = (NS.BLOCKING,)

    def __init__(
        self,
        store: BlocklistStore,
        sessions: ConnectedResources,
        presence: PresenceToBlocked | None = None,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._presence = presence
        self._cache: OrderedDict[str, frozenset[str]] = OrderedDict()
        # §3.3: pushes go to the resources that have asked for the blocklist.
        self._interested: dict[JID, set[JID]] = {}
        self._push_ids = itertools.count(1)

    def forget(self, account: JID) -> None:
        """The account was deleted: its list went with it, so must what is kept of it."""
        self._cache.pop(str(account.bare), None)
        self._interested.pop(account.bare, None)

    async def is_blocked(self, owner: JID, other: JID) -> bool:
        """Whether ``owner``'s blocklist holds an item matching ``other``."""
        blocked = await self._blocked(str(owner.bare))
        return any(candidate in blocked for candidate in _candidates(other))

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        account = context.sender.bare
        if context.to.local and context.to.bare != account:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only your own blocklist")
        kind = iq.get("type")
        if kind == "get" and iq.find(_BLOCKLIST) is not None:
            return iq_result(iq, await self._get(account, context.sender))
        if kind == "set" and (block := iq.find(_BLOCK)) is not None:
            await self._block(account, _items(block), context)
            return iq_result(iq)
        if kind == "set" and (unblock := iq.find(_UNBLOCK)) is not None:
            await self._unblock(account, _items(unblock), context)
            return iq_result(iq)
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected blocklist, block or unblock")

    async def _get(self, account: JID, resource: JID) -> Element:
        jids = await self._store.blocklist(str(account))
        self._remember(str(account), jids)
        if resource.resource:
            online = set(self._sessions.resources(account))
            interested = self._interested.get(account, set()) & online
            self._interested[account] = interested | {resource}
        return _command(_BLOCKLIST, jids)

    async def _block(self, account: JID, jids: list[str], context: IqContext) -> None:
        if not jids:
            # §3.3: "the server MUST return a <bad-request/> error".
            raise StanzaError(StanzaCondition.BAD_REQUEST, "<block/> needs at least one item")
        if str(account) in jids:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "you cannot block yourself")
        current = await self._blocked(str(account))
        if len(current | set(jids)) > MAX_BLOCKLIST:
            raise StanzaError(
                StanzaCondition.POLICY_VIOLATION, f"at most {MAX_BLOCKLIST} blocked JIDs"
            )
        if self._presence is not None:
            # §3.3: subscribers now blocked see the account go, before the block stops it.
            await self._presence.withdraw(account, _matching(jids))
        await self._store.block(str(account), jids)
        self._cache.pop(str(account), None)
        await self._push(account, _BLOCK, jids, context)

    async def _unblock(self, account: JID, jids: list[str], context: IqContext) -> None:
        # §3.4: an <unblock/> without items empties the whole list.
        freed = jids or sorted(await self._blocked(str(account)))
        if jids:
            await self._store.unblock(str(account), jids)
        else:
            await self._store.unblock_all(str(account))
        self._cache.pop(str(account), None)
        if self._presence is not None:
            # §3.4: subscribers no longer blocked get the current presence again.
            await self._presence.restore(account, _matching(freed))
        await self._push(account, _UNBLOCK, jids, context)

    async def _push(self, account: JID, tag: str, jids: list[str], context: IqContext) -> None:
        """§3.3, §3.4: the change goes to every interested resource still connected."""
        online = set(self._sessions.resources(account))
        interested = self._interested.get(account, set()) & online
        if interested:
            self._interested[account] = interested
        else:
            self._interested.pop(account, None)
        for resource in sorted(interested, key=str):
            push = Element(
                qname(NS.CLIENT, "iq"),
                {
                    "type": "set",
                    "id": f"block-push-{next(self._push_ids)}",
                    "from": str(account),
                    "to": str(resource),
                },
            )
            push.append(_command(tag, jids))
            await context.router.route(push, account, resource)

    async def _blocked(self, owner: str) -> frozenset[str]:
        cached = self._cache.get(owner)
        if cached is not None:
            self._cache.move_to_end(owner)
            return cached
        return self._remember(owner, await self._store.blocklist(owner))

    def _remember(self, owner: str, jids: list[str]) -> frozenset[str]:
        blocked = frozenset(jids)
        self._cache[owner] = blocked
        self._cache.move_to_end(owner)
        while len(self._cache) > _CACHED_OWNERS:
            self._cache.popitem(last=False)
        return blocked
