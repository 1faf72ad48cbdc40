"""XEP-0357 through the router: who may enable push, and when a phone is woken."""

from __future__ import annotations

import itertools
from xml.etree.ElementTree import Element

import pytest

from heron.store.memory import MemoryPushStore
from heron.xmpp.features.push import ID_PREFIX, PushNotifications
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.push import PUSH
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import FakeSession, Server, error_condition, im_server, stanza

PUBSUB = "http://jabber.org/protocol/pubsub"
CARBONS = NS.CARBONS.value
APP = "push.falcot.net"


class AppServer:
    """A push app server on its own domain: records the publishes it gets."""

    domain = APP

    def __init__(self) -> None:
        self.got: list[Element] = []

    async def receive(self, stanza: Element, sender: JID, to: JID, is_admin: bool) -> None:
        self.got.append(stanza)

    def senders(self) -> list[str]:
        """The last-message-sender of each summary received, in order."""
        found = []
        for iq in self.got:
            for field in iq.iter(qname(NS.DATA, "field")):
                if field.get("var") == "last-message-sender":
                    found.append(field.findtext(qname(NS.DATA, "value"), ""))
        return found


@pytest.fixture
def store() -> MemoryPushStore:
    return MemoryPushStore()


@pytest.fixture
def app() -> AppServer:
    return AppServer()


def push_server(store: MemoryPushStore, app: AppServer, *, include_body: bool = False) -> Server:
    """Push with 2 app servers per account at most, and 2 errors in a row to drop one."""
    server = im_server()
    ids = itertools.count(1)
    push = PushNotifications(
        store,
        server.router,
        ids=lambda: str(next(ids)),
        limit=2,
        include_body=include_body,
        max_errors=2,
    )
    server.router.push = push
    server.router.register_iq_handler(push)
    server.router.register_results(ID_PREFIX, push.answer)
    server.router.register_component(app)
    return server


@pytest.fixture
def server(store: MemoryPushStore, app: AppServer) -> Server:
    return push_server(store, app)


async def enable(server: Server, session: FakeSession, node: str = "n1", to: str = "") -> Element:
    address = f" to='{to}'" if to else ""
    session.take()
    await server.send(
        session,
        f"<iq type='set' id='e'{address}><enable xmlns='{PUSH}' jid='{APP}' node='{node}'/></iq>",
    )
    return session.take_one("iq")


async def message(server: Server, sender: FakeSession, to: str, body: str = "hello") -> None:
    await server.send(sender, f"<message type='chat' to='{to}'><body>{body}</body></message>")


async def test_xep0357_s7_offline_account_is_pushed_without_body(
    server: Server, app: AppServer
) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    assert (await enable(server, phone)).get("type") == "result"
    await server.router.unbind(phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com", "secret plans")
    [publish] = app.got
    assert publish.get("to") == APP and publish.get("from") == "falcot.com"
    node = publish.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
    assert node is not None and node.get("node") == "n1"
    assert app.senders() == ["lucy@falcot.com"]
    assert "secret plans" not in str([e.text for e in publish.iter()])


async def test_the_body_goes_along_only_when_the_operator_allows_it(
    store: MemoryPushStore, app: AppServer
) -> None:
    server = push_server(store, app, include_body=True)
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone)
    await server.router.unbind(phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com", "lunch?")
    bodies = [
        f.findtext(qname(NS.DATA, "value"))
        for f in app.got[0].iter(qname(NS.DATA, "field"))
        if f.get("var") == "last-message-body"
    ]
    assert bodies == ["lunch?"]


async def test_connected_available_session_is_not_pushed(server: Server, app: AppServer) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com")
    assert app.got == []


async def test_xep0198_hibernating_session_is_pushed_until_resumed(
    server: Server, app: AppServer
) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    server.router.hibernating(phone, True)
    await message(server, lucy, "roland@falcot.com")
    await message(server, lucy, "roland@falcot.com/phone")
    assert app.senders() == ["lucy@falcot.com", "lucy@falcot.com"]
    server.router.hibernating(phone, False)
    await message(server, lucy, "roland@falcot.com")
    assert len(app.got) == 2


async def test_a_connected_carbons_session_sees_it_so_no_push(
    server: Server, app: AppServer
) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone)
    desk = await server.login("roland@falcot.com", "desk", priority=-1)
    await server.send(desk, f"<iq type='set' id='c'><enable xmlns='{CARBONS}'/></iq>")
    server.router.hibernating(phone, True)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com/phone")
    assert app.got == []


async def test_bodiless_messages_do_not_wake_a_phone(server: Server, app: AppServer) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone)
    await server.router.unbind(phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    await server.send(
        lucy,
        "<message type='chat' to='roland@falcot.com'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    assert app.got == []


async def test_xep0357_s6_disable_stops_pushes(
    server: Server, app: AppServer, store: MemoryPushStore
) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone, "n1")
    await enable(server, phone, "n2")
    await server.send(
        phone, f"<iq type='set' id='d'><disable xmlns='{PUSH}' jid='{APP}' node='n1'/></iq>"
    )
    assert phone.take_one("iq").get("type") == "result"
    assert [r.node for r in await store.push_services("roland@falcot.com")] == ["n2"]
    await server.send(phone, f"<iq type='set' id='d'><disable xmlns='{PUSH}' jid='{APP}'/></iq>")
    await server.router.unbind(phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com")
    assert app.got == []


async def test_push_services_per_account_are_limited(server: Server) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    assert (await enable(server, phone, "n1")).get("type") == "result"
    assert (await enable(server, phone, "n2")).get("type") == "result"
    assert (await enable(server, phone, "n1")).get("type") == "result"  # replaces itself
    assert error_condition(await enable(server, phone, "n3")) == "resource-constraint"


def answer(publish: Element, type_: str, error_type: str = "cancel") -> Element:
    """The app server's answer to ``publish``: a result, or an error of ``error_type``."""
    error = (
        f"<error type='{error_type}'><item-not-found xmlns='{NS.STANZAS}'/></error>"
        if type_ == "error"
        else ""
    )
    return stanza(
        f"<iq type='{type_}' from='{APP}' to='falcot.com' id='{publish.get('id')}'>{error}</iq>"
    )


async def test_errors_in_a_row_from_the_app_server_disable_that_registration(
    server: Server, app: AppServer, store: MemoryPushStore
) -> None:
    """mod_cloud_notify's push_max_errors (2 here): a result in between starts the count
    again, and errors of type wait ("try later") never count."""
    phone = await server.login("roland@falcot.com", "phone")
    await enable(server, phone)
    await server.router.unbind(phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    app_jid, domain = parse_jid(APP), parse_jid("falcot.com")
    for type_, error_type in (
        ("error", "cancel"),
        ("result", ""),
        ("error", "cancel"),
        ("error", "wait"),
    ):
        await message(server, lucy, "roland@falcot.com")
        await server.router.route(answer(app.got[-1], type_, error_type), app_jid, domain)
    assert len(await store.push_services("roland@falcot.com")) == 1
    await message(server, lucy, "roland@falcot.com")
    # An error with the right id from anyone but the app server changes nothing.
    forged = answer(app.got[-1], "error")
    forged.set("from", "lucy@falcot.com/desk")
    await server.router.route(forged, parse_jid("lucy@falcot.com/desk"), domain)
    assert len(await store.push_services("roland@falcot.com")) == 1
    await server.router.route(answer(app.got[-1], "error"), app_jid, domain)
    assert await store.push_services("roland@falcot.com") == []
    await message(server, lucy, "roland@falcot.com")
    assert len(app.got) == 5


async def test_an_unreachable_app_server_is_disabled_after_the_errors_in_a_row(
    server: Server, store: MemoryPushStore
) -> None:
    phone = await server.login("roland@falcot.com", "phone")
    await server.send(
        phone,
        f"<iq type='set' id='e'>"
        f"<enable xmlns='{PUSH}' jid='push.elsewhere.example' node='n'/></iq>",
    )
    await server.router.unbind(phone)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com")  # no federation: remote-server-not-found
    assert len(await store.push_services("roland@falcot.com")) == 1
    await message(server, lucy, "roland@falcot.com")
    assert await store.push_services("roland@falcot.com") == []


async def test_attack_push_for_another_account_is_refused_and_leaks_nothing(
    server: Server, app: AppServer, store: MemoryPushStore
) -> None:
    """Raphael points an app server he controls at Roland's account: refused, and
    Roland's correspondents never reach Raphael's app server; Raphael's own push
    tells only of Raphael's own messages."""
    raphael = await server.login("raphael@falcot.com", "laptop")
    refused = await enable(server, raphael, "spy", to="roland@falcot.com")
    assert error_condition(refused) == "service-unavailable"
    # An enable from outside (a remote entity, to the server) is no session's either.
    outsider = stanza(
        f"<iq type='set' id='x' from='mallory@evil.example' to='falcot.com'>"
        f"<enable xmlns='{PUSH}' jid='{APP}' node='spy'/></iq>"
    )
    await server.router.route(outsider, parse_jid("mallory@evil.example"), parse_jid("falcot.com"))
    assert store.services == {}
    assert (await enable(server, raphael, "own")).get("type") == "result"
    roland = await server.login("roland@falcot.com", "phone")
    await server.router.unbind(roland)
    lucy = await server.login("lucy@falcot.com", "desk")
    await message(server, lucy, "roland@falcot.com")
    assert app.got == []
    await server.router.unbind(raphael)
    await message(server, lucy, "raphael@falcot.com")
    assert app.senders() == ["lucy@falcot.com"]
    assert list(store.services) == ["raphael@falcot.com"]
