"""The group-chat service on ``conference.<domain>`` (XEP-0045): what Prosody's
muc component does in the Debian handbook's setup.

The router hands every stanza addressed to the service's domain to
:meth:`MucService.receive`, with the sender's full JID (stamped in ``from``)
and the address, both parsed. The service answers disco on its own address
(§6.1-§6.3), creates rooms for local users (§10.1), lets each
:class:`heron.xmpp.muc.room.Room` decide, routes what the room says in order
with the JIDs the room addressed it with (never parsed again), and keeps
persistent rooms in a :class:`heron.xmpp.muc.model.RoomStore`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from xml.etree.ElementTree import Element, SubElement

from heron.errors import StoreError
from heron.xmpp.archive import MAM, ArchivedItem
from heron.xmpp.errors import ErrorType, StanzaCondition, StanzaError
from heron.xmpp.features import Routed, StanzaRouter
from heron.xmpp.features.local import to_text
from heron.xmpp.features.mam import ArchiveSettings, ArchiveStore, answer
from heron.xmpp.jid import JID
from heron.xmpp.muc.model import Affiliation, Archived, Limits, Outcome, RoomStore, RoomSummary
from heron.xmpp.muc.room import Room, is_ping
from heron.xmpp.stanza import NS, error_reply, iq_result, qname

__all__ = ["MucService"]

log = logging.getLogger(__name__)

_PRESENCE = qname(NS.CLIENT, "presence")
_MESSAGE = qname(NS.CLIENT, "message")
_IQ = qname(NS.CLIENT, "iq")


def _is_query(stanza: Element) -> bool:
    """An iq request for XEP-0313 (a query, its form or preferences)."""
    return (
        stanza.tag == _IQ
        and stanza.get("type") in ("get", "set")
        and len(stanza) == 1
        and stanza[0].tag.startswith(f"{{{MAM}}}")
    )


def _random_id() -> str:
    return secrets.token_urlsafe(12)


class MucService:
    """:class:`heron.xmpp.features.DomainComponent` serving the rooms of one domain."""

    def __init__(
        self,
        domain: str,
        router: StanzaRouter,
        store: RoomStore,
        admins: Collection[JID],
        local_hosts: Collection[str],
        *,
        history: int | None = None,
        rooms_per_user: int | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        ids: Callable[[], str] = _random_id,
        archive: ArchiveStore | None = None,
        archive_settings: ArchiveSettings | None = None,
    ) -> None:
        self.domain = domain
        self.counters: dict[str, int] = {"rooms": 0, "occupants": 0, "messages": 0}
        self._router = router
        self._store = store
        self.set_admins(admins)
        self._local_hosts = frozenset(local_hosts)
        limits = limits or Limits()
        if history is not None:
            limits = replace(limits, history=history)
        if rooms_per_user is not None:
            limits = replace(limits, rooms_per_user=rooms_per_user)
        self._limits = replace(limits, archive=archive is not None)
        self._archive = archive
        self._archive_settings = archive_settings or ArchiveSettings()
        self._clock = clock
        self._ids = ids
        self._rooms: dict[str, Room] = {}
        self._saved: set[str] = set()
        # Stanzas of one room go out in the order the room produced them, even when
        # route() yields; the store is written by one task at a time.
        self._sending = asyncio.Lock()
        self._storing = asyncio.Lock()

    def set_admins(self, admins: Collection[JID]) -> None:
        """Server admins, who act as owners of every room (a reload changes them)."""
        self._admins = frozenset(jid.bare for jid in admins)

    async def load(self) -> None:
        """Bring back the persistent rooms (§10.2 muc#roomconfig_persistentroom)."""
        for record in await self._store.load(self.domain):
            self._rooms[record.name] = Room.restore(self.domain, record, self._limits, self._ids)
            self._saved.add(record.name)
        self.counters["rooms"] = len(self._rooms)
        log.info("%s: %d persistent room(s) loaded", self.domain, len(self._rooms))

    def rooms(self) -> list[RoomSummary]:
        return [self._rooms[name].summary() for name in sorted(self._rooms)]

    async def receive(self, stanza: Element, sender: JID, to: JID, is_admin: bool) -> None:
        admin = is_admin or sender.bare in self._admins
        if self._archive is not None and to.local and not to.resource and _is_query(stanza):
            await self._query(self._archive, stanza, sender, to, admin)
            return
        name = to.local
        room = self._rooms.get(name)
        before = room.occupant_count if room else 0
        try:
            outcome = self._dispatch(stanza, sender, to, admin)
        except StanzaError as error:
            # RFC 6120 §8.2.3, §8.3.1: results and errors are never answered with an error.
            answered = stanza.get("type") not in ("error", "result")
            outcome = Outcome((self._bounce(stanza, error, sender, to),) if answered else ())
        created = room is None and name in self._rooms
        room = self._rooms.get(name)
        after = room.occupant_count if room else 0
        removed = room is not None and room.gone
        if removed:
            del self._rooms[name]
        self.counters["rooms"] = len(self._rooms)
        self.counters["occupants"] += after - before
        self.counters["messages"] += outcome.messages
        if created and self._archive is not None:
            await self._forget(to.bare)  # what an earlier room of that name left (a restart)
        await self._send(outcome.stanzas, to.bare, outcome.archive)
        if outcome.changed or (removed and name in self._saved):
            await self._sync(name)
        if removed and self._archive is not None:
            await self._forget(to.bare)

    async def _keep(self, room: JID, archived: Collection[Archived]) -> None:
        """Archive what the room said before anyone sees its ids (XEP-0313 §5)."""
        assert self._archive is not None
        try:
            for kept in archived:
                item = ArchivedItem(kept.id, self._clock(), to_text(kept.message))
                await self._archive.append(room, kept.sender, item, self._archive_settings.limit)
        except StoreError as error:
            log.error("%s: message not archived: %s", room, error)

    async def _forget(self, room: JID) -> None:
        """A room that is gone takes its archive along: a new room of the same name, maybe
        someone else's, must not show it."""
        assert self._archive is not None
        try:
            await self._archive.forget(room)
        except StoreError as error:
            log.error("%s: archive not removed: %s", room, error)

    async def _query(
        self, store: ArchiveStore, stanza: Element, sender: JID, to: JID, admin: bool
    ) -> None:
        """XEP-0313 §5: a query of a room's archive, by someone the room lets read it."""
        room = self._rooms.get(to.local)
        try:
            if room is None:
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such room")
            if not room.may_read_archive(sender, admin):
                raise StanzaError(StanzaCondition.FORBIDDEN, "this room's archive is not yours")
            if stanza[0].tag != qname(MAM, "query"):
                raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "rooms have no prefs")
            page = self._archive_settings.page
            reply = Routed(
                await answer(store, self._router, room.jid, stanza, sender, page), to, sender
            )
        except StanzaError as error:
            reply = self._bounce(stanza, error, sender, to)
        await self._send((reply,))

    def _dispatch(self, stanza: Element, origin: JID, to: JID, admin: bool) -> Outcome:
        if not to.local:
            return self._service_stanza(stanza, origin, to)
        now = self._clock()
        room = self._rooms.get(to.local)
        if room is None:
            if to.resource and is_ping(stanza):
                # XEP-0410 §3.2: a self-ping to a room that is gone (a temporary room after
                # a restart) means "not joined", so the client rejoins; item-not-found
                # would tell it that it is joined under another nickname.
                raise StanzaError(
                    StanzaCondition.NOT_ACCEPTABLE, "you are not in this room", ErrorType.CANCEL
                )
            if stanza.tag != _PRESENCE:
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such room")
            if stanza.get("type") is not None or not to.resource:
                return Outcome()
            room = self._create(stanza, origin, to, admin, now)
        if stanza.tag == _PRESENCE:
            return room.handle_presence(stanza, origin, to.resource, admin, now)
        if stanza.tag == _MESSAGE:
            return room.handle_message(stanza, origin, to.resource, admin, now)
        if stanza.tag == _IQ:
            return room.handle_iq(stanza, origin, to.resource, admin)
        return Outcome()

    def _create(self, stanza: Element, origin: JID, to: JID, admin: bool, now: float) -> Room:
        """§10.1.1: a join to a missing room creates it, for local users only."""
        if len(to.local) > self._limits.max_room_name:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "room name too long")
        if origin.domain not in self._local_hosts and not admin:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only local users create rooms")
        if len(self._rooms) >= self._limits.max_rooms:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many rooms")
        quota = self._limits.rooms_per_user
        if quota and not admin and self._owned_by(origin.bare) >= quota:
            log.info(
                "%s: room %s refused to %s: owns %d room(s) already (xmpp.rooms_per_user)",
                self.domain,
                to.bare,
                origin.bare,
                quota,
            )
            # XEP-0045 §10.1.1 names not-allowed for a refused creation; the reason is a quota.
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "you own too many rooms")
        # A client without the MUC <x/> (groupchat 1.0) cannot configure: instant room.
        locked = stanza.find(qname(NS.MUC, "x")) is not None
        room = Room.create(to.bare, origin, now, self._limits, self._ids, locked=locked)
        self._rooms[to.local] = room
        log.info("%s: room %s created by %s", self.domain, to.bare, origin)
        return room

    def _owned_by(self, account: JID) -> int:
        return sum(
            1 for room in self._rooms.values() if room.affiliation(account) is Affiliation.OWNER
        )

    def _service_stanza(self, stanza: Element, origin: JID, to: JID) -> Outcome:
        """disco#info (§6.1, §6.2) and disco#items (§6.3) on the service itself."""
        if stanza.tag != _IQ:
            if stanza.tag == _MESSAGE and stanza.get("type") != "error":
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "write to a room")
            return Outcome()
        if stanza.get("type") != "get":
            if stanza.get("type") == "set":
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "unsupported request")
            return Outcome()
        tag = stanza[0].tag if len(stanza) == 1 else None
        if tag == qname(NS.DISCO_INFO, "query"):
            query = Element(tag)
            identity = {"category": "conference", "type": "text", "name": "Chatrooms"}
            SubElement(query, qname(NS.DISCO_INFO, "identity"), identity)
            for feature in (NS.DISCO_INFO, NS.DISCO_ITEMS, NS.MUC):
                SubElement(query, qname(NS.DISCO_INFO, "feature"), {"var": feature})
            return Outcome((Routed(iq_result(stanza, query), to, origin),))
        if tag == qname(NS.DISCO_ITEMS, "query"):
            query = Element(tag)
            for name in sorted(self._rooms):
                room = self._rooms[name]
                if room.listed:
                    attributes = {"jid": str(room.jid), "name": room.summary().title}
                    SubElement(query, qname(NS.DISCO_ITEMS, "item"), attributes)
            return Outcome((Routed(iq_result(stanza, query), to, origin),))
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "unsupported request")

    def _bounce(self, stanza: Element, error: StanzaError, sender: JID, to: JID) -> Routed:
        """RFC 6120 §8.3 error reply, ``by`` the room; §7.2's join errors keep the MUC <x/>."""
        reply = error_reply(stanza, error)
        element = reply.find(qname(NS.CLIENT, "error"))
        if element is not None:
            element.set("by", str(to.bare))
        if stanza.tag == _PRESENCE and stanza.find(qname(NS.MUC, "x")) is not None:
            reply.insert(0, Element(qname(NS.MUC, "x")))
        return Routed(reply, to, sender)

    async def _send(
        self,
        stanzas: Collection[Routed],
        room: JID | None = None,
        archived: Collection[Archived] = (),
    ) -> None:
        """Route ``stanzas`` in order, after archiving ``archived`` for ``room``: under one
        lock, so that a room's archive and its occupants see the same order."""
        if not stanzas:
            return
        async with self._sending:
            if archived and room is not None:
                await self._keep(room, archived)
            for routed in stanzas:
                await self._router.route(routed.stanza, routed.sender, routed.to)

    async def _sync(self, name: str) -> None:
        """Make the store match the room as it is now, so racing saves cannot go stale."""
        async with self._storing:
            room = self._rooms.get(name)
            try:
                if room is not None and room.config.persistent:
                    await self._store.save(self.domain, room.record())
                    self._saved.add(name)
                elif name in self._saved:
                    await self._store.delete(self.domain, name)
                    self._saved.discard(name)
            except StoreError as error:
                log.error("%s: room %s not saved: %s", self.domain, name, error)
