"""The group-chat component: room creation, disco on the service, persistence
through a room store, and the stanzas it routes (a fake router keeps them).
"""

from __future__ import annotations

import itertools
from xml.etree.ElementTree import Element, fromstring

import pytest

from heron.store.memory import MemoryRoomStore
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc import Limits, MucService
from heron.xmpp.stanza import NS, qname

SERVICE = "conference.falcot.com"
ROOM = parse_jid(f"lobby@{SERVICE}")
ROLAND = parse_jid("roland@falcot.com/laptop")
LUCY = parse_jid("lucy@falcot.com/phone")
STRANGER = parse_jid("mallory@example.org/x")
ADMIN = parse_jid("root@falcot.com/console")
OWNER = NS.MUC_OWNER.value
ADMIN_NS = NS.MUC_ADMIN.value
DATA = NS.DATA.value


def stanza(text: str) -> Element:
    return fromstring(f'<wrapper xmlns="{NS.CLIENT}">{text}</wrapper>')[0]


def condition(element: Element) -> str:
    error = element.find(qname(NS.CLIENT, "error"))
    assert error is not None, element.attrib
    return next(child.tag.rpartition("}")[2] for child in error if child.tag != "text")


class FakeRouter:
    """Keeps what the service routes."""

    def __init__(self) -> None:
        self.sent: list[Element] = []

    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        assert (stanza.get("from"), stanza.get("to")) == (str(sender), str(to))
        self.sent.append(stanza)

    def take(self, to: JID | None = None) -> list[Element]:
        sent, self.sent = self.sent, []
        return [s for s in sent if to is None or s.get("to") == str(to)]


class Client:
    """One user's verbs against the service."""

    def __init__(self, service: MucService, jid: JID, admin: bool = False) -> None:
        self.service, self.jid, self.admin = service, jid, admin

    async def send(self, text: str) -> None:
        """Deliver as the router does: addresses parsed, ``from`` the client's full JID."""
        sent = stanza(text.format(me=self.jid))
        to = parse_jid(sent.get("to", ""))
        await self.service.receive(sent, parse_jid(sent.get("from", "")), to, self.admin)

    async def join(self, room: JID = ROOM, nick: str = "", extra: str = "") -> None:
        nick = nick or self.jid.local
        await self.send(
            f'<presence from="{{me}}" to="{room}/{nick}"><x xmlns="{NS.MUC}">{extra}</x></presence>'
        )

    async def leave(self, room: JID = ROOM, nick: str = "") -> None:
        nick = nick or self.jid.local
        await self.send(f'<presence from="{{me}}" to="{room}/{nick}" type="unavailable"/>')

    async def configure(self, room: JID = ROOM, **values: str) -> None:
        fields = "".join(
            f'<field var="muc#roomconfig_{var}"><value>{value}</value></field>'
            for var, value in values.items()
        )
        await self.send(
            f'<iq from="{{me}}" to="{room}" type="set" id="c1"><query xmlns="{OWNER}">'
            f'<x xmlns="{DATA}" type="submit">{fields}</x></query></iq>'
        )


@pytest.fixture
def rooms() -> MemoryRoomStore:
    return MemoryRoomStore()


def make_service(rooms: MemoryRoomStore, router: FakeRouter, **limits: int) -> MucService:
    counter = itertools.count(1)
    return MucService(
        SERVICE,
        router,
        rooms,
        admins=[ADMIN.bare],
        local_hosts=["falcot.com"],
        limits=Limits(**limits),
        clock=lambda: 1_767_323_045.0,
        ids=lambda: f"id{next(counter)}",
    )


@pytest.fixture
def router() -> FakeRouter:
    return FakeRouter()


@pytest.fixture
def service(rooms: MemoryRoomStore, router: FakeRouter) -> MucService:
    return make_service(rooms, router)


async def test_xep0045_10_1_1_local_users_create_rooms(
    service: MucService, router: FakeRouter
) -> None:
    await Client(service, ROLAND).join()
    (self_presence, subject) = router.take(ROLAND)
    assert self_presence.get("from") == f"{ROOM}/roland"
    assert {s.get("code") for s in self_presence.iter(qname(NS.MUC_USER, "status"))} == {
        "110",
        "201",
    }
    assert subject.find(qname(NS.CLIENT, "subject")) is not None
    assert [r.jid for r in service.rooms()] == [ROOM]
    assert service.counters == {"rooms": 1, "occupants": 1, "messages": 0}


async def test_xep0045_10_1_1_remote_users_may_not_create_rooms(
    service: MucService, router: FakeRouter
) -> None:
    await Client(service, STRANGER).join(nick="mallory")
    (refusal,) = router.take()
    assert refusal.get("type") == "error" and refusal.get("to") == str(STRANGER)
    assert refusal.get("from") == f"{ROOM}/mallory"
    assert condition(refusal) == "not-allowed"
    assert refusal[0].tag == qname(NS.MUC, "x")  # §7.2: the error echoes the MUC <x/>
    assert service.rooms() == []


async def test_xep0045_7_2_10_locked_room_refuses_others_until_configured(
    service: MucService, router: FakeRouter
) -> None:
    roland, lucy = Client(service, ROLAND), Client(service, LUCY)
    await roland.join()
    await lucy.join()
    assert condition(router.take(LUCY)[0]) == "item-not-found"
    await roland.configure()
    await lucy.join()
    assert [p.get("from") for p in router.take(LUCY)[:2]] == [f"{ROOM}/roland", f"{ROOM}/lucy"]
    assert service.counters["occupants"] == 2


async def test_xep0045_7_4_messages_are_counted_and_reflected(
    service: MucService, router: FakeRouter
) -> None:
    roland, lucy = Client(service, ROLAND), Client(service, LUCY)
    await roland.join()
    await roland.configure()
    await lucy.join()
    router.take()
    await lucy.send(
        f'<message from="{{me}}" to="{ROOM}" type="groupchat"><body>hi</body></message>'
    )
    assert sorted(s.get("to", "") for s in router.take()) == sorted([str(ROLAND), str(LUCY)])
    assert service.counters["messages"] == 1


async def test_xep0045_7_14_temporary_room_goes_with_its_last_occupant(
    service: MucService, router: FakeRouter
) -> None:
    roland = Client(service, ROLAND)
    await roland.join()
    await roland.configure()
    await roland.leave()
    assert service.rooms() == []
    assert service.counters == {"rooms": 0, "occupants": 0, "messages": 0}
    await roland.send(
        f'<message from="{{me}}" to="{ROOM}" type="groupchat"><body>x</body></message>'
    )
    assert condition(router.take()[-1]) == "item-not-found"


async def test_errors_are_never_answered(service: MucService, router: FakeRouter) -> None:
    await Client(service, ROLAND).send(f'<message from="{{me}}" to="{ROOM}" type="error"/>')
    await Client(service, ROLAND).send(f'<iq from="{{me}}" to="{ROOM}" type="result" id="r"/>')
    assert router.take() == []


async def test_xep0045_6_1_service_disco_info(service: MucService, router: FakeRouter) -> None:
    await Client(service, LUCY).send(
        f'<iq from="{{me}}" to="{SERVICE}" type="get" id="d"><query xmlns="{NS.DISCO_INFO}"/></iq>'
    )
    (result,) = router.take()
    identity = result.find(f"{{{NS.DISCO_INFO}}}query/{{{NS.DISCO_INFO}}}identity")
    assert identity is not None and identity.get("category") == "conference"
    features = {f.get("var") for f in result.iter(qname(NS.DISCO_INFO, "feature"))}
    assert NS.MUC.value in features


async def test_xep0045_6_3_service_lists_public_configured_rooms(
    service: MucService, router: FakeRouter
) -> None:
    roland = Client(service, ROLAND)
    hidden = parse_jid(f"secret@{SERVICE}")
    locked = parse_jid(f"draft@{SERVICE}")
    await roland.join()
    await roland.configure(roomname="Falcot lobby")
    await roland.join(hidden)
    await roland.configure(hidden, publicroom="0")
    await roland.join(locked)
    router.take()
    await Client(service, LUCY).send(
        f'<iq from="{{me}}" to="{SERVICE}" type="get" id="d"><query xmlns="{NS.DISCO_ITEMS}"/></iq>'
    )
    (result,) = router.take()
    items = [dict(i.attrib) for i in result.iter(qname(NS.DISCO_ITEMS, "item"))]
    assert items == [{"jid": str(ROOM), "name": "Falcot lobby"}]


async def test_xep0045_10_2_persistent_room_survives_a_reload(
    rooms: MemoryRoomStore, service: MucService, router: FakeRouter
) -> None:
    roland = Client(service, ROLAND)
    await roland.join()
    await roland.configure(persistentroom="1", membersonly="1", roomname="Staff")
    await roland.send(
        f'<iq from="{{me}}" to="{ROOM}" type="set" id="a"><query xmlns="{ADMIN_NS}">'
        f'<item affiliation="member" jid="{LUCY.bare}"/></query></iq>'
    )
    await roland.send(
        f'<message from="{{me}}" to="{ROOM}" type="groupchat"><subject>Rota</subject></message>'
    )
    await roland.leave()
    assert [r.title for r in service.rooms()] == ["Staff"]

    reloaded = make_service(rooms, router)
    await reloaded.load()
    (summary,) = reloaded.rooms()
    assert summary.persistent and summary.members_only and not summary.locked
    router.take()
    await Client(reloaded, LUCY).join()
    mine = router.take(LUCY)
    assert mine[0].get("type") is None
    assert mine[-1].findtext(qname(NS.CLIENT, "subject")) == "Rota"
    await Client(reloaded, STRANGER).join(nick="mallory")
    assert condition(router.take(STRANGER)[0]) == "registration-required"


async def test_xep0045_10_9_destroying_a_persistent_room_forgets_it(
    rooms: MemoryRoomStore, service: MucService, router: FakeRouter
) -> None:
    roland = Client(service, ROLAND)
    await roland.join()
    await roland.configure(persistentroom="1")
    await roland.send(
        f'<iq from="{{me}}" to="{ROOM}" type="set" id="x"><query xmlns="{OWNER}">'
        "<destroy/></query></iq>"
    )
    assert service.rooms() == []
    assert await rooms.load(SERVICE) == []


async def test_xep0045_10_2_a_room_made_temporary_leaves_the_store(
    rooms: MemoryRoomStore, service: MucService
) -> None:
    roland = Client(service, ROLAND)
    await roland.join()
    await roland.configure(persistentroom="1")
    assert [r.name for r in await rooms.load(SERVICE)] == ["lobby"]
    await roland.configure(persistentroom="0")
    assert await rooms.load(SERVICE) == []
    assert len(service.rooms()) == 1


async def test_configured_admins_own_every_room(service: MucService, router: FakeRouter) -> None:
    await Client(service, ROLAND).join()
    router.take()
    # The room is locked for everyone but owners (§10.1.1); a server admin is one.
    await Client(service, ADMIN).join(nick="root")
    self_presence = router.take(ADMIN)[1]
    item = self_presence.find(f"{qname(NS.MUC_USER, 'x')}/{qname(NS.MUC_USER, 'item')}")
    assert item is not None and item.get("affiliation") == "owner"


async def test_room_count_is_limited(rooms: MemoryRoomStore, router: FakeRouter) -> None:
    service = make_service(rooms, router, max_rooms=1)
    await Client(service, ROLAND).join()
    await Client(service, ROLAND).join(parse_jid(f"second@{SERVICE}"))
    assert condition(router.take()[-1]) == "resource-constraint"
    assert len(service.rooms()) == 1


async def test_rooms_one_user_owns_are_limited(rooms: MemoryRoomStore, router: FakeRouter) -> None:
    service = make_service(rooms, router, rooms_per_user=2)
    roland = Client(service, ROLAND)
    for name in ("one", "two", "three"):
        await roland.join(parse_jid(f"{name}@{SERVICE}"))
    assert condition(router.take()[-1]) == "resource-constraint"
    assert [room.jid.local for room in service.rooms()] == ["one", "two"]
    # Others still create rooms, and so does roland once one of his is gone.
    await Client(service, LUCY).join(parse_jid(f"three@{SERVICE}"))
    await roland.leave(parse_jid(f"one@{SERVICE}"))
    await roland.join(parse_jid(f"four@{SERVICE}"))
    router.take()
    assert [room.jid.local for room in service.rooms()] == ["four", "three", "two"]
    # Server administrators are not counted.
    admin = Client(service, ADMIN, admin=True)
    for name in ("a1", "a2", "a3"):
        await admin.join(parse_jid(f"{name}@{SERVICE}"), nick="root")
    assert len(service.rooms()) == 6


async def test_room_names_are_limited(service: MucService, router: FakeRouter) -> None:
    await Client(service, ROLAND).join(parse_jid(f"{'r' * 65}@{SERVICE}"))
    assert condition(router.take()[-1]) == "not-acceptable"
    assert service.rooms() == []


# XEP-0410 MUC self-ping: the room answers it (§3.3), with §3.2's errors


def ping(to: str) -> str:
    return f'<iq from="{{me}}" to="{to}" type="get" id="p1"><ping xmlns="{NS.PING}"/></iq>'


def error_of(reply: Element) -> Element:
    error = reply.find(qname(NS.CLIENT, "error"))
    assert error is not None, reply.attrib
    return error


async def in_the_lobby(service: MucService, router: FakeRouter) -> tuple[Client, Client]:
    """roland owns the (configured) lobby, lucy has joined it; nothing left to take."""
    roland, lucy = Client(service, ROLAND), Client(service, LUCY)
    await roland.join()
    await roland.configure()
    await lucy.join()
    router.take()
    return roland, lucy


async def test_xep0410_3_3_the_room_answers_an_occupants_self_ping(
    service: MucService, router: FakeRouter
) -> None:
    _, lucy = await in_the_lobby(service, router)
    await lucy.send(ping(f"{ROOM}/lucy"))
    # The answer comes from the occupant JID, and no client of lucy's is asked.
    (result,) = router.take()
    assert result.tag == qname(NS.CLIENT, "iq")
    assert result.attrib == {"type": "result", "id": "p1", "from": f"{ROOM}/lucy", "to": str(LUCY)}
    assert len(result) == 0


async def test_xep0410_3_3_a_self_ping_from_another_jid_is_not_acceptable(
    service: MucService, router: FakeRouter
) -> None:
    await in_the_lobby(service, router)
    # lucy's laptop is not joined, though lucy's phone is; a stranger is not joined at all.
    for pinger in (parse_jid("lucy@falcot.com/laptop"), STRANGER):
        await Client(service, pinger).send(ping(f"{ROOM}/lucy"))
        (reply,) = router.take()
        assert (reply.get("type"), reply.get("to")) == ("error", str(pinger))
        assert reply.get("from") == f"{ROOM}/lucy"
        # §3.2's example: <error type="cancel" by="room"><not-acceptable/>.
        assert (error_of(reply).get("type"), error_of(reply).get("by")) == ("cancel", str(ROOM))
        assert condition(reply) == "not-acceptable"


async def test_xep0410_3_2_after_leaving_or_once_the_room_is_gone_not_acceptable(
    service: MucService, router: FakeRouter
) -> None:
    roland, lucy = await in_the_lobby(service, router)
    await lucy.leave()
    router.take()
    await lucy.send(ping(f"{ROOM}/lucy"))
    assert condition(router.take(LUCY)[0]) == "not-acceptable"
    # The temporary room went with its last occupant, as after a restart: still
    # not-acceptable (the client rejoins), not item-not-found (joined, nick changed).
    await roland.leave()
    assert service.rooms() == []
    router.take()
    await roland.send(ping(f"{ROOM}/roland"))
    (reply,) = router.take()
    assert condition(reply) == "not-acceptable"
    assert error_of(reply).get("by") == str(ROOM)


async def test_xep0410_3_2_a_joined_client_pinging_a_vacant_nickname_gets_item_not_found(
    service: MucService, router: FakeRouter
) -> None:
    """§3.2: item-not-found says "joined, but the nickname changed", so no rejoin."""
    _, lucy = await in_the_lobby(service, router)
    await lucy.send(ping(f"{ROOM}/lucinda"))
    assert condition(router.take()[0]) == "item-not-found"


async def test_xep0410_3_3_only_self_pings_are_answered_for_an_occupant(
    service: MucService, router: FakeRouter
) -> None:
    """A ping to another occupant is no self-ping, and neither is a set or another
    payload: heron relays no iq to occupants, and says so with service-unavailable."""
    _, lucy = await in_the_lobby(service, router)
    for request in (
        ping(f"{ROOM}/roland"),
        ping(f"{ROOM}/lucy").replace('type="get"', 'type="set"'),
        f'<iq from="{{me}}" to="{ROOM}/lucy" type="get" id="v"><query xmlns="{NS.VERSION}"/></iq>',
    ):
        await lucy.send(request)
        replies = router.take()
        assert [r.get("to") for r in replies] == [str(LUCY)]
        assert condition(replies[0]) == "service-unavailable"
    # RFC 6120 §8.2.3: a result or an error to an occupant JID is never answered.
    await lucy.send(f'<iq from="{{me}}" to="{ROOM}/lucy" type="result" id="p1"/>')
    assert router.take() == []


async def test_xep0410_3_3_only_the_room_advertises_the_optimization(
    service: MucService, router: FakeRouter
) -> None:
    """§3.3: the feature is "in the disco#info response on the individual MUC room JIDs"."""
    _, lucy = await in_the_lobby(service, router)
    info = f'<iq from="{{me}}" to="{{to}}" type="get" id="d"><query xmlns="{NS.DISCO_INFO}"/></iq>'
    features: dict[str, set[str | None]] = {}
    for address in (str(ROOM), SERVICE):
        await lucy.send(info.replace("{to}", address))
        (result,) = router.take()
        features[address] = {f.get("var") for f in result.iter(qname(NS.DISCO_INFO, "feature"))}
    assert NS.MUC_SELF_PING.value in features[str(ROOM)]
    assert NS.MUC_SELF_PING.value not in features[SERVICE]
