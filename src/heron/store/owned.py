"""What an account owns beyond its row: the XMPP data kept under its bare JID (roster,
offline messages, vCard, blocklist, push registrations, archive and its preferences, PEP
nodes and items), deleted in the transaction that deletes the account, so that nothing of
it outlives the account, or comes back to someone who later takes the same name.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from heron.store.schema import (
    archive,
    archive_prefs,
    offline_messages,
    pep_items,
    pep_nodes,
    roster_items,
    roster_pending,
    roster_versions,
    xmpp_blocklist,
    xmpp_push,
    xmpp_vcards,
)

__all__ = ["OWNED_BY_JID", "delete_owned"]

OWNED_BY_JID = (
    roster_items,
    roster_pending,
    roster_versions,
    offline_messages,
    xmpp_vcards,
    xmpp_blocklist,
    xmpp_push,
    archive,
    archive_prefs,
)


async def delete_owned(connection: AsyncConnection, owner: str) -> None:
    """Delete every row the bare JID ``owner`` owns, inside the caller's transaction."""
    for table in OWNED_BY_JID:
        await connection.execute(delete(table).where(table.c.owner == owner))
    nodes = select(pep_nodes.c.id).where(pep_nodes.c.owner == owner)
    await connection.execute(delete(pep_items).where(pep_items.c.node_id.in_(nodes)))
    await connection.execute(delete(pep_nodes).where(pep_nodes.c.owner == owner))
