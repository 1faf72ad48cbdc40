"""PEP nodes and items (XEP-0163) on SQLite, PostgreSQL and MariaDB: publication order,
max_items trimming, retraction, usage and the last items sent at login."""

from __future__ import annotations

import asyncio

import pytest

from heron.store import Database
from heron.store.memory import MemoryPepStore
from heron.store.pep import SqlPepStore
from heron.xmpp.pep.model import Limits, PepStore, StoredItem

pytestmark = pytest.mark.database

ROLAND = "roland@falcot.com"
LUCY = "lucy@falcot.com"
AVATAR = "urn:xmpp:avatar:data"


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, database: Database) -> PepStore:
    """The SQL store and its memory twin keep one contract."""
    return SqlPepStore(database) if request.param == "sql" else MemoryPepStore()


def item(item_id: str, text: str = "x") -> StoredItem:
    return StoredItem(item_id, f'<ns0:data xmlns:ns0="urn:xmpp:avatar:data">{text}</ns0:data>')


async def test_publish_keeps_order_replaces_by_id_and_trims(store: PepStore) -> None:
    await store.create_node(ROLAND, AVATAR, '{"max_items": 3}', 1.0)
    for item_id in ("a", "b", "c"):
        await store.publish(ROLAND, AVATAR, item(item_id), 3, 2.0)
    await store.publish(ROLAND, AVATAR, item("a", "new"), 3, 3.0)
    assert [i.id for i in await store.items(ROLAND, AVATAR)] == ["b", "c", "a"]
    assert (await store.items(ROLAND, AVATAR, ["a"]))[0] == item("a", "new")
    assert [i.id for i in await store.items(ROLAND, AVATAR, last=2)] == ["c", "a"]
    await store.publish(ROLAND, AVATAR, item("d"), 2, 4.0)
    assert [i.id for i in await store.items(ROLAND, AVATAR)] == ["a", "d"]
    await store.configure(ROLAND, AVATAR, '{"max_items": 1}', 1)
    assert await store.node_config(ROLAND, AVATAR) == '{"max_items": 1}'
    assert [i.id for i in await store.items(ROLAND, AVATAR)] == ["d"]


async def test_retract_delete_and_usage(store: PepStore) -> None:
    await store.create_node(ROLAND, AVATAR, "{}", 1.0)
    await store.create_node(ROLAND, "other", "{}", 1.0)
    await store.publish(ROLAND, AVATAR, item("a", "ü" * 10), 5, 2.0)
    count, size = await store.usage(ROLAND)
    assert count == 2 and size == len(item("a", "ü" * 10).payload.encode())
    assert await store.retract(ROLAND, AVATAR, "a")
    assert not await store.retract(ROLAND, AVATAR, "a")
    assert await store.delete_node(ROLAND, AVATAR)
    assert not await store.delete_node(ROLAND, AVATAR)
    assert await store.node_config(ROLAND, AVATAR) is None
    assert await store.usage(ROLAND) == (1, 0)
    assert await store.usage(LUCY) == (0, 0)


async def test_last_items_of_many_owners(store: PepStore) -> None:
    owners = [f"user{n}@falcot.com" for n in range(600)]  # more than one IN chunk
    for owner in (ROLAND, LUCY, owners[-1]):
        await store.create_node(owner, AVATAR, "{}", 1.0)
        await store.publish(owner, AVATAR, item("old"), 5, 2.0)
        await store.publish(owner, AVATAR, item("new"), 5, 3.0)
    await store.create_node(ROLAND, "empty", "{}", 1.0)
    found = await store.last_items([ROLAND, *owners], [AVATAR, "empty", "missing"])
    assert [(o, n, i.id) for o, n, _, i in found] == [
        (ROLAND, AVATAR, "new"),
        (owners[-1], AVATAR, "new"),
    ]
    assert await store.last_items([], [AVATAR]) == []


async def test_largest_item_round_trips(store: PepStore) -> None:
    await store.create_node(ROLAND, AVATAR, "{}", 1.0)
    big = item("big", "A" * (Limits().max_item_bytes - 80))
    await store.publish(ROLAND, AVATAR, big, 1, 1.0)
    assert await store.items(ROLAND, AVATAR) == [big]


async def test_concurrent_publications_stay_within_max_items(store: PepStore) -> None:
    await store.create_node(ROLAND, AVATAR, "{}", 1.0)
    await asyncio.gather(*(store.publish(ROLAND, AVATAR, item(str(n)), 2, 1.0) for n in range(6)))
    assert len(await store.items(ROLAND, AVATAR)) <= 2
