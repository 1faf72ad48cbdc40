"""Every store Protocol in memory: for tests of protocol logic and single-run tools.

Each class keeps the contract of its SQL twin (orders, versions, limits) without a
database, and its contents are plain attributes a test may read or seed. The
:class:`~heron.xmpp.features.presence.LoginStore` in memory is
:class:`~heron.xmpp.features.presence.SeparateReads` over a
:class:`MemoryRosterStore` and a :class:`MemoryOfflineStore`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from heron.accounts import Account, Secrets
from heron.errors import AccountExists
from heron.sip.errors import SipLocalError
from heron.sip.registrar import Binding
from heron.xmpp.archive import ArchivedItem, Page, Query
from heron.xmpp.features.offline import MAX_MESSAGES
from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import JID
from heron.xmpp.muc.model import RoomRecord
from heron.xmpp.pep.model import StoredItem
from heron.xmpp.push import Registration

__all__ = [
    "MemoryAccountStore",
    "MemoryArchiveStore",
    "MemoryBlocklistStore",
    "MemoryLocationStore",
    "MemoryOfflineStore",
    "MemoryPepStore",
    "MemoryPushStore",
    "MemoryRoomStore",
    "MemoryRosterStore",
    "MemoryVCardStore",
]


class MemoryAccountStore:
    """:class:`heron.accounts.AccountStore` in a dict by (local, domain); listed by
    domain, then name, as from SQL."""

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], Account] = {}

    async def add(self, account: Account) -> None:
        if (account.local, account.domain) in self.accounts:
            raise AccountExists(account.address)
        self.accounts[account.local, account.domain] = account

    async def get(self, local: str, domain: str) -> Account | None:
        return self.accounts.get((local, domain))

    async def list(self, domain: str | None = None) -> Sequence[Account]:
        listed = sorted(self.accounts.values(), key=lambda a: (a.domain, a.local))
        return [a for a in listed if domain in (None, a.domain)]

    async def delete(self, local: str, domain: str) -> bool:
        return self.accounts.pop((local, domain), None) is not None

    async def replace_secrets(self, local: str, domain: str, secrets: Secrets) -> bool:
        account = self.accounts.get((local, domain))
        if account is not None:
            self.accounts[local, domain] = replace(account, secrets=secrets)
        return account is not None

    async def set_admin(self, local: str, domain: str, admin: bool) -> bool:
        account = self.accounts.get((local, domain))
        if account is not None:
            self.accounts[local, domain] = replace(account, admin=admin)
        return account is not None


class MemoryLocationStore:
    """:class:`heron.sip.registrar.LocationStore` in a dict by AOR."""

    def __init__(self) -> None:
        self._bindings: dict[str, tuple[Binding, ...]] = {}

    async def get(self, aor: str) -> list[Binding]:
        return list(self._bindings.get(aor, ()))

    async def replace(self, aor: str, bindings: Sequence[Binding]) -> None:
        if any(b.aor != aor for b in bindings):
            raise SipLocalError("Binding for another AOR", detail=aor)
        if bindings:
            self._bindings[aor] = tuple(bindings)
        else:
            self._bindings.pop(aor, None)

    async def replace_all(self, sets: Mapping[str, Sequence[Binding]]) -> None:
        for aor, bindings in sets.items():
            await self.replace(aor, bindings)

    async def all(self, now: float) -> list[Binding]:
        stored = (b for aor in sorted(self._bindings) for b in self._bindings[aor])
        return [b for b in stored if not b.is_expired(now)]

    async def sweep(self, now: float) -> int:
        swept = 0
        for aor, bindings in list(self._bindings.items()):
            live = tuple(b for b in bindings if not b.is_expired(now))
            swept += len(bindings) - len(live)
            if live:
                self._bindings[aor] = live
            else:
                del self._bindings[aor]
        return swept


class MemoryRosterStore:
    """:class:`heron.xmpp.features.roster.RosterStore` in dicts by owner; items come
    ordered by contact and pending requests in arrival order, as from SQL."""

    def __init__(self) -> None:
        self.items_by_owner: dict[JID, dict[JID, RosterItem]] = {}
        self.versions: dict[JID, int] = {}
        self.pending_by_owner: dict[JID, dict[JID, str]] = {}

    async def items(self, owner: JID) -> list[RosterItem]:
        roster = self.items_by_owner.get(owner, {})
        return [roster[contact] for contact in sorted(roster, key=str)]

    async def get(self, owner: JID, contact: JID) -> RosterItem | None:
        return self.items_by_owner.get(owner, {}).get(contact)

    async def count(self, owner: JID) -> int:
        return len(self.items_by_owner.get(owner, {}))

    async def version(self, owner: JID) -> int:
        return self.versions.get(owner, 0)

    async def put(self, owner: JID, item: RosterItem) -> int:
        self.items_by_owner.setdefault(owner, {})[item.jid] = item
        return self._bump(owner)

    async def remove(self, owner: JID, contact: JID) -> int | None:
        if self.items_by_owner.get(owner, {}).pop(contact, None) is None:
            return None
        self.pending_by_owner.get(owner, {}).pop(contact, None)
        return self._bump(owner)

    def _bump(self, owner: JID) -> int:
        self.versions[owner] = version = self.versions.get(owner, 0) + 1
        return version

    async def pending(self, owner: JID) -> list[tuple[JID, str]]:
        return list(self.pending_by_owner.get(owner, {}).items())

    async def has_pending(self, owner: JID, contact: JID) -> bool:
        return contact in self.pending_by_owner.get(owner, {})

    async def set_pending(self, owner: JID, contact: JID, stanza: str) -> None:
        await self.clear_pending(owner, contact)
        self.pending_by_owner.setdefault(owner, {})[contact] = stanza

    async def clear_pending(self, owner: JID, contact: JID) -> None:
        self.pending_by_owner.get(owner, {}).pop(contact, None)


class MemoryOfflineStore:
    """:class:`heron.xmpp.features.offline.OfflineStore` in lists by owner, ``limit``
    messages per account."""

    def __init__(self, *, limit: int = MAX_MESSAGES) -> None:
        self.messages: dict[JID, list[tuple[str, float]]] = {}
        self._limit = limit

    async def push(self, owner: JID, stanza: str, stamp: float) -> bool:
        mine = self.messages.setdefault(owner, [])
        if len(mine) >= self._limit:
            return False
        mine.append((stanza, stamp))
        return True

    async def pop_all(self, owner: JID) -> list[tuple[str, float]]:
        return self.messages.pop(owner, [])

    async def count(self, owner: JID) -> int:
        return len(self.messages.get(owner, ()))


class MemoryVCardStore:
    """:class:`heron.xmpp.features.vcard.VCardStore`: (vCard, time saved) by owner."""

    def __init__(self) -> None:
        self.vcards: dict[str, tuple[str, float]] = {}

    async def get_vcard(self, owner: str) -> str | None:
        row = self.vcards.get(owner)
        return None if row is None else row[0]

    async def set_vcard(self, owner: str, vcard: str, now: float) -> None:
        self.vcards[owner] = (vcard, now)


class MemoryBlocklistStore:
    """:class:`heron.xmpp.features.blocking.BlocklistStore`: blocked JIDs by owner, in
    the order blocked."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {}

    async def blocklist(self, owner: str) -> list[str]:
        return list(self.lists.get(owner, []))

    async def block(self, owner: str, jids: Sequence[str]) -> None:
        current = self.lists.setdefault(owner, [])
        current.extend(jid for jid in jids if jid not in current)

    async def unblock(self, owner: str, jids: Sequence[str]) -> None:
        self.lists[owner] = [jid for jid in self.lists.get(owner, []) if jid not in jids]

    async def unblock_all(self, owner: str) -> None:
        self.lists.pop(owner, None)


class MemoryPushStore:
    """:class:`heron.xmpp.features.push.PushStore`: registrations by owner, oldest first."""

    def __init__(self) -> None:
        self.services: dict[str, list[Registration]] = {}

    async def push_services(self, owner: str) -> list[Registration]:
        return list(self.services.get(owner, ()))

    async def enable_push(self, owner: str, registration: Registration, limit: int) -> bool:
        others = [
            r
            for r in self.services.get(owner, ())
            if (r.service, r.node) != (registration.service, registration.node)
        ]
        if len(others) >= limit:
            return False
        self.services[owner] = [*others, registration]
        return True

    async def disable_push(self, owner: str, service: str, node: str | None) -> int:
        mine = self.services.get(owner, [])
        kept = [r for r in mine if str(r.service) != service or node not in (None, r.node)]
        self.services[owner] = kept
        return len(mine) - len(kept)


class MemoryRoomStore:
    """:class:`heron.xmpp.muc.model.RoomStore`: records by service and room name; a
    room saved again keeps the time it was first saved, as in SQL."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, RoomRecord]] = {}

    async def load(self, service: str) -> list[RoomRecord]:
        rooms = self.rooms.get(service, {})
        return [rooms[name] for name in sorted(rooms)]

    async def save(self, service: str, room: RoomRecord) -> None:
        rooms = self.rooms.setdefault(service, {})
        saved = rooms.get(room.name)
        affiliations = tuple(sorted(room.affiliations, key=lambda entry: str(entry.jid)))
        created_at = room.created_at if saved is None else saved.created_at
        rooms[room.name] = replace(room, affiliations=affiliations, created_at=created_at)

    async def delete(self, service: str, name: str) -> None:
        self.rooms.get(service, {}).pop(name, None)


class MemoryArchiveStore:
    """:class:`heron.xmpp.features.mam.ArchiveStore` in lists per owner, oldest first;
    ``items`` holds (with, item) pairs."""

    def __init__(self) -> None:
        self.items: dict[JID, list[tuple[JID, ArchivedItem]]] = {}
        self.preferences: dict[JID, str] = {}

    async def append(self, owner: JID, with_: JID, item: ArchivedItem, limit: int) -> None:
        kept = self.items.setdefault(owner, [])
        kept.append((with_, item))
        if limit:
            del kept[:-limit]

    async def query(self, owner: JID, query: Query) -> Page | None:
        kept = self.items.get(owner, [])
        positions = {item.id: n for n, (_, item) in enumerate(kept)}
        if any(id_ not in positions for id_ in (*query.after, *query.before)):
            return None
        low = max((positions[id_] for id_ in query.after), default=-1)
        high = min((positions[id_] for id_ in query.before), default=len(kept))

        def matches(with_: JID, item: ArchivedItem) -> bool:
            wanted = query.with_
            return (
                (wanted is None or wanted == (with_.bare if wanted.is_bare else with_))
                and (query.start is None or item.stamp >= query.start)
                and (query.end is None or item.stamp <= query.end)
                and (not query.ids or item.id in query.ids)
            )

        found = [(n, item) for n, (with_, item) in enumerate(kept) if matches(with_, item)]
        paged = [item for n, item in found if low < n < high]
        page = paged[-query.max :] if query.last and query.max else paged[: query.max]
        return Page(page, len(page) == len(paged), len(found))

    async def expire(self, before: float) -> int:
        removed = 0
        for owner, kept in self.items.items():
            fresh = [(with_, item) for with_, item in kept if item.stamp >= before]
            removed += len(kept) - len(fresh)
            self.items[owner] = fresh
        return removed

    async def forget(self, owner: JID) -> None:
        self.items.pop(owner, None)

    async def prefs(self, owner: JID) -> str | None:
        return self.preferences.get(owner)

    async def set_prefs(self, owner: JID, prefs: str) -> None:
        self.preferences[owner] = prefs


class MemoryPepStore:
    """:class:`heron.xmpp.pep.model.PepStore` in dicts: ``nodes`` holds each node's
    configuration JSON and ``items`` its items oldest first, both by (owner, node)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], str] = {}
        self.items_of: dict[tuple[str, str], list[StoredItem]] = {}

    async def node_config(self, owner: str, node: str) -> str | None:
        return self.nodes.get((owner, node))

    async def usage(self, owner: str) -> tuple[int, int]:
        mine = [key for key in self.nodes if key[0] == owner]
        size = sum(len(i.payload.encode()) for key in mine for i in self.items_of.get(key, []))
        return len(mine), size

    async def create_node(self, owner: str, node: str, config: str, now: float) -> None:
        self.nodes[(owner, node)] = config
        self.items_of[(owner, node)] = []

    async def configure(self, owner: str, node: str, config: str, max_items: int) -> None:
        if (owner, node) in self.nodes:
            self.nodes[(owner, node)] = config
            self._trim((owner, node), max_items)

    def _trim(self, key: tuple[str, str], keep: int) -> None:
        items = self.items_of[key]
        del items[: max(0, len(items) - keep)]

    async def delete_node(self, owner: str, node: str) -> bool:
        self.items_of.pop((owner, node), None)
        return self.nodes.pop((owner, node), None) is not None

    async def publish(
        self, owner: str, node: str, item: StoredItem, max_items: int, now: float
    ) -> None:
        if (owner, node) in self.nodes:
            items = self.items_of[(owner, node)]
            items[:] = [old for old in items if old.id != item.id] + [item]
            self._trim((owner, node), max_items)

    async def retract(self, owner: str, node: str, item_id: str) -> bool:
        items = self.items_of.get((owner, node), [])
        kept = [item for item in items if item.id != item_id]
        found = len(kept) != len(items)
        items[:] = kept
        return found

    async def items(
        self, owner: str, node: str, ids: Sequence[str] = (), last: int | None = None
    ) -> list[StoredItem]:
        items = self.items_of.get((owner, node), [])
        if ids:
            return [item for item in items if item.id in ids]
        return items[-last:] if last else ([] if last == 0 else list(items))

    async def last_items(
        self, owners: Sequence[str], nodes: Sequence[str]
    ) -> list[tuple[str, str, str, StoredItem]]:
        return [
            (owner, node, config, self.items_of[(owner, node)][-1])
            for (owner, node), config in sorted(self.nodes.items())
            if owner in owners and node in nodes and self.items_of[(owner, node)]
        ]
