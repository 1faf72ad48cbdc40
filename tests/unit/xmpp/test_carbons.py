"""Message Carbons (XEP-0280) through the router: enabling per session, and the copies
of messages received (§7) and sent (§8), from and to local, remote and MUC addresses."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.disco import DiscoInfoHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import FakeSession, Server, error_condition, im_server, stanza

CARBONS = NS.CARBONS.value
ENABLE = f'<iq type="set" id="c1"><enable xmlns="{CARBONS}"/></iq>'
DISABLE = f'<iq type="set" id="c2"><disable xmlns="{CARBONS}"/></iq>'
CHAT = '<message to="{to}" type="chat" id="m1"><body>{body}</body></message>'
JULIET = parse_jid("juliet@capulet.example/balcony")
BODY = qname(NS.CLIENT, "body")
MUC = NS.MUC_USER.value


class Remote:
    """Federation as the router sees it: what went to other domains."""

    def __init__(self) -> None:
        self.sent: list[Element] = []

    async def send(self, stanza: Element, sender: JID, to: JID) -> None:
        self.sent.append(stanza)


class Conference:
    domain = "conference.falcot.com"

    async def receive(self, stanza: Element, sender: JID, to: JID, is_admin: bool) -> None:
        """Takes everything; the room's answers are not the point here."""


@pytest.fixture
def server() -> Server:
    return im_server()


async def enabled(server: Server, account: str, resource: str, priority: int = 0) -> FakeSession:
    """A logged-in session with carbons on (§4), its queue emptied."""
    session = await server.login(account, resource, priority=priority)
    await server.send(session, ENABLE)
    reply = session.take()[-1]
    assert (reply.get("type"), reply.get("id")) == ("result", "c1")
    return session


def carbon(session: FakeSession, kind: str) -> Element:
    """The one message ``session`` got, a carbon of ``kind``; returns the forwarded original."""
    wrapper = session.take_one("message")
    assert wrapper.get("from") == str(session.jid.bare)  # §7, §8: the bare JID, always
    assert wrapper.get("to") == str(session.jid)
    forwarded = wrapper.find(f"{{{CARBONS}}}{kind}/{{{NS.FORWARD}}}forwarded")
    assert forwarded is not None and len(forwarded) == 1, wrapper
    assert wrapper.get("type") == forwarded[0].get("type")
    return forwarded[0]


def drain(*sessions: FakeSession) -> None:
    for session in sessions:
        session.take()


async def test_xep0280_3_the_server_advertises_carbons(server: Server) -> None:
    disco = DiscoInfoHandler([server.router.roster, server.router.carbons])
    iq = stanza(f'<iq type="get" id="d"><query xmlns="{NS.DISCO_INFO}"/></iq>')
    context = IqContext(
        parse_jid("roland@falcot.com/laptop"), parse_jid("falcot.com"), False, server.router
    )
    reply = await disco.handle_iq(iq, context)
    assert reply is not None
    features = {f.get("var") for f in reply.iter(qname(NS.DISCO_INFO, "feature"))}
    assert CARBONS in features


async def test_xep0280_4_5_10_1_enable_and_disable_answer_results_any_number_of_times(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    resource = server.router.resource(roland.jid)
    assert resource is not None and not resource.carbons  # off until asked, per session
    for request, on in ((ENABLE, True), (ENABLE, True), (DISABLE, False), (DISABLE, False)):
        drain(roland)
        await server.send(roland, request)
        assert roland.take_one("iq").get("type") == "result"
        assert resource.carbons is on
    await server.send(roland, ENABLE.replace("<iq", '<iq to="falcot.com"'))
    assert roland.take_one("iq").get("type") == "result"
    assert resource.carbons


@pytest.mark.parametrize(
    "request_",
    [
        f'<iq type="get" id="c"><enable xmlns="{CARBONS}"/></iq>',
        f'<iq type="set" id="c"><private xmlns="{CARBONS}"/></iq>',
    ],
)
async def test_xep0280_4_only_an_iq_set_of_enable_or_disable_is_understood(
    server: Server, request_: str
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    drain(roland)
    await server.send(roland, request_)
    assert error_condition(roland.take_one("iq")) == "bad-request"


async def test_xep0280_4_1_a_client_of_another_server_is_not_allowed(server: Server) -> None:
    iq = stanza(f'<iq type="set" id="c"><enable xmlns="{CARBONS}"/></iq>')
    context = IqContext(JULIET, parse_jid("falcot.com"), False, server.router)
    with pytest.raises(StanzaError) as refused:
        await server.router.carbons.handle_iq(iq, context)
    assert refused.value.condition is StanzaCondition.NOT_ALLOWED


async def test_xep0280_7_a_message_to_a_full_jid_is_copied_to_the_other_enabled_sessions(
    server: Server,
) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    desk = await server.login("roland@falcot.com", "desk")
    lucy = await server.login("lucy@falcot.com", "home")
    drain(laptop, phone, desk)
    await server.send(lucy, CHAT.format(to=laptop.jid, body="hi"))
    original = laptop.take_one("message")
    assert original.find(f"{{{CARBONS}}}received") is None  # §7: it gets the original only
    copied = carbon(phone, "received")
    assert (copied.get("from"), copied.get("to")) == (str(lucy.jid), str(laptop.jid))
    assert copied.findtext(BODY) == "hi"
    assert desk.take() == []  # carbons off: nothing extra


async def test_xep0280_7_a_bare_jid_message_is_copied_to_enabled_sessions_that_missed_it(
    server: Server,
) -> None:
    desk = await enabled(server, "roland@falcot.com", "desk", priority=5)
    laptop = await enabled(server, "roland@falcot.com", "laptop", priority=5)
    phone = await enabled(server, "roland@falcot.com", "phone", priority=1)
    lucy = await server.login("lucy@falcot.com", "home")
    drain(desk, laptop, phone)
    await server.send(lucy, CHAT.format(to="roland@falcot.com", body="hi"))
    # RFC 6121 §8.5.2.1.1: both top-priority sessions get the original, and no copy.
    assert desk.take_one("message").findtext(BODY) == "hi"
    assert laptop.take_one("message").findtext(BODY) == "hi"
    assert carbon(phone, "received").get("to") == "roland@falcot.com"


async def test_xep0280_7_a_message_kept_offline_is_not_copied_as_well(server: Server) -> None:
    # Carbons on, but not available (no initial presence): the message is stored, and the
    # session gets it from storage after its presence, once.
    waiting = await server.connect("roland@falcot.com", "phone")
    await server.send(waiting, ENABLE)
    lucy = await server.login("lucy@falcot.com", "home")
    drain(waiting)
    await server.send(lucy, CHAT.format(to="roland@falcot.com", body="later"))
    assert waiting.take() == []
    await server.send(waiting, "<presence/>")
    delivered = [m for m in waiting.take() if m.tag == qname(NS.CLIENT, "message")]
    assert [m.findtext(BODY) for m in delivered] == ["later"]


async def test_xep0280_7_messages_from_other_domains_are_copied(server: Server) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    drain(laptop, phone)
    chat = stanza(
        f'<message from="{JULIET}" to="{laptop.jid}" type="chat"><body>o</body></message>'
    )
    await server.router.route(chat, JULIET, laptop.jid)
    assert laptop.take_one("message").findtext(BODY) == "o"
    assert carbon(phone, "received").get("from") == str(JULIET)


async def test_xep0280_6_1_room_messages_and_private_messages_from_occupants_are_not_copied(
    server: Server,
) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    drain(laptop, phone)
    occupant = parse_jid("kitchen@conference.falcot.com/lucy")
    for xml in (
        f'<message type="chat"><body>psst</body><x xmlns="{NS.MUC_USER}"/></message>',
        '<message type="groupchat"><body>all</body></message>',
    ):
        message = stanza(xml)
        message.set("from", str(occupant))
        message.set("to", str(laptop.jid))
        await server.router.route(message, occupant, laptop.jid)
        assert len(laptop.take()) == 1
        assert phone.take() == []


async def test_xep0280_8_a_sent_message_is_copied_to_the_senders_other_enabled_sessions(
    server: Server,
) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    desk = await server.login("roland@falcot.com", "desk")
    lucy = await server.login("lucy@falcot.com", "home")
    drain(laptop, phone, desk, lucy)
    await server.send(laptop, CHAT.format(to="lucy@falcot.com", body="hello"))
    assert lucy.take_one("message").findtext(BODY) == "hello"
    copied = carbon(phone, "sent")
    assert (copied.get("from"), copied.get("to")) == (str(laptop.jid), "lucy@falcot.com")
    assert laptop.take() == []  # §8: not to the sending client
    assert desk.take() == []


async def test_xep0280_8_copies_are_sent_whether_or_not_the_sender_enabled_them(
    server: Server,
) -> None:
    desk = await server.login("roland@falcot.com", "desk")
    phone = await enabled(server, "roland@falcot.com", "phone")
    await server.login("lucy@falcot.com", "home")
    drain(desk, phone)
    await server.send(desk, CHAT.format(to="lucy@falcot.com/home", body="from the desk"))
    assert carbon(phone, "sent").findtext(BODY) == "from the desk"


async def test_xep0280_8_messages_to_other_domains_and_to_room_occupants_are_copied(
    server: Server,
) -> None:
    remote = Remote()
    server.router.federate(remote)
    server.router.register_component(Conference())
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    drain(laptop, phone)
    await server.send(laptop, CHAT.format(to=JULIET, body="to verona"))
    assert [m.findtext(BODY) for m in remote.sent] == ["to verona"]
    assert carbon(phone, "sent").get("to") == str(JULIET)
    occupant = "kitchen@conference.falcot.com/lucy"
    private = CHAT.format(to=occupant, body="pm").replace("</body>", f'</body><x xmlns="{MUC}"/>')
    await server.send(laptop, private)
    assert carbon(phone, "sent").findtext(BODY) == "pm"  # §6.1: a private message to an occupant


async def test_xep0280_8_a_refused_message_is_not_copied(server: Server) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    drain(laptop, phone)
    await server.send(laptop, CHAT.format(to=JULIET, body="no federation"))  # nowhere to go
    assert error_condition(laptop.take_one("message")) == "remote-server-not-found"
    assert phone.take() == []


@pytest.mark.parametrize(("namespace", "name"), [(CARBONS, "private"), (NS.HINTS.value, "no-copy")])
async def test_xep0280_9_a_private_message_is_copied_neither_when_sent_nor_received(
    server: Server, namespace: str, name: str
) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    home = await enabled(server, "lucy@falcot.com", "home")
    work = await enabled(server, "lucy@falcot.com", "work")
    drain(laptop, phone, home, work)
    opt_out = f'<{name} xmlns="{namespace}"/>'
    await server.send(
        laptop, CHAT.format(to=home.jid, body="secret").replace("</body>", "</body>" + opt_out)
    )
    received = home.take_one("message")
    # §9's interoperability note: the opt-out stays in the delivered message.
    assert [child.tag for child in received] == [BODY, qname(namespace, name)]
    assert (phone.take(), work.take(), laptop.take()) == ([], [], [])


async def test_xep0280_7_8_a_message_between_ones_own_sessions_is_copied_once(
    server: Server,
) -> None:
    laptop = await enabled(server, "roland@falcot.com", "laptop")
    phone = await enabled(server, "roland@falcot.com", "phone")
    desk = await enabled(server, "roland@falcot.com", "desk")
    drain(laptop, phone, desk)
    await server.send(laptop, CHAT.format(to=phone.jid, body="note to self"))
    assert phone.take_one("message").findtext(BODY) == "note to self"
    assert carbon(desk, "received").get("from") == str(laptop.jid)
    assert laptop.take() == []
