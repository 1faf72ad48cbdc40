"""vcard-temp (XEP-0054): one's own vCard set and read back, anyone's read by bare JID."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.store.memory import MemoryVCardStore
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.vcard import MAX_VCARD_BYTES, VCardHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname

NOW = 1_767_323_045.0
VCARD = qname(NS.VCARD, "vCard")


class NoRouter:
    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        raise AssertionError("nothing is routed")


def context(sender: str, to: str) -> IqContext:
    return IqContext(parse_jid(sender), parse_jid(to), False, NoRouter())


def vcard(full_name: str, photo: str = "") -> Element:
    card = Element(VCARD)
    SubElement(card, qname(NS.VCARD, "FN")).text = full_name
    if photo:
        binval = SubElement(SubElement(card, qname(NS.VCARD, "PHOTO")), qname(NS.VCARD, "BINVAL"))
        binval.text = photo
    SubElement(card, qname("urn:example:x", "X-CUSTOM"), {"a": "1"}).text = "kept"
    return card


def iq(type_: str, payload: Element, to: str | None = None) -> Element:
    stanza = Element(qname(NS.CLIENT, "iq"), {"type": type_, "id": "v1"})
    if to:
        stanza.set("to", to)
    stanza.append(payload)
    return stanza


@pytest.fixture
def store() -> MemoryVCardStore:
    return MemoryVCardStore()


@pytest.fixture
def handler(store: MemoryVCardStore) -> VCardHandler:
    return VCardHandler(store, clock=lambda: NOW)


ROLAND = "roland@falcot.com/laptop"


async def test_xep0054_3_2_update_then_3_1_retrieve_own_vcard(
    handler: VCardHandler, store: MemoryVCardStore
) -> None:
    reply = await handler.handle_iq(
        iq("set", vcard("Roland Mas — ü")), context(ROLAND, "falcot.com")
    )
    assert reply is not None and reply.get("type") == "result" and len(reply) == 0
    assert store.vcards["roland@falcot.com"][1] == NOW

    reply = await handler.handle_iq(iq("get", Element(VCARD)), context(ROLAND, "falcot.com"))
    assert reply is not None and reply.get("type") == "result"
    card = reply.find(VCARD)
    assert card is not None
    assert card.findtext(qname(NS.VCARD, "FN")) == "Roland Mas — ü"
    custom = card.find(qname("urn:example:x", "X-CUSTOM"))
    assert custom is not None and custom.text == "kept" and custom.get("a") == "1"


async def test_xep0054_3_2_set_to_own_bare_jid(
    handler: VCardHandler, store: MemoryVCardStore
) -> None:
    request = iq("set", vcard("Roland"), to="roland@falcot.com")
    await handler.handle_iq(request, context(ROLAND, "roland@falcot.com"))
    assert "roland@falcot.com" in store.vcards


async def test_xep0054_3_3_retrieve_another_users_vcard(handler: VCardHandler) -> None:
    await handler.handle_iq(
        iq("set", vcard("Lucy")), context("lucy@falcot.com/phone", "falcot.com")
    )
    request = iq("get", Element(VCARD), to="lucy@falcot.com")
    reply = await handler.handle_iq(request, context(ROLAND, "lucy@falcot.com"))
    assert reply is not None
    assert reply.findtext(f"{VCARD}/{qname(NS.VCARD, 'FN')}") == "Lucy"
    assert reply.get("from") == "lucy@falcot.com"


async def test_xep0054_3_1_missing_vcard_is_item_not_found(handler: VCardHandler) -> None:
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(iq("get", Element(VCARD)), context(ROLAND, "falcot.com"))
    assert caught.value.condition is StanzaCondition.ITEM_NOT_FOUND


async def test_xep0054_3_2_setting_another_users_vcard_is_forbidden(
    handler: VCardHandler, store: MemoryVCardStore
) -> None:
    request = iq("set", vcard("Not Lucy"), to="lucy@falcot.com")
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request, context(ROLAND, "lucy@falcot.com"))
    assert caught.value.condition is StanzaCondition.FORBIDDEN
    assert store.vcards == {}


async def test_vcard_over_the_size_cap_is_not_acceptable(
    handler: VCardHandler, store: MemoryVCardStore
) -> None:
    big = vcard("Roland", photo="A" * MAX_VCARD_BYTES)
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(iq("set", big), context(ROLAND, "falcot.com"))
    assert caught.value.condition is StanzaCondition.NOT_ACCEPTABLE
    assert store.vcards == {}


async def test_vcard_just_under_the_size_cap_is_kept(store: MemoryVCardStore) -> None:
    handler = VCardHandler(store, clock=lambda: NOW, max_bytes=4096)
    card = vcard("Roland", photo="A" * 3800)
    await handler.handle_iq(iq("set", card), context(ROLAND, "falcot.com"))
    assert len(store.vcards["roland@falcot.com"][0].encode()) <= 4096


async def test_vcard_nested_too_deep_is_refused_not_a_crash(handler: VCardHandler) -> None:
    card = Element(VCARD)
    inner = card
    for _ in range(5000):
        inner = SubElement(inner, qname(NS.VCARD, "X"))
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(iq("set", card), context(ROLAND, "falcot.com"))
    assert caught.value.condition is StanzaCondition.NOT_ACCEPTABLE


@pytest.mark.parametrize("type_", ["get", "set"])
async def test_vcard_iq_without_vcard_element_is_bad_request(
    handler: VCardHandler, type_: str
) -> None:
    request = iq(type_, Element(qname(NS.VCARD, "other")))
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(request, context(ROLAND, "falcot.com"))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST


async def test_corrupt_stored_vcard_is_internal_server_error(
    handler: VCardHandler, store: MemoryVCardStore
) -> None:
    store.vcards["roland@falcot.com"] = ("<vCard", NOW)
    with pytest.raises(StanzaError) as caught:
        await handler.handle_iq(iq("get", Element(VCARD)), context(ROLAND, "falcot.com"))
    assert caught.value.condition is StanzaCondition.INTERNAL_SERVER_ERROR
