"""Blocking Command (XEP-0191): the blocklist, block, unblock, pushes, and the router's check."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.store.memory import MemoryBlocklistStore
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.blocking import MAX_BLOCKLIST, BlockingHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import FakeSession, Server, im_server

ITEM = qname(NS.BLOCKING, "item")
ROLAND = parse_jid("roland@falcot.com")
LAPTOP = ROLAND.with_resource("laptop")
PHONE = ROLAND.with_resource("phone")


class CountingBlocklists(MemoryBlocklistStore):
    """Counts reads, to show the handler's cache at work."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def blocklist(self, owner: str) -> list[str]:
        self.reads += 1
        return await super().blocklist(owner)


class Sessions:
    def __init__(self, *resources: JID) -> None:
        self.connected = list(resources)

    def resources(self, account: JID) -> list[JID]:
        return [jid for jid in self.connected if jid.bare == account]


class Router:
    def __init__(self) -> None:
        self.routed: list[Element] = []

    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        assert (stanza.get("from"), stanza.get("to")) == (str(sender), str(to))
        self.routed.append(stanza)


@pytest.fixture
def store() -> CountingBlocklists:
    return CountingBlocklists()


@pytest.fixture
def sessions() -> Sessions:
    return Sessions(LAPTOP, PHONE)


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def handler(store: CountingBlocklists, sessions: Sessions) -> BlockingHandler:
    return BlockingHandler(store, sessions)


def request(type_: str, tag: str, *jids: str) -> Element:
    iq = Element(qname(NS.CLIENT, "iq"), {"type": type_, "id": "b1"})
    payload = SubElement(iq, qname(NS.BLOCKING, tag))
    for jid in jids:
        SubElement(payload, ITEM, {"jid": jid})
    return iq


def context(router: Router, sender: JID = LAPTOP, to: str = "falcot.com") -> IqContext:
    return IqContext(sender, parse_jid(to), False, router)


def jids_of(element: Element) -> list[str]:
    return [item.get("jid", "") for item in element.iterfind(f".//{ITEM}")]


async def test_xep0191_3_2_empty_blocklist(handler: BlockingHandler, router: Router) -> None:
    reply = await handler.handle_iq(request("get", "blocklist"), context(router))
    assert reply is not None and reply.get("type") == "result"
    blocklist = reply.find(qname(NS.BLOCKING, "blocklist"))
    assert blocklist is not None and len(blocklist) == 0


async def test_xep0191_3_3_block_then_blocklist_lists_prepared_jids(
    handler: BlockingHandler, router: Router, store: CountingBlocklists
) -> None:
    block = request("set", "block", "Romeo@Montague.NET", "example.org", "romeo@montague.net")
    reply = await handler.handle_iq(block, context(router))
    assert reply is not None and reply.get("type") == "result"
    assert store.lists["roland@falcot.com"] == ["romeo@montague.net", "example.org"]
    reply = await handler.handle_iq(request("get", "blocklist"), context(router))
    assert reply is not None
    assert jids_of(reply) == ["romeo@montague.net", "example.org"]


async def test_xep0191_3_3_block_is_pushed_to_interested_resources(
    handler: BlockingHandler, router: Router, sessions: Sessions
) -> None:
    await handler.handle_iq(request("get", "blocklist"), context(router, LAPTOP))
    await handler.handle_iq(request("get", "blocklist"), context(router, PHONE))
    sessions.connected.append(ROLAND.with_resource("tablet"))  # never asked: no push
    await handler.handle_iq(request("set", "block", "romeo@montague.net"), context(router))
    assert [push.get("to") for push in router.routed] == [str(LAPTOP), str(PHONE)]
    for push in router.routed:
        assert push.tag == qname(NS.CLIENT, "iq")
        assert push.get("type") == "set" and push.get("from") == "roland@falcot.com"
        assert push.find(qname(NS.BLOCKING, "block")) is not None
        assert jids_of(push) == ["romeo@montague.net"]
    assert len({push.get("id") for push in router.routed}) == 2


async def test_xep0191_pushes_skip_resources_gone_offline(
    handler: BlockingHandler, router: Router, sessions: Sessions
) -> None:
    await handler.handle_iq(request("get", "blocklist"), context(router, LAPTOP))
    await handler.handle_iq(request("get", "blocklist"), context(router, PHONE))
    sessions.connected.remove(LAPTOP)
    await handler.handle_iq(request("set", "unblock", "romeo@montague.net"), context(router))
    assert [push.get("to") for push in router.routed] == [str(PHONE)]


async def test_xep0191_3_3_block_without_items_is_bad_request(
    handler: BlockingHandler, router: Router
) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request("set", "block"), context(router))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST


@pytest.mark.parametrize("jid", ["", "@falcot.com", "a@b@/", "user@domain/"])
async def test_xep0191_3_3_malformed_jid_is_jid_malformed(
    handler: BlockingHandler, router: Router, store: CountingBlocklists, jid: str
) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request("set", "block", "ok@example.net", jid), context(router))
    assert caught.value.condition is StanzaCondition.JID_MALFORMED
    assert store.lists == {}


async def test_xep0191_3_4_unblock_some_and_unblock_all(
    handler: BlockingHandler, router: Router, store: CountingBlocklists
) -> None:
    await handler.handle_iq(request("get", "blocklist"), context(router))
    await handler.handle_iq(
        request("set", "block", "a@x.net", "b@x.net", "c@x.net"), context(router)
    )
    await handler.handle_iq(request("set", "unblock", "b@x.net"), context(router))
    assert store.lists["roland@falcot.com"] == ["a@x.net", "c@x.net"]
    assert not await handler.is_blocked(ROLAND, parse_jid("b@x.net"))
    assert await handler.is_blocked(ROLAND, parse_jid("a@x.net"))

    await handler.handle_iq(request("set", "unblock"), context(router))
    assert store.lists.get("roland@falcot.com", []) == []
    assert not await handler.is_blocked(ROLAND, parse_jid("a@x.net"))
    last = router.routed[-1].find(qname(NS.BLOCKING, "unblock"))
    assert last is not None and len(last) == 0  # §3.4: unblock-all pushed as an empty <unblock/>


@pytest.mark.parametrize(
    ("item", "other", "blocked"),
    [
        ("romeo@montague.net/orchard", "romeo@montague.net/orchard", True),
        ("romeo@montague.net/orchard", "romeo@montague.net/garden", False),
        ("romeo@montague.net/orchard", "romeo@montague.net", False),
        ("romeo@montague.net", "romeo@montague.net/garden", True),
        ("romeo@montague.net", "ROMEO@Montague.net", True),
        ("montague.net/orchard", "romeo@montague.net/orchard", True),
        ("montague.net/orchard", "romeo@montague.net/garden", False),
        ("montague.net", "romeo@montague.net/garden", True),
        ("montague.net", "montague.net", True),
        ("montague.net", "capulet.com", False),
        ("montague.net", "montague.net.evil.com", False),
    ],
)
async def test_xep0016_2_1_item_matching_order(
    handler: BlockingHandler, router: Router, item: str, other: str, blocked: bool
) -> None:
    await handler.handle_iq(request("set", "block", item), context(router))
    assert await handler.is_blocked(ROLAND.with_resource("any"), parse_jid(other)) is blocked


async def test_is_blocked_reads_the_store_once_per_owner(
    handler: BlockingHandler, store: CountingBlocklists
) -> None:
    store.lists["roland@falcot.com"] = ["romeo@montague.net"]
    assert await handler.is_blocked(ROLAND, parse_jid("romeo@montague.net/x"))
    assert not await handler.is_blocked(ROLAND, parse_jid("juliet@capulet.com"))
    assert store.reads == 1


async def test_blocklist_is_capped(
    handler: BlockingHandler, router: Router, store: CountingBlocklists
) -> None:
    store.lists["roland@falcot.com"] = [f"u{n}@x.net" for n in range(MAX_BLOCKLIST)]
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request("set", "block", "one-more@x.net"), context(router))
    assert caught.value.condition is StanzaCondition.POLICY_VIOLATION
    # Blocking one already there does not grow the list, so it is allowed.
    await handler.handle_iq(request("set", "block", "u0@x.net"), context(router))


async def test_blocking_oneself_is_not_acceptable(handler: BlockingHandler, router: Router) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request("set", "block", "Roland@falcot.com"), context(router))
    assert caught.value.condition is StanzaCondition.NOT_ACCEPTABLE


async def test_another_users_blocklist_is_forbidden(
    handler: BlockingHandler, router: Router
) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request("get", "blocklist"), context(router, to="lucy@falcot.com"))
    assert caught.value.condition is StanzaCondition.FORBIDDEN


@pytest.mark.parametrize(("type_", "tag"), [("set", "blocklist"), ("get", "block"), ("get", "x")])
async def test_xep0191_wrong_type_or_payload_is_bad_request(
    handler: BlockingHandler, router: Router, type_: str, tag: str
) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request(type_, tag, "a@x.net"), context(router))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST


@given(st.text(min_size=1, max_size=60))
async def test_any_item_jid_is_kept_or_refused_with_a_stanza_error(text: str) -> None:
    handler = BlockingHandler(CountingBlocklists(), Sessions())
    try:
        await handler.handle_iq(request("set", "block", text), context(Router()))
    except StanzaError as error:
        assert error.condition in {StanzaCondition.JID_MALFORMED, StanzaCondition.NOT_ACCEPTABLE}
    else:
        assert await handler.is_blocked(ROLAND, parse_jid(text))


async def _blocking_server() -> tuple[Server, FakeSession, FakeSession]:
    """Roland and Lucy, subscribed to each other and online, on a server whose router
    checks a real blocklist."""
    handlers: list[BlockingHandler] = []

    async def blocked(owner: JID, other: JID) -> bool:
        return await handlers[0].is_blocked(owner, other)

    server = im_server(blocked=blocked)
    handler = BlockingHandler(MemoryBlocklistStore(), server.router, server.router.presence)
    handlers.append(handler)
    server.router.register_iq_handler(handler)
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    for user, contact in ((roland, lucy), (lucy, roland)):
        await server.send(user, f'<presence to="{contact.jid.bare}" type="subscribe"/>')
        await server.send(contact, f'<presence to="{user.jid.bare}" type="subscribed"/>')
    await server.send(roland, "<presence/>")
    roland.take()
    lucy.take()
    return server, roland, lucy


def _presences_from(session: FakeSession, sender: str) -> list[str | None]:
    return [
        s.get("type")
        for s in session.take()
        if s.tag.endswith("presence") and s.get("from") == sender
    ]


async def test_xep0191_3_3_a_blocked_subscriber_sees_the_user_go_unavailable() -> None:
    server, roland, lucy = await _blocking_server()
    item = '<item jid="lucy@falcot.com"/>'
    await server.send(
        roland, f'<iq type="set" id="b"><block xmlns="urn:xmpp:blocking">{item}</block></iq>'
    )
    assert _presences_from(lucy, "roland@falcot.com/laptop") == ["unavailable"]
    await server.send(roland, "<presence><show>away</show></presence>")
    assert _presences_from(lucy, "roland@falcot.com/laptop") == []  # blocked from now on


async def test_xep0191_3_4_an_unblocked_subscriber_gets_the_current_presence_again() -> None:
    server, roland, lucy = await _blocking_server()
    item = '<item jid="falcot.com"/>'  # a domain item matches Lucy too (XEP-0016 §2.1)
    await server.send(
        roland, f'<iq type="set" id="b"><block xmlns="urn:xmpp:blocking">{item}</block></iq>'
    )
    lucy.take()
    await server.send(roland, '<iq type="set" id="u"><unblock xmlns="urn:xmpp:blocking"/></iq>')
    assert _presences_from(lucy, "roland@falcot.com/laptop") == [None]  # available again
