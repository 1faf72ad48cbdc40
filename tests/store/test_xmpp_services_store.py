"""vCards (XEP-0054) and blocklists (XEP-0191) round-trip on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio

import pytest

from heron.store import Database
from heron.store.xmpp_services import SqlBlocklistStore, SqlVCardStore
from heron.xmpp.features.blocking import MAX_BLOCKED_JID
from heron.xmpp.features.vcard import MAX_VCARD_BYTES

pytestmark = pytest.mark.database

ROLAND = "roland@falcot.com"
LUCY = "lucy@falcot.com"
VCARD = '<ns0:vCard xmlns:ns0="vcard-temp"><ns0:FN>Roland Mas — ünïcode</ns0:FN></ns0:vCard>'


async def test_xep0054_vcard_round_trips_and_replaces(database: Database) -> None:
    store = SqlVCardStore(database)
    assert await store.get_vcard(ROLAND) is None
    await store.set_vcard(ROLAND, VCARD, 1_767_323_045.5)
    assert await store.get_vcard(ROLAND) == VCARD
    await store.set_vcard(ROLAND, "<vCard/>", 1_767_323_046.5)
    assert await store.get_vcard(ROLAND) == "<vCard/>"
    assert await store.get_vcard(LUCY) is None


async def test_xep0054_largest_vcard_fits(database: Database) -> None:
    store = SqlVCardStore(database)
    text = "<v>" + "é" * ((MAX_VCARD_BYTES - 7) // 2) + "</v>"
    assert MAX_VCARD_BYTES - 1 <= len(text.encode()) <= MAX_VCARD_BYTES
    await store.set_vcard(ROLAND, text, 0.0)
    assert await store.get_vcard(ROLAND) == text


async def test_xep0054_concurrent_writers_leave_one_vcard(database: Database) -> None:
    store = SqlVCardStore(database)
    texts = [f"<vCard n='{n}'/>" for n in range(8)]
    await asyncio.gather(*(store.set_vcard(ROLAND, text, float(n)) for n, text in enumerate(texts)))
    assert await store.get_vcard(ROLAND) in texts


async def test_xep0191_blocklist_keeps_order_and_ignores_repeats(database: Database) -> None:
    store = SqlBlocklistStore(database)
    assert await store.blocklist(ROLAND) == []
    await store.block(ROLAND, ["spammer@example.net", "example.org"])
    await store.block(ROLAND, ["example.org", "eve@example.com/phone"])
    await store.block(LUCY, ["example.org"])
    assert await store.blocklist(ROLAND) == [
        "spammer@example.net",
        "example.org",
        "eve@example.com/phone",
    ]
    await store.block(ROLAND, [])
    assert len(await store.blocklist(ROLAND)) == 3


async def test_xep0191_unblock_and_unblock_all_touch_one_owner(database: Database) -> None:
    store = SqlBlocklistStore(database)
    await store.block(ROLAND, ["a@example.net", "b@example.net", "c@example.net"])
    await store.block(LUCY, ["a@example.net"])
    await store.unblock(ROLAND, ["b@example.net", "never@example.net"])
    assert await store.blocklist(ROLAND) == ["a@example.net", "c@example.net"]
    await store.unblock_all(ROLAND)
    assert await store.blocklist(ROLAND) == []
    assert await store.blocklist(LUCY) == ["a@example.net"]


async def test_xep0191_longest_blocked_jid_fits(database: Database) -> None:
    store = SqlBlocklistStore(database)
    jid = "x" * (MAX_BLOCKED_JID - len("@example.net")) + "@example.net"
    await store.block("o" * 64 + "@" + "d" * 253, [jid])
    assert await store.blocklist("o" * 64 + "@" + "d" * 253) == [jid]


async def test_xep0191_concurrent_blocks_of_one_jid_keep_one_row(database: Database) -> None:
    store = SqlBlocklistStore(database)
    await asyncio.gather(*(store.block(ROLAND, ["spammer@example.net"]) for _ in range(8)))
    assert await store.blocklist(ROLAND) == ["spammer@example.net"]
