"""vCards (XEP-0054) and blocklists (XEP-0191) in SQL, what Prosody keeps per user.

Writes are single upserts, so two sessions of one user saving at once leave
one consistent row set instead of a unique-key error: ``ON CONFLICT`` on
SQLite and PostgreSQL, ``ON DUPLICATE KEY`` on MariaDB/MySQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from heron.store.database import Database
from heron.store.schema import xmpp_blocklist, xmpp_vcards

__all__ = ["SqlBlocklistStore", "SqlVCardStore"]


class SqlVCardStore:
    """:class:`heron.xmpp.features.vcard.VCardStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self._backend = database.backend

    async def get_vcard(self, owner: str) -> str | None:
        query = select(xmpp_vcards.c.vcard).where(xmpp_vcards.c.owner == owner)
        async with self._engine.connect() as connection:
            value = await connection.scalar(query)
        return None if value is None else str(value)

    async def set_vcard(self, owner: str, vcard: str, now: float) -> None:
        row = {"owner": owner, "vcard": vcard, "updated_at": now}
        changes = {"vcard": vcard, "updated_at": now}
        statement: Any
        if self._backend == "mysql":
            statement = mysql_insert(xmpp_vcards).values(row).on_duplicate_key_update(changes)
        else:
            dialect = postgresql_insert if self._backend == "postgresql" else sqlite_insert
            statement = (
                dialect(xmpp_vcards)
                .values(row)
                .on_conflict_do_update(index_elements=["owner"], set_=changes)
            )
        async with self._engine.begin() as connection:
            await connection.execute(statement)


class SqlBlocklistStore:
    """:class:`heron.xmpp.features.blocking.BlocklistStore` on SQLite, PostgreSQL or MariaDB."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self._backend = database.backend

    async def blocklist(self, owner: str) -> list[str]:
        query = (
            select(xmpp_blocklist.c.jid)
            .where(xmpp_blocklist.c.owner == owner)
            .order_by(xmpp_blocklist.c.id)
        )
        async with self._engine.connect() as connection:
            return [str(jid) for jid in await connection.scalars(query)]

    async def block(self, owner: str, jids: Sequence[str]) -> None:
        if not jids:
            return
        rows = [{"owner": owner, "jid": jid} for jid in jids]
        statement: Any
        if self._backend == "mysql":
            table = mysql_insert(xmpp_blocklist)
            statement = table.on_duplicate_key_update(jid=table.inserted.jid)
        else:
            dialect = postgresql_insert if self._backend == "postgresql" else sqlite_insert
            statement = dialect(xmpp_blocklist).on_conflict_do_nothing(
                index_elements=["owner", "jid"]
            )
        async with self._engine.begin() as connection:
            await connection.execute(statement, rows)

    async def unblock(self, owner: str, jids: Sequence[str]) -> None:
        statement = delete(xmpp_blocklist).where(
            xmpp_blocklist.c.owner == owner, xmpp_blocklist.c.jid.in_(list(jids))
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def unblock_all(self, owner: str) -> None:
        statement = delete(xmpp_blocklist).where(xmpp_blocklist.c.owner == owner)
        async with self._engine.begin() as connection:
            await connection.execute(statement)
