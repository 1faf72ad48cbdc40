"""XMPP instant-messaging data in SQL: rosters, roster versions, pending
subscription requests (RFC 6121) and offline messages (XEP-0160).

JIDs are stored as prepared bare-JID strings, so equal addresses are equal
rows. Every roster change bumps the owner's version in the same transaction.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from heron.store.database import Database
from heron.store.schema import offline_messages, roster_items, roster_pending, roster_versions
from heron.xmpp.features.offline import MAX_MESSAGES
from heron.xmpp.features.presence import LoginData
from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.subscription import Subscription

__all__ = ["SqlLoginStore", "SqlOfflineStore", "SqlRosterStore"]


def _item(row: Row[Any]) -> RosterItem:
    return RosterItem(
        jid=parse_jid(row.contact),
        name=row.name,
        subscription=Subscription(row.subscription),
        ask=bool(row.ask),
        approved=bool(row.approved),
        groups=tuple(json.loads(row.groups)),
    )


async def _bump(connection: AsyncConnection, owner: str) -> int:
    """Increment and return the owner's roster version inside the caller's
    transaction. Its row lock makes writers of one roster take turns, which
    is what keeps MariaDB's gap locks on the items from deadlocking.
    """
    table = roster_versions
    statement = update(table).where(table.c.owner == owner).values(version=table.c.version + 1)
    await connection.execute(statement)
    version = await connection.scalar(select(table.c.version).where(table.c.owner == owner))
    return int(version or 0)


def _items_query(owner: JID) -> Select[Any]:
    mine = roster_items.c.owner == str(owner)
    return select(roster_items).where(mine).order_by(roster_items.c.contact)


def _pending_query(owner: JID) -> Select[Any]:
    columns = (roster_pending.c.contact, roster_pending.c.stanza)
    return (
        select(*columns).where(roster_pending.c.owner == str(owner)).order_by(roster_pending.c.id)
    )


async def _pop_offline(connection: AsyncConnection, owner: JID) -> list[tuple[str, float]]:
    """Select and delete the owner's offline messages in the caller's transaction."""
    mine = offline_messages.c.owner == str(owner)
    query = select(offline_messages).where(mine).order_by(offline_messages.c.id)
    rows = (await connection.execute(query)).all()
    if rows:
        ids = [row.id for row in rows]
        await connection.execute(delete(offline_messages).where(offline_messages.c.id.in_(ids)))
    return [(row.stanza, float(row.stamp)) for row in rows]


class SqlRosterStore:
    """:class:`heron.xmpp.features.roster.RosterStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def items(self, owner: JID) -> list[RosterItem]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_items_query(owner))).all()
        return [_item(row) for row in rows]

    async def get(self, owner: JID, contact: JID) -> RosterItem | None:
        query = select(roster_items).where(
            roster_items.c.owner == str(owner), roster_items.c.contact == str(contact)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _item(row)

    async def count(self, owner: JID) -> int:
        query = select(func.count()).where(roster_items.c.owner == str(owner))
        async with self._engine.connect() as connection:
            return int(await connection.scalar(query) or 0)

    async def version(self, owner: JID) -> int:
        query = select(roster_versions.c.version).where(roster_versions.c.owner == str(owner))
        async with self._engine.connect() as connection:
            return int(await connection.scalar(query) or 0)

    async def put(self, owner: JID, item: RosterItem) -> int:
        values = {
            "owner": str(owner),
            "contact": str(item.jid),
            "name": item.name,
            "subscription": item.subscription.value,
            "ask": item.ask,
            "approved": item.approved,
            "groups": json.dumps(list(item.groups), ensure_ascii=False),
        }
        mine = (roster_items.c.owner == str(owner)) & (roster_items.c.contact == str(item.jid))
        await self._ensure_version(str(owner))
        async with self._engine.begin() as connection:
            version = await _bump(connection, str(owner))
            existing = await connection.scalar(select(roster_items.c.id).where(mine))
            if existing is None:
                await connection.execute(insert(roster_items).values(**values))
            else:
                statement = update(roster_items).where(roster_items.c.id == existing)
                await connection.execute(statement.values(**values))
        return version

    async def remove(self, owner: JID, contact: JID) -> int | None:
        if await self.get(owner, contact) is None:
            return None
        mine = (roster_items.c.owner == str(owner)) & (roster_items.c.contact == str(contact))
        pending = (roster_pending.c.owner == str(owner)) & (
            roster_pending.c.contact == str(contact)
        )
        await self._ensure_version(str(owner))
        async with self._engine.begin() as connection:
            version = await _bump(connection, str(owner))
            await connection.execute(delete(roster_items).where(mine))
            await connection.execute(delete(roster_pending).where(pending))
        return version

    async def _ensure_version(self, owner: str) -> None:
        """Create the owner's version row once, so that :func:`_bump` can lock it."""
        query = select(roster_versions.c.owner).where(roster_versions.c.owner == owner)
        async with self._engine.connect() as connection:
            if await connection.scalar(query) is not None:
                return
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(roster_versions).values(owner=owner, version=0))
        except IntegrityError:
            pass  # a concurrent first write created it

    async def pending(self, owner: JID) -> list[tuple[JID, str]]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_pending_query(owner))).all()
        return [(parse_jid(row.contact), row.stanza) for row in rows]

    async def has_pending(self, owner: JID, contact: JID) -> bool:
        query = select(func.count()).where(
            roster_pending.c.owner == str(owner), roster_pending.c.contact == str(contact)
        )
        async with self._engine.connect() as connection:
            return bool(await connection.scalar(query))

    async def set_pending(self, owner: JID, contact: JID, stanza: str) -> None:
        await self.clear_pending(owner, contact)
        row = {"owner": str(owner), "contact": str(contact), "stanza": stanza}
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(roster_pending).values(**row))
        except IntegrityError:
            pass  # a concurrent request from the same contact got there first; one is enough

    async def clear_pending(self, owner: JID, contact: JID) -> None:
        statement = delete(roster_pending).where(
            roster_pending.c.owner == str(owner), roster_pending.c.contact == str(contact)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)


class SqlOfflineStore:
    """:class:`heron.xmpp.features.offline.OfflineStore` in SQL, ``limit`` messages per account.

    The count and the insert share a transaction; two concurrent pushes may
    still overshoot the cap by one, which is harmless.
    """

    def __init__(self, database: Database, *, limit: int = MAX_MESSAGES) -> None:
        self._engine = database.engine
        self._limit = limit

    async def push(self, owner: JID, stanza: str, stamp: float) -> bool:
        count = select(func.count()).where(offline_messages.c.owner == str(owner))
        async with self._engine.begin() as connection:
            if int(await connection.scalar(count) or 0) >= self._limit:
                return False
            row = {"owner": str(owner), "stanza": stanza, "stamp": stamp}
            await connection.execute(insert(offline_messages).values(**row))
        return True

    async def pop_all(self, owner: JID) -> list[tuple[str, float]]:
        async with self._engine.begin() as connection:
            return await _pop_offline(connection, owner)

    async def count(self, owner: JID) -> int:
        query = select(func.count()).where(offline_messages.c.owner == str(owner))
        async with self._engine.connect() as connection:
            return int(await connection.scalar(query) or 0)


class SqlLoginStore:
    """:class:`heron.xmpp.features.presence.LoginStore`: the tables of
    :class:`SqlRosterStore` and :class:`SqlOfflineStore`, read in one transaction."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def login(self, owner: JID, *, offline: bool) -> LoginData:
        async with self._engine.begin() as connection:
            items = (await connection.execute(_items_query(owner))).all()
            pending = (await connection.execute(_pending_query(owner))).all()
            messages = await _pop_offline(connection, owner) if offline else []
        return LoginData(
            [_item(row) for row in items],
            [(parse_jid(row.contact), row.stanza) for row in pending],
            messages,
        )
