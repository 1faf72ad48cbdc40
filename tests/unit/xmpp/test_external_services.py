"""External Service Discovery (XEP-0215) handing out heron's TURN REST credentials."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.credentials import TurnSecret
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.external_services import ExternalServicesHandler, Transport
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname

NOW = 1_767_323_045.75
TTL = 600
SECRET = TurnSecret(b"0123456789abcdef-shared")
SERVICE = qname(NS.EXTDISCO, "service")
REALM = "falcot.com"


class NoRouter:
    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        raise AssertionError("nothing is routed")


def handler(
    tls_port: int | None = 5349,
    transports: tuple[Transport, ...] = (
        Transport.UDP,
        Transport.TCP,
    ),
    port: int | None = 3478,
    mux_port: int | None = None,
) -> ExternalServicesHandler:
    return ExternalServicesHandler(
        SECRET,
        host="turn.falcot.com",
        port=port,
        transports=transports,
        tls_port=tls_port,
        mux_port=mux_port,
        ttl=TTL,
        local_domains={"falcot.com"},
        clock=lambda: NOW,
    )


def context(sender: str = "roland@falcot.com/laptop", to: str = "falcot.com") -> IqContext:
    return IqContext(parse_jid(sender), parse_jid(to), False, NoRouter())


def services_iq(type_: str | None = None) -> Element:
    iq = Element(qname(NS.CLIENT, "iq"), {"type": "get", "id": "e1"})
    SubElement(iq, qname(NS.EXTDISCO, "services"), {"type": type_} if type_ else {})
    return iq


def credentials_iq(**attributes: str) -> Element:
    iq = Element(qname(NS.CLIENT, "iq"), {"type": "get", "id": "e2"})
    SubElement(SubElement(iq, qname(NS.EXTDISCO, "credentials")), SERVICE, attributes)
    return iq


def services(reply: Element | None) -> list[dict[str, str]]:
    assert reply is not None and reply.get("type") == "result"
    return [dict(service.attrib) for service in reply.iter(SERVICE)]


def summary(listed: list[dict[str, str]]) -> list[tuple[str, str, str, str | None]]:
    return [(s["type"], s["transport"], s["port"], s.get("restricted")) for s in listed]


async def test_xep0215_3_1_services_like_mod_turn_external() -> None:
    listed = services(await handler().handle_iq(services_iq(), context()))
    assert summary(listed) == [
        ("stun", "udp", "3478", None),
        ("stun", "tcp", "3478", None),
        ("turn", "udp", "3478", "1"),
        ("turn", "tcp", "3478", "1"),
        ("turns", "tcp", "5349", "1"),
    ]
    assert {s["host"] for s in listed} == {"turn.falcot.com"}
    assert all("username" not in s and "password" not in s for s in listed if s["type"] == "stun")


async def test_xep0215_3_1_turns_and_turn_on_the_mux_port_come_first() -> None:
    """Issue 13: with the mux on, TURN over TLS and over UDP on its port lead the list."""
    listed = services(await handler(mux_port=443).handle_iq(services_iq(), context()))
    assert summary(listed) == [
        ("turns", "tcp", "443", "1"),
        ("turn", "udp", "443", "1"),
        ("stun", "udp", "3478", None),
        ("stun", "tcp", "3478", None),
        ("turn", "udp", "3478", "1"),
        ("turn", "tcp", "3478", "1"),
        ("turns", "tcp", "5349", "1"),
    ]
    assert {s["host"] for s in listed} == {"turn.falcot.com"}
    request = credentials_iq(host="turn.falcot.com", type="turns", port="443")
    reply = await handler(mux_port=443).handle_iq(request, context())
    assert summary(services(reply)) == [("turns", "tcp", "443", "1")]


async def test_xep0215_3_1_mux_port_alone() -> None:
    only_mux = handler(port=None, tls_port=None, mux_port=443)
    listed = services(await only_mux.handle_iq(services_iq(), context()))
    assert summary(listed) == [("turns", "tcp", "443", "1"), ("turn", "udp", "443", "1")]


async def test_xep0215_no_turns_without_tls_and_udp_only() -> None:
    only_udp = handler(tls_port=None, transports=(Transport.UDP,))
    listed = services(await only_udp.handle_iq(services_iq(), context()))
    assert summary(listed) == [("stun", "udp", "3478", None), ("turn", "udp", "3478", "1")]


async def test_xep0215_issued_credentials_verify_with_the_turn_secret() -> None:
    listed = services(await handler().handle_iq(services_iq("turn"), context()))
    assert [s["type"] for s in listed] == ["turn", "turn"]
    for service in listed:
        username, password = service["username"], service["password"]
        assert username == f"{int(NOW) + TTL}:roland@falcot.com"
        assert password == SECRET.password(username)
        keys = SECRET.long_term_keys(username, REALM, now=NOW + TTL - 1)
        text = f"{username}:{REALM}:{password}".encode()
        assert keys == (hashlib.md5(text).digest(), hashlib.sha256(text).digest())


async def test_xep0215_credentials_expire() -> None:
    (service, *_) = services(await handler().handle_iq(services_iq("turns"), context()))
    expires = int(NOW) + TTL
    # XEP-0082 DateTime, as the 'expires' attribute must be.
    assert service["expires"] == datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert SECRET.long_term_keys(service["username"], REALM, now=expires) is not None
    assert SECRET.long_term_keys(service["username"], REALM, now=expires + 1) is None


async def test_xep0215_3_1_services_of_one_type() -> None:
    listed = services(await handler().handle_iq(services_iq("stun"), context()))
    assert summary(listed) == [("stun", "udp", "3478", None), ("stun", "tcp", "3478", None)]
    assert services(await handler().handle_iq(services_iq("ftp"), context())) == []


async def test_xep0215_3_2_credentials_request() -> None:
    request = credentials_iq(host="turn.falcot.com", type="turn", port="3478")
    reply = await handler().handle_iq(request, context())
    assert reply is not None and reply.find(qname(NS.EXTDISCO, "credentials")) is not None
    listed = services(reply)
    assert summary(listed) == [("turn", "udp", "3478", "1"), ("turn", "tcp", "3478", "1")]
    assert all(s["password"] == SECRET.password(s["username"]) for s in listed)


@pytest.mark.parametrize(
    "attributes",
    [
        {"host": "turn.example.net", "type": "turn"},
        {"host": "turn.falcot.com", "type": "turn", "port": "9999"},
        {"host": "turn.falcot.com", "type": "stun"},
        {"type": "turn"},
    ],
)
async def test_xep0215_3_2_unknown_service_is_item_not_found(attributes: dict[str, str]) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler().handle_iq(credentials_iq(**attributes), context())
    assert caught.value.condition is StanzaCondition.ITEM_NOT_FOUND


async def test_remote_users_get_no_relay_credentials() -> None:
    with pytest.raises(StanzaError) as caught:
        await handler().handle_iq(services_iq(), context(sender="eve@example.net/x"))
    assert caught.value.condition is StanzaCondition.FORBIDDEN


async def test_xep0215_bad_requests() -> None:
    iq = services_iq()
    iq.set("type", "set")
    with pytest.raises(StanzaError) as caught:
        await handler().handle_iq(iq, context())
    assert caught.value.condition is StanzaCondition.BAD_REQUEST
    empty = Element(qname(NS.CLIENT, "iq"), {"type": "get"})
    SubElement(empty, qname(NS.EXTDISCO, "other"))
    with pytest.raises(StanzaError) as caught:
        await handler().handle_iq(empty, context())
    assert caught.value.condition is StanzaCondition.BAD_REQUEST
