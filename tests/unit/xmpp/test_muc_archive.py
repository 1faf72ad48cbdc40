"""A room's own archive (XEP-0313 §5): groupchat messages kept with the id occupants see
(XEP-0359), queries by whom the room lets in, and no archive outliving its room."""

from __future__ import annotations

import itertools

import pytest

from heron.store.memory import MemoryArchiveStore, MemoryRoomStore
from heron.xmpp.archive import MAM, SID
from heron.xmpp.features.mam import ArchiveSettings
from heron.xmpp.muc import MucService
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.test_muc_service import (
    LUCY,
    ROLAND,
    ROOM,
    SERVICE,
    STRANGER,
    Client,
    FakeRouter,
    condition,
)


@pytest.fixture
def archive() -> MemoryArchiveStore:
    return MemoryArchiveStore()


@pytest.fixture
def router() -> FakeRouter:
    return FakeRouter()


@pytest.fixture
def service(archive: MemoryArchiveStore, router: FakeRouter) -> MucService:
    counter = itertools.count(1)
    return MucService(
        SERVICE,
        router,
        MemoryRoomStore(),
        admins=[],
        local_hosts=["falcot.com"],
        clock=lambda: 1_767_323_045.0,
        ids=lambda: f"id{next(counter)}",
        archive=archive,
        archive_settings=ArchiveSettings(page=10, limit=100),
    )


async def open_room(service: MucService, router: FakeRouter, **config: str) -> Client:
    roland = Client(service, ROLAND)
    await roland.join()
    await roland.configure(**config)
    router.take()
    return roland


async def say(client: Client, body: str) -> None:
    await client.send(
        f'<message from="{{me}}" to="{ROOM}" type="groupchat"><body>{body}</body></message>'
    )


async def ask(client: Client, router: FakeRouter) -> list[str] | str:
    """The bodies ``client`` gets from a query of the room's archive, or the error condition."""
    await client.send(
        f'<iq from="{{me}}" to="{ROOM}" type="set" id="q"><query xmlns="{MAM}"/></iq>'
    )
    sent = router.take(client.jid)
    answer = sent.pop()
    if answer.get("type") == "error":
        return condition(answer)
    return [m.findtext(f".//{qname(NS.CLIENT, 'body')}") or "" for m in sent]


async def test_xep0313_5_groupchat_is_archived_with_the_id_occupants_see(
    service: MucService, router: FakeRouter, archive: MemoryArchiveStore
) -> None:
    roland = await open_room(service, router)
    await say(roland, "hello")
    (echo,) = router.take(ROLAND)
    stanza_id = echo.find(qname(SID, "stanza-id"))
    assert stanza_id is not None and stanza_id.get("by") == str(ROOM)
    ((with_, item),) = archive.items[ROOM]
    assert (str(with_), item.id) == (f"{ROOM}/roland", stanza_id.get("id"))
    # §5: anyone who may enter a public room may read it, in it or not.
    assert await ask(Client(service, STRANGER), router) == ["hello"]


async def test_xep0313_5_members_only_archive_is_for_members(
    service: MucService, router: FakeRouter
) -> None:
    roland = await open_room(service, router, membersonly="1")
    await say(roland, "members only")
    assert await ask(Client(service, LUCY), router) == "forbidden"
    assert await ask(roland, router) == ["members only"]


async def test_xep0313_5_password_protected_archive_is_for_occupants(
    service: MucService, router: FakeRouter
) -> None:
    roland = await open_room(service, router, roomsecret="s3cret")
    await say(roland, "behind a password")
    lucy = Client(service, LUCY)
    assert await ask(lucy, router) == "forbidden"
    await lucy.join(extra="<password>s3cret</password>")
    router.take()
    assert await ask(lucy, router) == ["behind a password"]


async def test_an_archive_goes_with_its_room(
    service: MucService, router: FakeRouter, archive: MemoryArchiveStore
) -> None:
    roland = await open_room(service, router)
    await say(roland, "temporary")
    await roland.leave()  # the last occupant of a temporary room: the room is gone
    assert ROOM not in archive.items
    roland = await open_room(service, router)
    assert await ask(roland, router) == []


async def test_xep0313_7_1_2_the_room_advertises_its_archive(
    service: MucService, router: FakeRouter
) -> None:
    roland = await open_room(service, router)
    await roland.send(
        f'<iq from="{{me}}" to="{ROOM}" type="get" id="d"><query xmlns="{NS.DISCO_INFO}"/></iq>'
    )
    (info,) = router.take(ROLAND)
    features = {f.get("var") for f in info.iter(qname(NS.DISCO_INFO, "feature"))}
    assert {MAM, SID} <= features


async def test_xep0313_5_the_owner_may_turn_archiving_off(
    service: MucService, router: FakeRouter, archive: MemoryArchiveStore
) -> None:
    roland = await open_room(service, router)
    await roland.send(
        f'<iq from="{{me}}" to="{ROOM}" type="get" id="c"><query xmlns="{NS.MUC_OWNER}"/></iq>'
    )
    (form,) = router.take(ROLAND)
    offered = {
        f.get("var"): f.findtext(qname(NS.DATA, "value"))
        for f in form.iter(qname(NS.DATA, "field"))
    }
    assert offered["muc#roomconfig_enablearchiving"] == "1"
    await say(roland, "kept")
    await roland.configure(enablearchiving="0")
    await say(roland, "not kept")
    router.take()
    assert [item.stanza.count("kept") for _, item in archive.items[ROOM]] == [1]
    assert await ask(roland, router) == ["kept"]
    await roland.send(
        f'<iq from="{{me}}" to="{ROOM}" type="get" id="d"><query xmlns="{NS.DISCO_INFO}"/></iq>'
    )
    (info,) = router.take(ROLAND)
    assert MAM not in {f.get("var") for f in info.iter(qname(NS.DISCO_INFO, "feature"))}
