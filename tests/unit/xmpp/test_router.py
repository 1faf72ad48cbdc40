"""The router: binding, RFC 6121 §8 delivery, iq dispatch, components, blocking."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from heron.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from heron.xmpp.features import IqContext
from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.router import Where
from heron.xmpp.stanza import iq_result, qname
from heron.xmpp.subscription import Subscription
from tests.unit.xmpp.im_harness import (
    FakeSession,
    Server,
    error_condition,
    im_server,
    stanza,
    text,
)

ECHO = "urn:example:echo"
ROLAND = parse_jid("roland@falcot.com")
LUCY = parse_jid("lucy@falcot.com")


class Echo:
    """An iq handler that remembers its contexts and answers, refuses or fails on demand."""

    namespace = ECHO
    disco_features: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.contexts: list[IqContext] = []

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        self.contexts.append(context)
        mode = iq[0].get("mode")
        if mode == "refuse":
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "no")
        if mode == "crash":
            raise RuntimeError("handler bug")
        return iq_result(iq)


class Conference:
    domain = "conference.falcot.com"

    def __init__(self) -> None:
        self.received: list[tuple[Element, bool]] = []

    async def receive(self, stanza: Element, sender: JID, to: JID, is_admin: bool) -> None:
        self.received.append((stanza, is_admin))


@pytest.fixture
def server() -> Server:
    return im_server(admins=["roland@falcot.com"])


async def test_rfc6120_7_6_a_resource_is_generated_when_the_client_asks_none(
    server: Server,
) -> None:
    first = await server.connect("roland@falcot.com")
    second = await server.connect("roland@falcot.com")
    assert first.jid == parse_jid("roland@falcot.com/r1")
    assert second.jid == parse_jid("roland@falcot.com/r2")
    assert server.router.resources(parse_jid("roland@falcot.com")) == [first.jid, second.jid]
    assert sorted(map(str, server.router.online())) == [str(first.jid), str(second.jid)]


async def test_rfc6120_7_7_2_2_conflict_closes_the_older_session(server: Server) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    old = await server.login("roland@falcot.com", "laptop")
    new = await server.connect("roland@falcot.com", "laptop")
    assert old.closed is StreamCondition.CONFLICT
    assert new.closed is None
    assert server.router.sessions() == [lucy, new]
    await server.send(new, "<presence/>")
    old.take()
    await server.router.unbind(old)  # the old stream ends later
    await server.send(
        lucy, '<message to="roland@falcot.com/laptop" type="chat"><body>hi</body></message>'
    )
    assert old.take() == []
    assert new.take_one("message").get("from") == "lucy@falcot.com/home"


async def test_bind_refuses_accounts_of_other_domains(server: Server) -> None:
    with pytest.raises(StanzaError) as refused:
        await server.connect("roland@debian.org", "laptop")
    assert refused.value.condition is StanzaCondition.NOT_ALLOWED


async def test_rfc6120_8_1_2_1_the_recipient_sees_the_senders_full_jid(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    lucy.take()
    await server.send(roland, '<message to="lucy@falcot.com/home"><body>1</body></message>')
    assert lucy.take_one().get("from") == "roland@falcot.com/laptop"


async def test_rfc6121_8_5_2_1_1_bare_jid_messages_go_to_the_highest_priority(
    server: Server,
) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    high = await server.login("roland@falcot.com", "desk", priority=5)
    also_high = await server.login("roland@falcot.com", "laptop", priority=5)
    low = await server.login("roland@falcot.com", "phone", priority=1)
    negative = await server.login("roland@falcot.com", "bot", priority=-1)
    for session in (high, also_high, low, negative):
        session.take()
    await server.send(lucy, '<message to="roland@falcot.com" type="chat"><body>x</body></message>')
    assert high.take_one().find(qname("jabber:client", "body")) is not None
    assert len(also_high.take()) == 1
    assert low.take() == []
    assert negative.take() == []


async def test_rfc6121_8_5_2_1_1_headlines_go_to_every_non_negative_resource(
    server: Server,
) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    high = await server.login("roland@falcot.com", "desk", priority=5)
    low = await server.login("roland@falcot.com", "phone", priority=0)
    negative = await server.login("roland@falcot.com", "bot", priority=-1)
    for session in (high, low, negative):
        session.take()
    await server.send(lucy, '<message to="roland@falcot.com" type="headline"><body/></message>')
    assert (len(high.take()), len(low.take()), len(negative.take())) == (1, 1, 0)


async def test_rfc6121_8_5_3_2_1_missing_resource_is_treated_by_message_type(
    server: Server,
) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    lucy.take()
    await server.send(lucy, '<message to="roland@falcot.com/gone" type="chat"><body/></message>')
    assert roland.take_one().get("to") == "roland@falcot.com/gone"
    await server.send(
        lucy, '<message to="roland@falcot.com/gone" type="headline"><body/></message>'
    )
    assert roland.take() == []
    await server.send(
        lucy, '<message to="roland@falcot.com/gone" type="groupchat" id="g"><body/></message>'
    )
    assert roland.take() == []
    assert error_condition(lucy.take_one()) == "service-unavailable"


async def test_rfc6121_8_5_1_unknown_local_user(server: Server) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    lucy.take()
    await server.send(lucy, '<message to="nobody@falcot.com" id="m1"><body>hi</body></message>')
    reply = lucy.take_one()
    assert (reply.get("id"), reply.get("from")) == ("m1", "nobody@falcot.com")
    assert error_condition(reply) == "service-unavailable"
    await server.send(
        lucy, f'<iq to="nobody@falcot.com" type="get" id="i1"><q xmlns="{ECHO}"/></iq>'
    )
    assert error_condition(lucy.take_one()) == "service-unavailable"
    await server.send(lucy, '<message to="nobody@falcot.com" type="error"><body/></message>')
    assert lucy.take() == []
    # Presence is dropped silently; only Lucy's own roster gains the item (§3.1.2).
    await server.send(lucy, '<presence to="nobody@falcot.com" type="subscribe"/>')
    assert lucy.take_one().get("type") == "set"


async def test_rfc6120_10_4_other_domains_are_not_reachable_yet(server: Server) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    lucy.take()
    assert server.router.locate(parse_jid("user@debian.org")) is Where.REMOTE
    await server.send(lucy, '<message to="user@debian.org" id="m"><body>hi</body></message>')
    assert error_condition(lucy.take_one()) == "remote-server-not-found"


async def test_iq_to_the_server_itself_or_own_account_is_dispatched_by_namespace(
    server: Server,
) -> None:
    echo = Echo()
    server.router.register_iq_handler(echo)
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    for to in ("", ' to="falcot.com"', ' to="roland@falcot.com"'):
        await server.send(roland, f'<iq type="get" id="a"{to}><q xmlns="{ECHO}"/></iq>')
        reply = roland.take_one()
        assert (reply.get("type"), reply.get("id")) == ("result", "a"), text(reply)
    assert [str(c.to) for c in echo.contexts] == [
        "roland@falcot.com",
        "falcot.com",
        "roland@falcot.com",
    ]
    assert all(c.sender == roland.jid and c.is_admin for c in echo.contexts)


async def test_iq_errors_unknown_namespace_refusal_crash_and_bad_payloads(
    server: Server,
) -> None:
    server.router.register_iq_handler(Echo())
    lucy = await server.login("lucy@falcot.com", "home")
    lucy.take()
    cases = {
        '<q xmlns="urn:example:unknown"/>': "service-unavailable",
        f'<q xmlns="{ECHO}" mode="refuse"/>': "not-allowed",
        f'<q xmlns="{ECHO}" mode="crash"/>': "internal-server-error",
        f'<q xmlns="{ECHO}"/><q xmlns="{ECHO}"/>': "bad-request",
        "": "bad-request",
    }
    for payload, condition in cases.items():
        await server.send(lucy, f'<iq type="set" id="x" to="falcot.com">{payload}</iq>')
        assert error_condition(lucy.take_one()) == condition, payload
    await server.send(lucy, '<iq type="result" id="x" to="falcot.com"/>')
    assert lucy.take() == []


async def test_iq_to_another_account_only_for_handlers_that_serve_accounts(
    server: Server,
) -> None:
    echo = Echo()
    server.router.register_iq_handler(echo, for_accounts=True)
    lucy = await server.login("lucy@falcot.com", "home")
    lucy.take()
    await server.send(
        lucy, f'<iq type="get" id="v" to="roland@falcot.com"><q xmlns="{ECHO}"/></iq>'
    )
    assert lucy.take_one().get("type") == "result"
    assert echo.contexts[-1].to == parse_jid("roland@falcot.com")
    assert not echo.contexts[-1].is_admin
    roster = '<query xmlns="jabber:iq:roster"/>'
    await server.send(lucy, f'<iq type="get" id="r" to="roland@falcot.com">{roster}</iq>')
    assert error_condition(lucy.take_one()) == "service-unavailable"


async def test_iq_to_a_full_jid_goes_to_that_session(server: Server) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    roland = await server.login("roland@falcot.com", "laptop")
    lucy.take()
    roland.take()
    await server.send(
        lucy,
        '<iq type="get" id="p" to="roland@falcot.com/laptop"><ping xmlns="urn:xmpp:ping"/></iq>',
    )
    assert roland.take_one().get("from") == "lucy@falcot.com/home"
    await server.send(roland, '<iq type="result" id="p" to="lucy@falcot.com/home"/>')
    assert lucy.take_one().get("type") == "result"
    await server.send(
        lucy, '<iq type="get" id="q" to="roland@falcot.com/gone"><ping xmlns="urn:xmpp:ping"/></iq>'
    )
    assert error_condition(lucy.take_one()) == "service-unavailable"
    await server.send(lucy, '<iq type="result" id="q" to="roland@falcot.com/gone"/>')
    assert lucy.take() == []


async def test_component_domain_stanzas_go_to_the_component(server: Server) -> None:
    conference = Conference()
    server.router.register_component(conference)
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    await server.send(roland, '<presence to="room@conference.falcot.com/roland"/>')
    await server.send(
        lucy, '<message to="room@conference.falcot.com" type="groupchat"><body/></message>'
    )
    assert [(s.get("from"), admin) for s, admin in conference.received] == [
        ("roland@falcot.com/laptop", True),
        ("lucy@falcot.com/home", False),
    ]
    lucy.take()
    sender, to = parse_jid("room@conference.falcot.com/roland"), parse_jid("lucy@falcot.com/home")
    attributes = f'from="{sender}" to="{to}"'
    await server.router.route(
        stanza(f'<message {attributes} type="groupchat"><body>hi</body></message>'), sender, to
    )
    assert lucy.take_one().get("from") == "room@conference.falcot.com/roland"


async def test_xep0191_blocked_hook_drops_stanzas_both_ways() -> None:
    async def blocked(owner: JID, other: JID) -> bool:
        return (str(owner), str(other.bare)) == ("roland@falcot.com", "lucy@falcot.com")

    server = im_server(blocked=blocked)
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    roland.take()
    lucy.take()
    await server.send(lucy, '<message to="roland@falcot.com" id="in"><body>hi</body></message>')
    assert roland.take() == []
    assert lucy.take() == []
    await server.send(
        lucy, f'<iq to="roland@falcot.com/laptop" type="get" id="i"><q xmlns="{ECHO}"/></iq>'
    )
    assert error_condition(lucy.take_one()) == "service-unavailable"
    await server.send(roland, '<message to="lucy@falcot.com" id="out"><body>hi</body></message>')
    refused = roland.take_one()
    assert error_condition(refused) == "not-acceptable"
    # §3.5: the application-specific condition says why.
    assert refused.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked") is not None
    assert lucy.take() == []
    # Broadcast presence to a subscribed but blocked contact stays home too.
    store = server.router.roster.store
    await store.put(ROLAND, RosterItem(LUCY, subscription=Subscription.BOTH))
    await store.put(LUCY, RosterItem(ROLAND, subscription=Subscription.BOTH))
    await server.send(roland, "<presence><show>away</show></presence>")
    await server.send(lucy, "<presence><show>away</show></presence>")
    assert [s.get("from") for s in roland.take()] == ["roland@falcot.com/laptop"]
    assert [s.get("from") for s in lucy.take()] == ["lucy@falcot.com/home"]


class KeptRemote:
    """Other domains, as far as the router knows: what it sends them is kept."""

    def __init__(self) -> None:
        self.sent: list[Element] = []

    async def send(self, stanza: Element, sender: JID, to: JID) -> None:
        self.sent.append(stanza)


async def test_xep0191_3_5_a_blocked_remote_contact_gets_no_broadcast_but_its_errors() -> None:
    remote_lucy = parse_jid("lucy@ironmoon.example/home")

    async def blocked(owner: JID, other: JID) -> bool:
        return (owner, other.bare) == (ROLAND, remote_lucy.bare)

    server = im_server(blocked=blocked)
    remote = KeptRemote()
    server.router.federate(remote)
    await server.router.roster.store.put(
        ROLAND, RosterItem(remote_lucy.bare, subscription=Subscription.BOTH)
    )
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, "<presence><show>away</show></presence>")
    assert remote.sent == []
    # §3.6: her request is answered as if roland did not exist, and that answer leaves.
    laptop = parse_jid("roland@falcot.com/laptop")
    request = f'<iq from="{remote_lucy}" to="{laptop}" type="get" id="i"><q xmlns="{ECHO}"/></iq>'
    await server.router.route(stanza(request), remote_lucy, laptop)
    assert [error_condition(sent) for sent in remote.sent] == ["service-unavailable"]


async def test_broadcast_reaches_every_available_session(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    silent = await server.connect("raphael@falcot.com", "bot")
    for session in (roland, lucy):
        session.take()
    sent = server.router.broadcast(stanza("<message><body>maintenance at 22:00</body></message>"))
    assert sent == 2
    assert roland.take_one().get("to") == "roland@falcot.com/laptop"
    assert lucy.take_one().get("from") == "falcot.com"
    assert silent.take() == []


async def test_stanzas_of_an_unbound_session_are_dropped(server: Server) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    stranger = FakeSession(parse_jid("roland@falcot.com/laptop"))
    lucy.take()
    await server.send(stranger, '<message to="lucy@falcot.com"><body/></message>')
    assert lucy.take() == []
