"""vCards (XEP-0054) and blocklists (XEP-0191) round-trip on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio

import pytest

from heron.store import Database
from heron.store.xmpp_services import SqlBlocklistStore, SqlVCardStore
from heron.xmpp.features.blocking import MAX_BLOCKED_JID, BlocklistStore
from heron.xmpp.features.vcard import MAX_VCARD_BYTES, VCardStore

pytestmark = pytest.mark.database

ROLAND = "roland@falcot.com"
LUCY = "lucy@falcot.com"
VCARD = '<ns0:vCard xmlns:ns0="vcard-temp"><ns0:FN>Roland Mas — ünïcode</ns0:FN></ns0:vCard>'


@pytest.fixture
def vcards(database: Database) -> VCardStore:
    return SqlVCardStore(database)


@pytest.fixture
def blocklists(database: Database) -> BlocklistStore:
    return SqlBlocklistStore(database)


async def test_xep0054_vcard_round_trips_and_replaces(vcards: VCardStore) -> None:
    assert await vcards.get_vcard(ROLAND) is None
    await vcards.set_vcard(ROLAND, VCARD, 1_767_323_045.5)
    assert await vcards.get_vcard(ROLAND) == VCARD
    await vcards.set_vcard(ROLAND, "<vCard/>", 1_767_323_046.5)
    assert await vcards.get_vcard(ROLAND) == "<vCard/>"
    assert await vcards.get_vcard(LUCY) is None


async def test_xep0054_largest_vcard_fits(vcards: VCardStore) -> None:
    text = "<v>" + "é" * ((MAX_VCARD_BYTES - 7) // 2) + "</v>"
    assert MAX_VCARD_BYTES - 1 <= len(text.encode()) <= MAX_VCARD_BYTES
    await vcards.set_vcard(ROLAND, text, 0.0)
    assert await vcards.get_vcard(ROLAND) == text


async def test_xep0054_concurrent_writers_leave_one_vcard(vcards: VCardStore) -> None:
    texts = [f"<vCard n='{n}'/>" for n in range(8)]
    await asyncio.gather(
        *(vcards.set_vcard(ROLAND, text, float(n)) for n, text in enumerate(texts))
    )
    assert await vcards.get_vcard(ROLAND) in texts


async def test_xep0191_blocklist_keeps_order_and_ignores_repeats(
    blocklists: BlocklistStore,
) -> None:
    assert await blocklists.blocklist(ROLAND) == []
    await blocklists.block(ROLAND, ["spammer@example.net", "example.org"])
    await blocklists.block(ROLAND, ["example.org", "eve@example.com/phone"])
    await blocklists.block(LUCY, ["example.org"])
    assert await blocklists.blocklist(ROLAND) == [
        "spammer@example.net",
        "example.org",
        "eve@example.com/phone",
    ]
    await blocklists.block(ROLAND, [])
    assert len(await blocklists.blocklist(ROLAND)) == 3


async def test_xep0191_unblock_and_unblock_all_touch_one_owner(blocklists: BlocklistStore) -> None:
    await blocklists.block(ROLAND, ["a@example.net", "b@example.net", "c@example.net"])
    await blocklists.block(LUCY, ["a@example.net"])
    await blocklists.unblock(ROLAND, ["b@example.net", "never@example.net"])
    assert await blocklists.blocklist(ROLAND) == ["a@example.net", "c@example.net"]
    await blocklists.unblock_all(ROLAND)
    assert await blocklists.blocklist(ROLAND) == []
    assert await blocklists.blocklist(LUCY) == ["a@example.net"]


async def test_xep0191_longest_blocked_jid_fits(blocklists: BlocklistStore) -> None:
    jid = "x" * (MAX_BLOCKED_JID - len("@example.net")) + "@example.net"
    await blocklists.block("o" * 64 + "@" + "d" * 253, [jid])
    assert await blocklists.blocklist("o" * 64 + "@" + "d" * 253) == [jid]


async def test_xep0191_concurrent_blocks_of_one_jid_keep_one_row(
    blocklists: BlocklistStore,
) -> None:
    await asyncio.gather(*(blocklists.block(ROLAND, ["spammer@example.net"]) for _ in range(8)))
    assert await blocklists.blocklist(ROLAND) == ["spammer@example.net"]
