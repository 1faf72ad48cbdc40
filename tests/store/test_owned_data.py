"""Deleting an account deletes what its bare JID owns in every XMPP table, on SQLite,
PostgreSQL and MariaDB, and nothing of another account's."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from heron.store import Database, SqlAccountStore
from heron.store.archive import SqlArchiveStore
from heron.store.im import SqlOfflineStore, SqlRosterStore
from heron.store.owned import OWNED_BY_JID
from heron.store.pep import SqlPepStore
from heron.store.push import SqlPushStore
from heron.store.schema import pep_items, pep_nodes
from heron.store.xmpp_services import SqlBlocklistStore, SqlVCardStore
from heron.xmpp.archive import ArchivedItem
from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import parse_jid
from heron.xmpp.pep.model import StoredItem
from heron.xmpp.push import Registration
from tests.store.test_accounts_store import account_service

pytestmark = pytest.mark.database

ROLAND, LUCY = "roland@falcot.com", "lucy@falcot.com"


async def _fill(database: Database, owner: str, other: str) -> None:
    """One row of ``owner`` in each table, through the stores heron writes them with."""
    me, contact = parse_jid(owner), parse_jid(other)
    roster = SqlRosterStore(database)
    await roster.put(me, RosterItem(contact))
    await roster.set_pending(me, contact, "<presence type='subscribe'/>")
    await SqlOfflineStore(database).push(me, "<message/>", 1.0)
    await SqlVCardStore(database).set_vcard(owner, "<vCard xmlns='vcard-temp'/>", 1.0)
    await SqlBlocklistStore(database).block(owner, ["spam@example.org"])
    registration = Registration(parse_jid("push.example.org"), "node")
    await SqlPushStore(database).enable_push(owner, registration, 10)
    archive = SqlArchiveStore(database)
    await archive.append(me, contact, ArchivedItem(f"id-{owner}", 1.0, "<message/>"), 100)
    await archive.set_prefs(me, "{}")
    pep = SqlPepStore(database)
    await pep.create_node(owner, "urn:xmpp:avatar:data", "{}", 1.0)
    await pep.publish(owner, "urn:xmpp:avatar:data", StoredItem("a", "<x/>"), 1, 1.0)


async def _rows(database: Database, owner: str) -> dict[str, int]:
    async with database.engine.connect() as connection:
        counts = {
            table.name: (
                await connection.execute(
                    select(func.count()).select_from(table).where(table.c.owner == owner)
                )
            ).scalar_one()
            for table in OWNED_BY_JID
        }
        nodes = select(pep_nodes.c.id).where(pep_nodes.c.owner == owner)
        for table, where in (
            (pep_nodes, pep_nodes.c.owner == owner),
            (pep_items, pep_items.c.node_id.in_(nodes)),
        ):
            query = select(func.count()).select_from(table).where(where)
            counts[table.name] = (await connection.execute(query)).scalar_one()
    return counts


async def test_deleting_an_account_deletes_its_xmpp_data_and_only_its(database: Database) -> None:
    accounts = account_service(SqlAccountStore(database))
    for user in ("roland", "lucy"):
        await accounts.add(user, "falcot.com", "secret")
    await _fill(database, ROLAND, LUCY)
    await _fill(database, LUCY, ROLAND)
    assert set((await _rows(database, ROLAND)).values()) == {1}
    await accounts.remove("roland", "falcot.com")
    assert set((await _rows(database, ROLAND)).values()) == {0}
    assert set((await _rows(database, LUCY)).values()) == {1}
