"""Rosters, pending requests and offline messages round-trip on SQLite, PostgreSQL
and MariaDB alike (RFC 6121, XEP-0160).
"""

from __future__ import annotations

import asyncio

import pytest

from heron.store import Database
from heron.store.im import SqlLoginStore, SqlOfflineStore, SqlRosterStore
from heron.xmpp.features.offline import OfflineStore
from heron.xmpp.features.presence import LoginData, LoginStore, SeparateReads
from heron.xmpp.features.roster import RosterItem, RosterStore
from heron.xmpp.jid import parse_jid
from heron.xmpp.subscription import Subscription

pytestmark = pytest.mark.database

ROLAND = parse_jid("roland@falcot.com")
LUCY = parse_jid("lucy@falcot.com")
RAPHAEL = parse_jid("raphael@debian.org")

FULL = RosterItem(
    LUCY,
    name='Lucy — ünïcode "quoted" & <tagged>',
    subscription=Subscription.FROM,
    ask=True,
    approved=True,
    groups=("Friends", "Équipe", "x" * 255),
)


@pytest.fixture
def roster(database: Database) -> RosterStore:
    return SqlRosterStore(database)


@pytest.fixture
def offline(database: Database) -> OfflineStore:
    return SqlOfflineStore(database, limit=3)


async def test_roster_items_round_trip_with_every_field(roster: RosterStore) -> None:
    plain = RosterItem(RAPHAEL)
    assert await roster.put(ROLAND, FULL) == 1
    assert await roster.put(ROLAND, plain) == 2
    assert await roster.items(ROLAND) == [FULL, plain]
    assert await roster.get(ROLAND, LUCY) == FULL
    assert await roster.get(LUCY, ROLAND) is None
    assert (await roster.count(ROLAND), await roster.count(LUCY)) == (2, 0)


async def test_every_change_bumps_the_owners_version(roster: RosterStore) -> None:
    assert await roster.version(ROLAND) == 0
    await roster.put(ROLAND, FULL)
    assert await roster.put(ROLAND, RosterItem(LUCY, name="L")) == 2
    assert await roster.get(ROLAND, LUCY) == RosterItem(LUCY, name="L")
    assert await roster.remove(ROLAND, LUCY) == 3
    assert await roster.remove(ROLAND, LUCY) is None
    assert await roster.version(ROLAND) == 3
    assert await roster.version(LUCY) == 0
    assert await roster.items(ROLAND) == []


async def test_concurrent_first_writes_keep_every_version(roster: RosterStore) -> None:
    contacts = [parse_jid(f"c{n}@falcot.com") for n in range(6)]
    versions = await asyncio.gather(*(roster.put(ROLAND, RosterItem(c)) for c in contacts))
    assert sorted(versions) == list(range(1, 7))
    assert await roster.count(ROLAND) == 6


async def test_pending_requests_round_trip_and_go_with_the_item(roster: RosterStore) -> None:
    request = '<presence xmlns="jabber:client" type="subscribe"><status>é</status></presence>'
    await roster.set_pending(ROLAND, LUCY, request)
    await roster.set_pending(ROLAND, LUCY, request)  # a repeated request is one
    await roster.set_pending(ROLAND, RAPHAEL, "<presence/>")
    assert await roster.pending(ROLAND) == [(LUCY, request), (RAPHAEL, "<presence/>")]
    assert await roster.has_pending(ROLAND, LUCY)
    await roster.clear_pending(ROLAND, RAPHAEL)
    assert not await roster.has_pending(ROLAND, RAPHAEL)
    await roster.put(ROLAND, RosterItem(LUCY))
    await roster.remove(ROLAND, LUCY)
    assert await roster.pending(ROLAND) == []


async def test_offline_messages_pop_in_order_and_respect_the_cap(offline: OfflineStore) -> None:
    large = "<message><body>" + "é" * 100_000 + "</body></message>"
    assert await offline.push(LUCY, "<message>1</message>", 1_767_323_045.5)
    assert await offline.push(LUCY, large, 1_767_323_046.0)
    assert await offline.push(LUCY, "<message>3</message>", 1_767_323_047.0)
    assert not await offline.push(LUCY, "<message>4</message>", 1_767_323_048.0)
    assert await offline.push(ROLAND, "<message>r</message>", 1.0)
    assert await offline.count(LUCY) == 3
    assert await offline.pop_all(LUCY) == [
        ("<message>1</message>", 1_767_323_045.5),
        (large, 1_767_323_046.0),
        ("<message>3</message>", 1_767_323_047.0),
    ]
    assert await offline.pop_all(LUCY) == []
    assert await offline.count(ROLAND) == 1


@pytest.mark.parametrize("separate", [False, True], ids=["one-transaction", "separate-reads"])
async def test_a_login_reads_roster_pending_and_offline_messages_at_once(
    database: Database, separate: bool
) -> None:
    roster, offline = SqlRosterStore(database), SqlOfflineStore(database)
    login: LoginStore = SeparateReads(roster, offline) if separate else SqlLoginStore(database)
    await roster.put(ROLAND, FULL)
    await roster.set_pending(ROLAND, RAPHAEL, "<presence type='subscribe'/>")
    await offline.push(ROLAND, "<message>1</message>", 1.5)
    await offline.push(LUCY, "<message>other</message>", 2.0)
    assert await login.login(ROLAND, offline=False) == LoginData(
        [FULL], [(RAPHAEL, "<presence type='subscribe'/>")], []
    )
    assert await offline.count(ROLAND) == 1  # not asked for, so kept
    first = await login.login(ROLAND, offline=True)
    assert first.offline == [("<message>1</message>", 1.5)]
    assert (await login.login(ROLAND, offline=True)).offline == []
    assert await offline.count(LUCY) == 1
