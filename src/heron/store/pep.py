"""PEP nodes and items (XEP-0163) in SQL: :class:`heron.xmpp.pep.model.PepStore`.

Publication order is the items' row id: republishing an id deletes its row and inserts a
new one, so "the newest N" is an ORDER BY on the key and trimming a node to its
``max_items`` is one DELETE. Each change runs in one transaction, so two sessions of one
account publishing at once never leave a node above its limit (the node's row is locked
``FOR UPDATE``; SQLite has one writer at a time anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from heron.store.database import Database
from heron.store.schema import pep_items, pep_nodes
from heron.xmpp.pep.model import StoredItem

__all__ = ["SqlPepStore"]

_CHUNK = 500  # owners per IN list: far under every backend's parameter limit


async def _node_id(connection: AsyncConnection, owner: str, node: str) -> int | None:
    """The node's key, its row locked until the transaction ends: changes to one node
    run one at a time, so each trims what the previous one left."""
    query = (
        select(pep_nodes.c.id)
        .where(pep_nodes.c.owner == owner, pep_nodes.c.name == node)
        .with_for_update()
    )
    value = await connection.scalar(query)
    return None if value is None else int(value)


async def _trim(connection: AsyncConnection, node_id: int, keep: int) -> None:
    """Delete all but the ``keep`` newest items of the node."""
    newest = (
        select(pep_items.c.id)
        .where(pep_items.c.node_id == node_id)
        .order_by(pep_items.c.id.desc())
        .limit(keep)
    )
    kept = [int(row) for row in await connection.scalars(newest)]
    statement = delete(pep_items).where(pep_items.c.node_id == node_id)
    if kept:
        statement = statement.where(pep_items.c.id.not_in(kept))
    await connection.execute(statement)


class SqlPepStore:
    """:class:`heron.xmpp.pep.model.PepStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def node_config(self, owner: str, node: str) -> str | None:
        query = select(pep_nodes.c.config).where(
            pep_nodes.c.owner == owner, pep_nodes.c.name == node
        )
        async with self._engine.connect() as connection:
            value = await connection.scalar(query)
        return None if value is None else str(value)

    async def usage(self, owner: str) -> tuple[int, int]:
        nodes = select(func.count()).select_from(pep_nodes).where(pep_nodes.c.owner == owner)
        size = (
            select(func.coalesce(func.sum(pep_items.c.size), 0))
            .select_from(pep_items.join(pep_nodes, pep_items.c.node_id == pep_nodes.c.id))
            .where(pep_nodes.c.owner == owner)
        )
        # One round trip: this runs before every publication.
        query = select(nodes.scalar_subquery(), size.scalar_subquery())
        async with self._engine.connect() as connection:
            count, total = (await connection.execute(query)).one()
        return int(count or 0), int(total or 0)

    async def create_node(self, owner: str, node: str, config: str, now: float) -> None:
        row = {"owner": owner, "name": node, "config": config, "created_at": now}
        async with self._engine.begin() as connection:
            await connection.execute(insert(pep_nodes).values(row))

    async def configure(self, owner: str, node: str, config: str, max_items: int) -> None:
        async with self._engine.begin() as connection:
            node_id = await _node_id(connection, owner, node)
            if node_id is None:
                return
            await connection.execute(
                update(pep_nodes).where(pep_nodes.c.id == node_id).values(config=config)
            )
            await _trim(connection, node_id, max_items)

    async def delete_node(self, owner: str, node: str) -> bool:
        async with self._engine.begin() as connection:
            node_id = await _node_id(connection, owner, node)
            if node_id is None:
                return False
            await connection.execute(delete(pep_items).where(pep_items.c.node_id == node_id))
            await connection.execute(delete(pep_nodes).where(pep_nodes.c.id == node_id))
        return True

    async def publish(
        self, owner: str, node: str, item: StoredItem, max_items: int, now: float
    ) -> None:
        row = {
            "item_id": item.id,
            "payload": item.payload,
            "size": len(item.payload.encode()),
            "published_at": now,
        }
        async with self._engine.begin() as connection:
            node_id = await _node_id(connection, owner, node)
            if node_id is None:
                return
            await connection.execute(
                delete(pep_items).where(
                    pep_items.c.node_id == node_id, pep_items.c.item_id == item.id
                )
            )
            await connection.execute(insert(pep_items).values(node_id=node_id, **row))
            await _trim(connection, node_id, max_items)

    async def retract(self, owner: str, node: str, item_id: str) -> bool:
        async with self._engine.begin() as connection:
            node_id = await _node_id(connection, owner, node)
            if node_id is None:
                return False
            result = await connection.execute(
                delete(pep_items).where(
                    pep_items.c.node_id == node_id, pep_items.c.item_id == item_id
                )
            )
        return bool(result.rowcount)

    async def items(
        self, owner: str, node: str, ids: Sequence[str] = (), last: int | None = None
    ) -> list[StoredItem]:
        query = (
            select(pep_items.c.item_id, pep_items.c.payload)
            .select_from(pep_items.join(pep_nodes, pep_items.c.node_id == pep_nodes.c.id))
            .where(pep_nodes.c.owner == owner, pep_nodes.c.name == node)
            .order_by(pep_items.c.id.desc())
        )
        if ids:
            query = query.where(pep_items.c.item_id.in_(list(ids)))
        elif last is not None:
            query = query.limit(last)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [StoredItem(str(item_id), str(payload)) for item_id, payload in reversed(rows)]

    async def last_items(
        self, owners: Sequence[str], nodes: Sequence[str]
    ) -> list[tuple[str, str, str, StoredItem]]:
        if not owners or not nodes:
            return []
        newest = (
            select(func.max(pep_items.c.id))
            .where(pep_items.c.node_id == pep_nodes.c.id)
            .correlate(pep_nodes)
            .scalar_subquery()
        )
        found: list[tuple[str, str, str, StoredItem]] = []
        async with self._engine.connect() as connection:
            for start in range(0, len(owners), _CHUNK):
                query = (
                    select(
                        pep_nodes.c.owner,
                        pep_nodes.c.name,
                        pep_nodes.c.config,
                        pep_items.c.item_id,
                        pep_items.c.payload,
                    )
                    .select_from(
                        pep_nodes.join(
                            pep_items,
                            and_(pep_items.c.node_id == pep_nodes.c.id, pep_items.c.id == newest),
                        )
                    )
                    .where(
                        pep_nodes.c.owner.in_(list(owners[start : start + _CHUNK])),
                        pep_nodes.c.name.in_(list(nodes)),
                    )
                    .order_by(pep_nodes.c.owner, pep_nodes.c.name)
                )
                for owner, name, config, item_id, payload in await connection.execute(query):
                    item = StoredItem(str(item_id), str(payload))
                    found.append((str(owner), str(name), str(config), item))
        return found
