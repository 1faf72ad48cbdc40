"""Message archives (XEP-0313) on SQLite, PostgreSQL and MariaDB: order, filters, paging
from either end, limits, expiry, preferences, and one owner's ids useless to another."""

from __future__ import annotations

import asyncio

import pytest

from heron.errors import StoreError
from heron.store import Database
from heron.store.archive import SqlArchiveStore
from heron.xmpp.archive import ArchivedItem, Page, Prefs, Query
from heron.xmpp.features.mam import ArchiveStore
from heron.xmpp.jid import parse_jid

pytestmark = pytest.mark.database

ROLAND = parse_jid("roland@falcot.com")
LUCY = parse_jid("lucy@falcot.com")
CARLA = parse_jid("carla@example.net/phone")
BODY = '<message xmlns="jabber:client"><body>{}</body></message>'


@pytest.fixture
def store(database: Database) -> ArchiveStore:
    return SqlArchiveStore(database)


async def fill(store: ArchiveStore, count: int, *, limit: int = 0) -> list[str]:
    """``count`` messages in Roland's archive, alternately with Lucy and Carla, one second
    apart from t=1000; their ids in order."""
    ids = []
    for n in range(count):
        other = LUCY if n % 2 == 0 else CARLA
        item = ArchivedItem(f"id-{n:03}", 1000.0 + n, BODY.format(f"m{n} — ü"))
        await store.append(ROLAND, other, item, limit)
        ids.append(item.id)
    return ids


def ids_of(page: Page | None) -> list[str]:
    assert page is not None
    return [item.id for item in page.items]


async def test_xep0313_items_come_back_oldest_first_with_their_text(store: ArchiveStore) -> None:
    await fill(store, 3)
    page = await store.query(ROLAND, Query(max=10))
    assert page is not None
    assert (ids_of(page), page.complete, page.count) == (["id-000", "id-001", "id-002"], True, 3)
    assert page.items[0].stanza == BODY.format("m0 — ü")
    assert page.items[2].stamp == 1002.0


async def test_xep0059_pages_forward_and_from_the_end(store: ArchiveStore) -> None:
    ids = await fill(store, 7)
    first = await store.query(ROLAND, Query(max=3))
    assert ids_of(first) == ids[:3] and first is not None and not first.complete
    second = await store.query(ROLAND, Query(max=3, after=(ids[2],)))
    assert ids_of(second) == ids[3:6]
    third = await store.query(ROLAND, Query(max=3, after=(ids[5],)))
    assert ids_of(third) == ids[6:] and third is not None and third.complete
    last = await store.query(ROLAND, Query(max=3, last=True))
    assert ids_of(last) == ids[4:] and last is not None and not last.complete
    before = await store.query(ROLAND, Query(max=3, last=True, before=(ids[4],)))
    assert ids_of(before) == ids[1:4]
    oldest = await store.query(ROLAND, Query(max=3, last=True, before=(ids[1],)))
    assert ids_of(oldest) == ids[:1] and oldest is not None and oldest.complete
    assert oldest.count == 7  # XEP-0059 §2.1: the size of the whole set, not the page


async def test_xep0313_filters_by_with_time_and_ids(store: ArchiveStore) -> None:
    ids = await fill(store, 6)
    assert ids_of(await store.query(ROLAND, Query(with_=LUCY))) == ids[0::2]
    assert ids_of(await store.query(ROLAND, Query(with_=CARLA.bare))) == ids[1::2]
    assert ids_of(await store.query(ROLAND, Query(with_=CARLA))) == ids[1::2]
    other_device = parse_jid("carla@example.net/desk")
    assert ids_of(await store.query(ROLAND, Query(with_=other_device))) == []
    assert ids_of(await store.query(ROLAND, Query(start=1002.0, end=1004.0))) == ids[2:5]
    wanted = Query(ids=(ids[5], ids[1], "nonexistent"))
    assert ids_of(await store.query(ROLAND, wanted)) == [ids[1], ids[5]]


async def test_xep0313_unknown_paging_id_is_none(store: ArchiveStore) -> None:
    await fill(store, 2)
    assert await store.query(ROLAND, Query(after=("made-up",))) is None
    assert await store.query(ROLAND, Query(before=("made-up",), last=True)) is None


async def test_another_owners_id_is_unknown_and_its_items_invisible(store: ArchiveStore) -> None:
    ids = await fill(store, 3)
    await store.append(LUCY, ROLAND, ArchivedItem("lucy-1", 2000.0, BODY.format("hers")), 0)
    assert ids_of(await store.query(LUCY, Query())) == ["lucy-1"]
    assert await store.query(LUCY, Query(after=(ids[0],))) is None
    assert ids_of(await store.query(LUCY, Query(ids=tuple(ids)))) == []
    assert ids_of(await store.query(ROLAND, Query(ids=("lucy-1",)))) == []


async def test_limit_drops_the_oldest(store: ArchiveStore) -> None:
    ids = await fill(store, 6, limit=4)
    assert ids_of(await store.query(ROLAND, Query())) == ids[2:]


async def test_expiry_removes_what_is_older_everywhere(store: ArchiveStore) -> None:
    ids = await fill(store, 5)
    await store.append(LUCY, ROLAND, ArchivedItem("lucy-1", 1001.5, BODY.format("x")), 0)
    assert await store.expire(1002.0) == 3
    assert ids_of(await store.query(ROLAND, Query())) == ids[2:]
    assert ids_of(await store.query(LUCY, Query())) == []


async def test_forget_removes_one_archive(store: ArchiveStore) -> None:
    await fill(store, 2)
    await store.append(LUCY, ROLAND, ArchivedItem("lucy-1", 1.0, BODY.format("x")), 0)
    await store.forget(ROLAND)
    assert ids_of(await store.query(ROLAND, Query())) == []
    assert ids_of(await store.query(LUCY, Query())) == ["lucy-1"]


async def test_xep0313_prefs_round_trip_and_replace(store: ArchiveStore) -> None:
    assert await store.prefs(ROLAND) is None
    first = Prefs(always=frozenset({LUCY}), never=frozenset({CARLA.bare}))
    await store.set_prefs(ROLAND, first.to_json())
    await store.set_prefs(ROLAND, first.to_json())  # the same again: no duplicate row
    text = await store.prefs(ROLAND)
    assert text is not None and Prefs.from_json(text) == first
    await store.set_prefs(ROLAND, Prefs().to_json())
    assert await store.prefs(ROLAND) == Prefs().to_json()
    assert await store.prefs(LUCY) is None


async def test_largest_stanza_fits(store: ArchiveStore) -> None:
    text = BODY.format("é" * 131_000)  # xmpp.max_stanza_size is 256 KiB by default
    await store.append(ROLAND, LUCY, ArchivedItem("big", 1.0, text), 0)
    page = await store.query(ROLAND, Query())
    assert page is not None and page.items[0].stanza == text


async def test_concurrent_appends_keep_their_order_and_the_limit(store: ArchiveStore) -> None:
    items = [ArchivedItem(f"c{n:03}", float(n), BODY.format(n)) for n in range(300)]
    await asyncio.gather(*(store.append(ROLAND, LUCY, item, 250) for item in items))
    page = await store.query(ROLAND, Query(max=1000))
    assert ids_of(page) == [item.id for item in items[50:]]


async def test_a_failed_write_raises_store_error(database: Database) -> None:
    store = SqlArchiveStore(database)
    item = ArchivedItem("same", 1.0, BODY.format("x"))
    await store.append(ROLAND, LUCY, item, 0)
    with pytest.raises(StoreError):
        await store.append(ROLAND, LUCY, item, 0)  # (owner, id) is unique
    await store.append(ROLAND, LUCY, ArchivedItem("next", 2.0, BODY.format("y")), 0)
    assert ids_of(await store.query(ROLAND, Query())) == ["same", "next"]


async def test_limit_counts_right_after_expiry_and_forget(store: ArchiveStore) -> None:
    await fill(store, 4, limit=4)
    assert await store.expire(1002.0) == 2
    for n in range(4):
        await store.append(ROLAND, LUCY, ArchivedItem(f"late{n}", 2000.0 + n, BODY), 4)
    assert ids_of(await store.query(ROLAND, Query())) == ["late0", "late1", "late2", "late3"]
    await store.forget(ROLAND)
    await store.append(ROLAND, LUCY, ArchivedItem("again", 3000.0, BODY), 4)
    assert ids_of(await store.query(ROLAND, Query())) == ["again"]
