"""Push app servers (XEP-0357) in SQL, per account, oldest first.

An enable replaces the same service and node, and counts the others against the
limit, in one transaction: two sessions enabling at once may both pass the count,
which leaves one registration over the limit, never a broken row.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, func, insert, select

from heron.store.database import Database
from heron.store.schema import xmpp_push
from heron.xmpp.jid import parse_jid
from heron.xmpp.push import Registration

__all__ = ["SqlPushStore"]


class SqlPushStore:
    """:class:`heron.xmpp.features.push.PushStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def push_services(self, owner: str) -> list[Registration]:
        query = (
            select(xmpp_push.c.service, xmpp_push.c.node, xmpp_push.c.options)
            .where(xmpp_push.c.owner == owner)
            .order_by(xmpp_push.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            Registration(
                parse_jid(service),
                node,
                tuple((str(var), str(value)) for var, value in json.loads(options)),
            )
            for service, node, options in rows
        ]

    async def enable_push(self, owner: str, registration: Registration, limit: int) -> bool:
        mine = xmpp_push.c.owner == owner
        same = mine & (xmpp_push.c.service == str(registration.service))
        same &= xmpp_push.c.node == registration.node
        count = select(func.count()).select_from(xmpp_push).where(mine & ~same)
        row = {
            "owner": owner,
            "service": str(registration.service),
            "node": registration.node,
            "options": json.dumps(registration.options),
        }
        async with self._engine.begin() as connection:
            if (await connection.scalar(count) or 0) >= limit:
                return False
            await connection.execute(delete(xmpp_push).where(same))
            await connection.execute(insert(xmpp_push).values(row))
        return True

    async def disable_push(self, owner: str, service: str, node: str | None) -> int:
        where = (xmpp_push.c.owner == owner) & (xmpp_push.c.service == service)
        if node is not None:
            where &= xmpp_push.c.node == node
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(xmpp_push).where(where))
        return result.rowcount
