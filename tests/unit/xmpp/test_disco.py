"""Service Discovery (XEP-0030) of the server: identity, gathered features, items, nodes."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.disco import (
    ACCOUNT_IDENTITY,
    DiscoInfo,
    DiscoInfoHandler,
    DiscoItem,
    DiscoItemsHandler,
    HasDiscoFeatures,
    Identity,
)
from heron.xmpp.features.ping import PingHandler
from heron.xmpp.features.version import VersionHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.pep.service import DISCO_FEATURES
from heron.xmpp.stanza import NS, qname

INFO = qname(NS.DISCO_INFO, "query")
ITEMS = qname(NS.DISCO_ITEMS, "query")
MUC = DiscoItem("conference.falcot.com", "Chatrooms")


class NoRouter:
    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        raise AssertionError("nothing is routed")


class Late:
    disco_features = ("urn:example:late",)


class Nodes:
    def disco_info(self, node: str, context: IqContext) -> DiscoInfo | None:
        if node != "urn:example:node":
            return None
        return DiscoInfo((Identity("automation", "command-list"),), ("urn:example:f",))

    def disco_items(self, node: str, context: IqContext) -> Sequence[DiscoItem] | None:
        if node != "urn:example:node":
            return None
        return (DiscoItem("falcot.com", "One", "urn:example:one"),)


def context(sender: str = "roland@falcot.com/laptop", to: str = "falcot.com") -> IqContext:
    return IqContext(parse_jid(sender), parse_jid(to), False, NoRouter())


def get(tag: str, node: str | None = None, type_: str = "get") -> Element:
    iq = Element(qname(NS.CLIENT, "iq"), {"type": type_, "id": "d1"})
    SubElement(iq, tag, {"node": node} if node else {})
    return iq


@pytest.fixture
def items() -> DiscoItemsHandler:
    return DiscoItemsHandler([MUC], nodes=[Nodes()])


@pytest.fixture
def info(items: DiscoItemsHandler) -> tuple[DiscoInfoHandler, list[HasDiscoFeatures]]:
    handlers: list[HasDiscoFeatures] = [PingHandler(), VersionHandler(), items]
    handler = DiscoInfoHandler(handlers, nodes=[Nodes()])
    handlers.append(handler)
    return handler, handlers


async def test_xep0030_3_1_server_identity_and_every_handlers_features(
    info: tuple[DiscoInfoHandler, list[HasDiscoFeatures]],
) -> None:
    handler, handlers = info
    handlers.append(Late())  # registered after construction: still advertised
    reply = await handler.handle_iq(get(INFO), context())
    assert reply is not None and reply.get("type") == "result"
    query = reply.find(INFO)
    assert query is not None and query.get("node") is None
    identities = [dict(i.attrib) for i in query.iterfind(qname(NS.DISCO_INFO, "identity"))]
    assert identities == [{"category": "server", "type": "im", "name": "heron"}]
    features = [f.get("var") for f in query.iterfind(qname(NS.DISCO_INFO, "feature"))]
    assert features == sorted(
        [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.PING, NS.VERSION, "urn:example:late"]
    )


async def test_xep0030_4_1_server_items_are_the_components(items: DiscoItemsHandler) -> None:
    reply = await items.handle_iq(get(ITEMS), context())
    assert reply is not None
    listed = [dict(i.attrib) for i in reply.iter(qname(NS.DISCO_ITEMS, "item"))]
    assert listed == [{"jid": "conference.falcot.com", "name": "Chatrooms"}]


async def test_xep0030_3_2_and_4_2_nodes_are_answered_by_their_provider(
    info: tuple[DiscoInfoHandler, list[HasDiscoFeatures]], items: DiscoItemsHandler
) -> None:
    reply = await info[0].handle_iq(get(INFO, "urn:example:node"), context())
    assert reply is not None
    query = reply.find(INFO)
    assert query is not None and query.get("node") == "urn:example:node"
    assert [f.get("var") for f in query.iter(qname(NS.DISCO_INFO, "feature"))] == ["urn:example:f"]
    reply = await items.handle_iq(get(ITEMS, "urn:example:node"), context())
    assert reply is not None
    item = reply.find(f"{ITEMS}/{qname(NS.DISCO_ITEMS, 'item')}")
    assert item is not None and item.attrib == {
        "jid": "falcot.com",
        "name": "One",
        "node": "urn:example:one",
    }


async def test_xep0030_unknown_node_is_item_not_found(
    info: tuple[DiscoInfoHandler, list[HasDiscoFeatures]], items: DiscoItemsHandler
) -> None:
    for handler, tag in ((info[0], INFO), (items, ITEMS)):
        with pytest.raises(StanzaError) as caught:
            await handler.handle_iq(get(tag, "urn:example:nothing"), context())
        assert caught.value.condition is StanzaCondition.ITEM_NOT_FOUND


async def test_xep0030_own_account_is_account_registered(
    info: tuple[DiscoInfoHandler, list[HasDiscoFeatures]], items: DiscoItemsHandler
) -> None:
    reply = await info[0].handle_iq(get(INFO), context(to="roland@falcot.com"))
    assert reply is not None
    identity = reply.find(f"{INFO}/{qname(NS.DISCO_INFO, 'identity')}")
    assert identity is not None and identity.attrib == {"category": "account", "type": "registered"}
    reply = await items.handle_iq(get(ITEMS), context(to="roland@falcot.com"))
    assert reply is not None
    query = reply.find(ITEMS)
    assert query is not None and len(query) == 0


async def test_xep0163_7_own_account_is_a_pep_service_with_its_features() -> None:
    account = DiscoInfo(
        (ACCOUNT_IDENTITY, Identity("pubsub", "pep")), (NS.DISCO_INFO, *DISCO_FEATURES)
    )
    handler = DiscoInfoHandler([], account=account)
    reply = await handler.handle_iq(get(INFO), context(to="roland@falcot.com"))
    assert reply is not None
    identities = {
        (i.get("category"), i.get("type")) for i in reply.iter(qname(NS.DISCO_INFO, "identity"))
    }
    assert identities == {("account", "registered"), ("pubsub", "pep")}
    features = {f.get("var") for f in reply.iter(qname(NS.DISCO_INFO, "feature"))}
    assert "http://jabber.org/protocol/pubsub#publish-options" in features
    assert "http://jabber.org/protocol/pubsub#subscribe" not in features  # only what works


async def test_xep0030_another_account_is_not_disclosed(
    info: tuple[DiscoInfoHandler, list[HasDiscoFeatures]], items: DiscoItemsHandler
) -> None:
    for handler, tag in ((info[0], INFO), (items, ITEMS)):
        with pytest.raises(StanzaError) as caught:
            await handler.handle_iq(get(tag), context(to="lucy@falcot.com"))
        assert caught.value.condition is StanzaCondition.SERVICE_UNAVAILABLE


async def test_xep0030_set_is_bad_request(
    info: tuple[DiscoInfoHandler, list[HasDiscoFeatures]], items: DiscoItemsHandler
) -> None:
    for handler, tag in ((info[0], INFO), (items, ITEMS)):
        with pytest.raises(StanzaError) as caught:
            await handler.handle_iq(get(tag, type_="set"), context())
        assert caught.value.condition is StanzaCondition.BAD_REQUEST
