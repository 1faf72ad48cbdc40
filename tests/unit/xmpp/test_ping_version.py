"""XMPP Ping (XEP-0199) and Software Version (XEP-0092) answered by the server."""

from __future__ import annotations

from importlib.metadata import version
from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.ping import PingHandler
from heron.xmpp.features.version import VersionHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname


class NoRouter:
    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        raise AssertionError("nothing is routed")


def context(to: str = "falcot.com") -> IqContext:
    return IqContext(parse_jid("roland@falcot.com/laptop"), parse_jid(to), False, NoRouter())


def iq(namespace: str, tag: str, type_: str = "get", to: str = "falcot.com") -> Element:
    stanza = Element(
        qname(NS.CLIENT, "iq"),
        {"type": type_, "id": "c2s1", "from": "roland@falcot.com/laptop", "to": to},
    )
    SubElement(stanza, qname(namespace, tag))
    return stanza


async def test_xep0199_4_2_server_answers_ping_with_empty_result() -> None:
    reply = await PingHandler().handle_iq(iq(NS.PING, "ping"), context())
    assert reply is not None
    assert reply.attrib == {
        "type": "result",
        "id": "c2s1",
        "to": "roland@falcot.com/laptop",
        "from": "falcot.com",
    }
    assert len(reply) == 0


async def test_xep0199_ping_to_bare_jid_is_answered_for_the_account() -> None:
    request = iq(NS.PING, "ping", to="lucy@falcot.com")
    reply = await PingHandler().handle_iq(request, context("lucy@falcot.com"))
    assert reply is not None and reply.get("type") == "result"
    assert reply.get("from") == "lucy@falcot.com"


async def test_xep0199_ping_set_is_bad_request() -> None:
    with pytest.raises(StanzaError) as caught:
        await PingHandler().handle_iq(iq(NS.PING, "ping", "set"), context())
    assert caught.value.condition is StanzaCondition.BAD_REQUEST


def test_xep0199_ping_is_advertised() -> None:
    assert PingHandler().disco_features == (NS.PING,)
    assert PingHandler().namespace == NS.PING


async def test_xep0092_2_name_and_installed_version_without_os() -> None:
    reply = await VersionHandler().handle_iq(iq(NS.VERSION, "query"), context())
    assert reply is not None and reply.get("type") == "result"
    query = reply.find(qname(NS.VERSION, "query"))
    assert query is not None
    assert query.findtext(qname(NS.VERSION, "name")) == "heron"
    assert query.findtext(qname(NS.VERSION, "version")) == version("heron")
    # §5: the OS is an attacker's hint, so it is left out unless configured.
    assert query.find(qname(NS.VERSION, "os")) is None


async def test_xep0092_os_when_configured() -> None:
    handler = VersionHandler(version="9.9", os="Debian GNU/Linux 13")
    reply = await handler.handle_iq(iq(NS.VERSION, "query"), context())
    assert reply is not None
    assert reply.findtext(f"{qname(NS.VERSION, 'query')}/{qname(NS.VERSION, 'os')}") == (
        "Debian GNU/Linux 13"
    )
    assert reply.findtext(f"{qname(NS.VERSION, 'query')}/{qname(NS.VERSION, 'version')}") == "9.9"


@pytest.mark.parametrize(
    ("type_", "to", "condition"),
    [
        ("set", "falcot.com", StanzaCondition.BAD_REQUEST),
        ("get", "lucy@falcot.com", StanzaCondition.SERVICE_UNAVAILABLE),
    ],
)
async def test_xep0092_only_a_get_to_the_server(
    type_: str, to: str, condition: StanzaCondition
) -> None:
    with pytest.raises(StanzaError) as caught:
        await VersionHandler().handle_iq(iq(NS.VERSION, "query", type_, to), context(to))
    assert caught.value.condition is condition
