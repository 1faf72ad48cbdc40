"""Message Archive Management for accounts (XEP-0313) with XEP-0359 stanza ids: the
store behind it and the account's side; the rules are in :mod:`heron.xmpp.archive`.

The router calls :meth:`MessageArchive.outgoing` when one of an account's sessions sends
a message and :meth:`MessageArchive.incoming` before it delivers one to an account, so a
conversation is archived on both sides, once per bare JID (as Prosody's mod_mam), and
the recipient's copy carries its archive id. :meth:`MessageArchive.handle_iq` answers an
account's queries and preferences; only the account itself reads its archive.
Group-chat rooms keep theirs with :func:`answer` in ``heron.xmpp.muc.service``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element

from heron.errors import StoreError
from heron.xmpp.archive import (
    EXTENDED,
    MAM,
    SID,
    ArchivedItem,
    Default,
    Page,
    Prefs,
    Query,
    archivable,
    fin,
    parse_prefs,
    parse_query,
    query_form,
    result,
    stamp_id,
    strip_ids,
)
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext, StanzaRouter
from heron.xmpp.features.local import from_text, to_text
from heron.xmpp.jid import JID
from heron.xmpp.stanza import iq_result, qname

__all__ = ["ArchiveSettings", "ArchiveStore", "MessageArchive", "answer"]

log = logging.getLogger(__name__)

_PREFS_CACHED = 10_000


class ArchiveStore(Protocol):
    """Archived messages per owner (an account's or a room's bare JID), in the order they
    were archived, and the owners' preferences; times are Unix seconds."""

    async def append(self, owner: JID, with_: JID, item: ArchivedItem, limit: int) -> None:
        """Keep ``item``, exchanged with ``with_``; past ``limit`` items for ``owner`` the
        oldest go (0: no limit)."""
        ...

    async def query(self, owner: JID, query: Query) -> Page | None:
        """``owner``'s items matching ``query``, at most ``query.max``; None when an id
        the query pages from is not in ``owner``'s archive."""
        ...

    async def expire(self, before: float) -> int:
        """Remove every item older than ``before``; how many went."""
        ...

    async def forget(self, owner: JID) -> None:
        """Remove ``owner``'s whole archive (a room that is gone)."""
        ...

    async def prefs(self, owner: JID) -> str | None:
        """``owner``'s preferences as :meth:`Prefs.to_json` wrote them, None if never set."""
        ...

    async def set_prefs(self, owner: JID, prefs: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    """How much is kept and shown: ``page`` results per query at most (more are paged),
    ``limit`` items per owner (0: unlimited)."""

    page: int = 50
    limit: int = 10_000


async def answer(
    store: ArchiveStore,
    router: StanzaRouter,
    owner: JID,
    iq: Element,
    requester: JID,
    page_limit: int,
) -> Element:
    """Run the query of ``iq`` on ``owner``'s archive: route each result to ``requester``
    (from ``owner``, §4.2) and return the iq result with ``<fin/>`` (§4.3) to send last.
    A ``get`` is answered with the form (§4.1.1)."""
    if iq.get("type") == "get":
        return iq_result(iq, query_form())
    query = parse_query(iq[0], page_limit)
    try:
        page = await store.query(owner, query)
    except StoreError as error:
        log.error("archive of %s not read: %s", owner, error)
        raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR) from None
    if page is None:
        # XEP-0313 §4.3.3 (and XEP-0059 §2.6): an id that is not in this archive.
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such id in this archive")
    items = page.items[::-1] if query.flip else page.items
    for item in items:
        original = from_text(item.stanza)
        if original is not None:
            message = result(owner, requester, query.queryid, item, original)
            await router.route(message, owner, requester)
    return iq_result(iq, fin(page, items))


class MessageArchive:
    """An account's archive: what is kept (with its preferences) and the queries."""

    namespace: str = MAM
    disco_features: tuple[str, ...] = (MAM, EXTENDED, SID)

    def __init__(
        self,
        store: ArchiveStore,
        router: StanzaRouter,
        *,
        settings: ArchiveSettings,
        in_roster: Callable[[JID, JID], Awaitable[bool]],
        clock: Callable[[], float],
        ids: Callable[[], str],
    ) -> None:
        self._store = store
        self._router = router
        self._settings = settings
        self._in_roster = in_roster
        self._clock = clock
        self._ids = ids
        self._prefs: OrderedDict[JID, Prefs] = OrderedDict()

    def forget(self, account: JID) -> None:
        """The account was deleted, its preferences with it: no longer remembered."""
        self._prefs.pop(account.bare, None)

    async def incoming(self, message: Element, owner: JID, sender: JID) -> None:
        """Archive ``message`` delivered to the account ``owner`` and mark it with the
        archive id; a forged id claiming to be the account's is removed either way."""
        strip_ids(message, owner)
        id_ = await self._keep(message, owner, sender)
        if id_ is not None:
            stamp_id(message, owner, id_)

    async def outgoing(self, message: Element, owner: JID, to: JID) -> None:
        """Archive ``message`` the account ``owner`` sends to ``to`` (another bare JID:
        one to itself is archived once, as it arrives). Prosody marks no id on it: the
        sender's id is for the sender, which learns it by querying."""
        strip_ids(message, owner)
        await self._keep(message, owner, to)

    async def _keep(self, message: Element, owner: JID, other: JID) -> str | None:
        if not archivable(message):
            return None
        try:
            prefs = await self._owner_prefs(owner)
            roster = (
                await self._in_roster(owner, other.bare)
                if prefs.default is Default.ROSTER
                else None
            )
            if not prefs.archives(other, roster):
                return None
            item = ArchivedItem(self._ids(), self._clock(), to_text(message))
            await self._store.append(owner, other, item, self._settings.limit)
        except StoreError as error:
            # The message still goes: losing its archive copy beats losing the message.
            log.error("message for the archive of %s not kept: %s", owner, error)
            return None
        return item.id

    async def _owner_prefs(self, owner: JID) -> Prefs:
        prefs = self._prefs.get(owner)
        if prefs is None:
            text = await self._store.prefs(owner)
            prefs = Prefs() if text is None else Prefs.from_json(text)
            self._remember(owner, prefs)
        else:
            self._prefs.move_to_end(owner)
        return prefs

    def _remember(self, owner: JID, prefs: Prefs) -> None:
        self._prefs[owner] = prefs
        self._prefs.move_to_end(owner)
        while len(self._prefs) > _PREFS_CACHED:
            self._prefs.popitem(last=False)

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        owner = context.sender.bare
        if context.to.bare != owner:
            # §4: an account's archive is its own; a query to anyone else's is refused
            # whether that account exists or not.
            raise StanzaError(StanzaCondition.FORBIDDEN, "you may only query your own archive")
        payload = iq[0]
        if payload.tag == qname(MAM, "prefs"):
            return await self._prefs_iq(iq, owner)
        if payload.tag != qname(MAM, "query"):
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected <query/> or <prefs/>")
        return await answer(
            self._store, self._router, owner, iq, context.sender, self._settings.page
        )

    async def _prefs_iq(self, iq: Element, owner: JID) -> Element:
        """§6: read or replace the account's preferences."""
        if iq.get("type") == "set":
            prefs = parse_prefs(iq[0])
            await self._store.set_prefs(owner, prefs.to_json())
            self._remember(owner, prefs)
        else:
            prefs = await self._owner_prefs(owner)
        return iq_result(iq, prefs.element())

    async def expire(self, before: float) -> int:
        """Drop what is older than ``before`` from every archive (``xmpp.archive_expires``)."""
        removed = await self._store.expire(before)
        if removed:
            log.info("%d archived message(s) expired", removed)
        return removed
