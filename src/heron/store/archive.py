"""Message archives (XEP-0313) in SQL: one table for every owner, accounts and rooms.

Items are ordered by ``seq``, the insertion order, which is the archive's order whatever
the clock did. The ids clients see are random (``heron.xmpp.features.mam``), and every
lookup of one is confined to its owner's rows: an id from someone else's archive is as
unknown as a made-up one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from heron.errors import StoreError
from heron.store.database import Database, database_errors
from heron.store.schema import archive, archive_prefs
from heron.xmpp.archive import ArchivedItem, Page, Query
from heron.xmpp.jid import JID

__all__ = ["SqlArchiveStore"]

_ANY = 0
_GROUP = 200
"""Messages committed in one transaction at most."""
_COUNTED = 100_000
"""Owners whose item count is remembered; past it, all are counted afresh."""


async def _seq(connection: AsyncConnection, owner: str, id_: str) -> int | None:
    query = select(archive.c.seq).where(archive.c.owner == owner, archive.c.id == id_)
    found = await connection.scalar(query)
    return None if found is None else int(found)


class SqlArchiveStore:
    """:class:`heron.xmpp.features.mam.ArchiveStore` on SQLite, PostgreSQL or MariaDB/MySQL.

    Writes are committed in groups: appends that arrive while one transaction runs wait
    and go together in the next, in the order they came. Every message a busy server
    archives then costs a row, not a transaction; on SQLite, whose writers take turns,
    concurrent appends would otherwise spin on the database lock (and past
    ``busy_timeout``, fail).
    """

    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self._waiting: list[tuple[dict[str, Any], int, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._counts: dict[str, int] = {}
        """Items per owner, once counted, so that each write need not count them again;
        forgotten when anything else removes items (expiry, a room gone)."""

    async def append(self, owner: JID, with_: JID, item: ArchivedItem, limit: int) -> None:
        row = {
            "owner": str(owner),
            "id": item.id,
            "with_jid": str(with_.bare),
            "with_resource": with_.resource,
            "stamp": item.stamp,
            "stanza": item.stanza,
        }
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((row, limit, written))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        await written

    async def _write(self) -> None:
        """Commit what waits, a group at a time, until nothing does."""
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:_GROUP], self._waiting[_GROUP:]
                try:
                    with database_errors(f"archiving {len(group)} message(s)"):
                        await self._commit(group)
                except StoreError as error:
                    self._counts.clear()
                    for _, _, written in group:
                        if not written.done():
                            written.set_exception(error)
                    continue
                for _, _, written in group:
                    if not written.done():
                        written.set_result(None)
        finally:
            self._writer = None

    async def _commit(self, group: list[tuple[dict[str, Any], int, asyncio.Future[None]]]) -> None:
        limits = {row["owner"]: limit for row, limit, _ in group if limit != _ANY}
        added = Counter(row["owner"] for row, _, _ in group)
        counts = self._counts
        if len(counts) > _COUNTED:
            counts.clear()
        async with self._engine.begin() as connection:
            await connection.execute(insert(archive), [row for row, _, _ in group])
            for owner, limit in limits.items():
                mine = archive.c.owner == owner
                if owner in counts:
                    count = counts[owner] + added[owner]
                else:
                    count = int(await connection.scalar(select(func.count()).where(mine)) or 0)
                if count > limit:
                    oldest = select(archive.c.seq).where(mine).order_by(archive.c.seq)
                    seqs = (await connection.scalars(oldest.limit(count - limit))).all()
                    await connection.execute(delete(archive).where(archive.c.seq.in_(seqs)))
                    count = limit
                counts[owner] = count

    async def query(self, owner: JID, query: Query) -> Page | None:
        conditions: list[ColumnElement[bool]] = [archive.c.owner == str(owner)]
        if query.with_ is not None:
            conditions.append(archive.c.with_jid == str(query.with_.bare))
            if query.with_.resource:
                conditions.append(archive.c.with_resource == query.with_.resource)
        if query.start is not None:
            conditions.append(archive.c.stamp >= query.start)
        if query.end is not None:
            conditions.append(archive.c.stamp <= query.end)
        if query.ids:
            conditions.append(archive.c.id.in_(query.ids))
        with database_errors(f"reading the archive of {owner}"):
            return await self._query(str(owner), query, conditions)

    async def _query(
        self, owner: str, query: Query, conditions: list[ColumnElement[bool]]
    ) -> Page | None:
        async with self._engine.connect() as connection:
            count = await connection.scalar(select(func.count()).where(*conditions))
            for ids, after in ((query.after, True), (query.before, False)):
                for id_ in ids:
                    seq = await _seq(connection, owner, id_)
                    if seq is None:
                        return None
                    conditions.append(archive.c.seq > seq if after else archive.c.seq < seq)
            order = archive.c.seq.desc() if query.last else archive.c.seq.asc()
            columns = (archive.c.id, archive.c.stamp, archive.c.stanza)
            statement = select(*columns).where(*conditions).order_by(order)
            rows: list[Any] = list((await connection.execute(statement.limit(query.max + 1))).all())
        complete = len(rows) <= query.max
        rows = rows[: query.max]
        if query.last:
            rows.reverse()
        items = [ArchivedItem(row.id, float(row.stamp), row.stanza) for row in rows]
        return Page(items, complete, int(count or 0))

    async def expire(self, before: float) -> int:
        with database_errors("expiring archived messages"):
            async with self._engine.begin() as connection:
                done = await connection.execute(delete(archive).where(archive.c.stamp < before))
        self._counts.clear()  # after: a count taken meanwhile may hold the expired rows
        return int(done.rowcount or 0)

    async def forget(self, owner: JID) -> None:
        with database_errors(f"removing the archive of {owner}"):
            async with self._engine.begin() as connection:
                await connection.execute(delete(archive).where(archive.c.owner == str(owner)))
        self._counts.pop(str(owner), None)

    async def prefs(self, owner: JID) -> str | None:
        query = select(archive_prefs.c.prefs).where(archive_prefs.c.owner == str(owner))
        async with self._engine.connect() as connection:
            found = await connection.scalar(query)
        return None if found is None else str(found)

    async def set_prefs(self, owner: JID, prefs: str) -> None:
        mine = archive_prefs.c.owner == str(owner)
        async with self._engine.begin() as connection:
            done = await connection.execute(update(archive_prefs).where(mine).values(prefs=prefs))
            if done.rowcount:
                return
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(archive_prefs).values(owner=str(owner), prefs=prefs)
                )
        except IntegrityError:
            async with self._engine.begin() as connection:
                await connection.execute(update(archive_prefs).where(mine).values(prefs=prefs))
