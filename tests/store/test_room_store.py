"""Persistent group-chat rooms round-trip on SQLite, PostgreSQL and MariaDB alike
(what Prosody keeps for rooms configured persistent, XEP-0045 §10.2).
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from heron.store import Database
from heron.store.rooms import SqlRoomStore
from heron.store.schema import muc_rooms
from heron.xmpp.jid import parse_jid
from heron.xmpp.muc import Affiliated, Affiliation, RoomConfig, RoomRecord, RoomStore, Whois

pytestmark = pytest.mark.database

SERVICE = "conference.falcot.com"
FULL = RoomRecord(
    name="staff",
    config=RoomConfig(
        name="Falcot staff — ünïcode",
        description="d" * 1000,
        persistent=True,
        public=False,
        members_only=True,
        password="s3cret",
        moderated=True,
        whois=Whois.ANYONE,
        max_users=30,
        change_subject=True,
    ),
    affiliations=(
        Affiliated(parse_jid("lucy@falcot.com"), Affiliation.MEMBER),
        Affiliated(parse_jid("mallory@example.org"), Affiliation.OUTCAST, "spam " * 100),
        Affiliated(parse_jid("roland@falcot.com"), Affiliation.OWNER),
    ),
    subject="Rota for März",
    subject_nick="roland",
    created_at=1_767_323_045.25,
)
PLAIN = RoomRecord(name="lobby", config=RoomConfig(persistent=True), created_at=1_767_323_000.5)


@pytest.fixture
def store(database: Database) -> RoomStore:
    return SqlRoomStore(database)


async def test_rooms_round_trip_with_every_field(store: RoomStore) -> None:
    await store.save(SERVICE, FULL)
    await store.save(SERVICE, PLAIN)
    assert await store.load(SERVICE) == [PLAIN, FULL]
    assert await store.load("conference.example.org") == []


async def test_save_replaces_configuration_and_affiliations(store: RoomStore) -> None:
    await store.save(SERVICE, FULL)
    changed = RoomRecord(
        name="staff",
        config=RoomConfig(persistent=True, name="Renamed"),
        affiliations=(Affiliated(parse_jid("raphael@falcot.com"), Affiliation.ADMIN),),
        created_at=FULL.created_at,
    )
    await store.save(SERVICE, changed)
    assert await store.load(SERVICE) == [changed]


async def test_services_keep_their_own_rooms(store: RoomStore) -> None:
    await store.save(SERVICE, FULL)
    await store.save("conference.example.org", FULL)
    await store.delete(SERVICE, "staff")
    assert await store.load(SERVICE) == []
    assert await store.load("conference.example.org") == [FULL]


async def test_delete_forgets_room_and_affiliations(store: RoomStore) -> None:
    await store.save(SERVICE, FULL)
    await store.delete(SERVICE, "staff")
    await store.delete(SERVICE, "never-saved")
    assert await store.load(SERVICE) == []
    await store.save(SERVICE, PLAIN)
    await store.save(SERVICE, FULL)
    assert (await store.load(SERVICE))[1].affiliations == FULL.affiliations


async def test_damaged_configuration_falls_back_to_defaults(database: Database) -> None:
    row = {
        "service": SERVICE,
        "name": "odd",
        "config": '{"persistent": true, "max_users": "lots", "whois": "everyone"}',
        "created_at": 0.0,
        "updated_at": 0.0,
    }
    async with database.engine.begin() as connection:
        await connection.execute(insert(muc_rooms).values(**row))
    (record,) = await SqlRoomStore(database).load(SERVICE)
    assert record.config == RoomConfig(persistent=True)


async def test_rooms_survive_a_restart(database_url: str) -> None:
    first = Database(database_url)
    await first.open()
    await SqlRoomStore(first).save(SERVICE, FULL)
    await first.close()
    second = Database(database_url)
    await second.open()
    try:
        assert await SqlRoomStore(second).load(SERVICE) == [FULL]
    finally:
        await second.close()
