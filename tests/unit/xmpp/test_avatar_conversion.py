"""Avatar conversion (XEP-0398) and vCard4 (XEP-0292) through the router: the XEP-0084
avatar as vcard-temp's PHOTO and the reverse, the XEP-0153 hash stamped on available
presence, vCard4 by iq over the PEP item, and malformed avatars and PHOTOs."""

from __future__ import annotations

import base64
import hashlib
from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.store.memory import MemoryVCardStore
from heron.xmpp.errors import StanzaError
from heron.xmpp.features.vcard import VCardHandler
from heron.xmpp.pep.avatar import (
    AVATAR_DATA,
    AVATAR_METADATA,
    VCARD4,
    VCARD_UPDATE,
    avatar_of_photo,
    current_id,
    photo_of_avatar,
    stamp_presence,
)
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import FakeSession, error_condition, stanza, text
from tests.unit.xmpp.test_pep import Pep, events, item_ids
from tests.unit.xmpp.test_presence import subscribe

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PNG_ID = hashlib.sha1(PNG).hexdigest()
PNG_B64 = base64.b64encode(PNG).decode()
ROLAND = "roland@falcot.com"


def metadata(*infos: str) -> str:
    return f'<metadata xmlns="{AVATAR_METADATA}">{"".join(infos)}</metadata>'


def info(avatar_id: str = PNG_ID, extra: str = "") -> str:
    return f'<info id="{avatar_id}" type="image/png" bytes="{len(PNG)}"{extra}/>'


def data(b64: str = PNG_B64) -> str:
    return f'<data xmlns="{AVATAR_DATA}">{b64}</data>'


def photo(binval: str = PNG_B64, type_: str = "image/png") -> str:
    parts = f"<TYPE>{type_}</TYPE>" if type_ else ""
    return f'<PHOTO xmlns="{NS.VCARD}">{parts}<BINVAL>{binval}</BINVAL></PHOTO>'


def update_photo(presence: Element) -> str | None:
    found = presence.find(f"{{{VCARD_UPDATE}}}x/{{{VCARD_UPDATE}}}photo")
    return None if found is None else found.text or ""


@pytest.fixture
def pep() -> Pep:
    pep = Pep()
    router = pep.server.router
    vcards = VCardHandler(MemoryVCardStore(), clock=lambda: 1.0, avatars=pep.service)
    router.register_iq_handler(vcards, for_accounts=True)
    router.presence.stamp = pep.service.stamp
    return pep


async def publish_avatar(pep: Pep, session: FakeSession, b64: str = PNG_B64) -> None:
    assert item_ids(await pep.publish(session, AVATAR_DATA, data(b64), PNG_ID)) == [PNG_ID]
    assert item_ids(await pep.publish(session, AVATAR_METADATA, metadata(info()), PNG_ID))


async def vcard_get(pep: Pep, session: FakeSession, owner: str = "") -> Element:
    return await pep.iq(session, f'type="get"><vCard xmlns="{NS.VCARD}"/>', to=owner)


async def vcard_set(pep: Pep, session: FakeSession, inner: str) -> Element:
    return await pep.iq(session, f'type="set"><vCard xmlns="{NS.VCARD}"><FN>R</FN>{inner}</vCard>')


# --- the sans-IO rules ------------------------------------------------------------------


def test_xep0398_3_1_the_info_without_url_is_the_avatar() -> None:
    external = info("f" * 40, ' url="https://example.com/a.png"')
    assert current_id(stanza(metadata(external, info()))) == (PNG_ID, "image/png")
    assert current_id(stanza(metadata())) is None  # XEP-0084 §4.5: disabled
    assert current_id(stanza(metadata(info("not-a-sha1")))) is None
    assert current_id(None) is None


@pytest.mark.parametrize(
    ("b64", "why"),
    [
        (base64.b64encode(PNG[:-1]).decode(), "another image than the id says"),
        ("!!!not base64!!!", "not base64"),
        ("", "empty"),
    ],
)
def test_xep0398_3_1_data_that_is_not_the_ids_image_gives_no_photo(b64: str, why: str) -> None:
    assert photo_of_avatar(PNG_ID, "image/png", stanza(data(b64))) is None, why


def test_xep0398_3_2_a_photo_round_trips_to_the_avatar_items() -> None:
    avatar = avatar_of_photo(stanza(photo(PNG_B64[:40] + "\n" + PNG_B64[40:])))
    assert avatar is not None
    assert (avatar.id, avatar.type, avatar.image) == (PNG_ID, "image/png", PNG)
    assert current_id(avatar.metadata_item()) == (PNG_ID, "image/png")
    back = photo_of_avatar(avatar.id, avatar.type, avatar.data_item())
    assert back is not None and back.findtext(qname(NS.VCARD, "BINVAL")) == PNG_B64
    assert avatar_of_photo(stanza(f'<PHOTO xmlns="{NS.VCARD}"/>')) is None  # removes it


@pytest.mark.parametrize(
    "bad",
    [
        f'<PHOTO xmlns="{NS.VCARD}"><EXTVAL>https://example.com/a.png</EXTVAL></PHOTO>',
        photo("%%%"),
        photo(type_=""),
        photo(type_="png"),
        photo(type_="image/" + "x" * 100),
    ],
)
def test_xep0398_3_2_a_photo_that_is_no_inline_image_is_bad_request(bad: str) -> None:
    with pytest.raises(StanzaError) as refused:
        avatar_of_photo(stanza(bad))
    assert refused.value.condition == "bad-request"


@pytest.mark.parametrize(
    ("sent", "avatar", "expected"),
    [
        ("<presence/>", PNG_ID, PNG_ID),
        (f'<presence><x xmlns="{VCARD_UPDATE}"/></presence>', PNG_ID, PNG_ID),
        (f'<presence><x xmlns="{VCARD_UPDATE}"><photo/></x></presence>', PNG_ID, ""),
        (f'<presence><x xmlns="{VCARD_UPDATE}"><photo>ab</photo></x></presence>', PNG_ID, PNG_ID),
        (f'<presence><x xmlns="{VCARD_UPDATE}"><photo>ab</photo></x></presence>', None, "ab"),
        ("<presence/>", None, None),
        ("<presence/>", "", ""),  # a disabled avatar: XEP-0153's "no avatar"
    ],
)
def test_xep0398_4_presence_carries_the_hash_unless_the_photo_is_empty(
    sent: str, avatar: str | None, expected: str | None
) -> None:
    presence = stanza(sent)
    stamp_presence(presence, avatar)
    assert update_photo(presence) == expected
    assert len(presence.findall(f"{{{VCARD_UPDATE}}}x")) == (expected is not None)


# --- through the router -------------------------------------------------------------------


async def test_xep0398_3_1_a_pep_avatar_is_the_vcard_photo_for_those_who_may_read_it(
    pep: Pep,
) -> None:
    roland = await pep.login(ROLAND, "laptop")
    lucy = await pep.login("lucy@falcot.com", "home")
    raphael = await pep.login("raphael@falcot.com", "desk")
    await subscribe(pep.server, lucy, roland)
    assert error_condition(await vcard_get(pep, lucy, ROLAND)) == "item-not-found"
    await publish_avatar(pep, roland)
    for reader in (roland, lucy):
        card = (await vcard_get(pep, reader, ROLAND)).find(qname(NS.VCARD, "vCard"))
        assert card is not None
        assert card.findtext(f"{{{NS.VCARD}}}PHOTO/{{{NS.VCARD}}}BINVAL") == PNG_B64
        assert card.findtext(f"{{{NS.VCARD}}}PHOTO/{{{NS.VCARD}}}TYPE") == "image/png"
    # The avatar keeps its node's access model (presence): a stranger sees no PHOTO.
    assert error_condition(await vcard_get(pep, raphael, ROLAND)) == "item-not-found"


async def test_xep0398_3_2_a_vcard_photo_publishes_the_avatar_and_notifies(pep: Pep) -> None:
    roland = await pep.login(ROLAND, "laptop")
    lucy = await pep.login("lucy@falcot.com", "home", notify=(AVATAR_METADATA,))
    await subscribe(pep.server, lucy, roland)
    lucy.take()
    reply = await vcard_set(pep, roland, photo())
    assert reply.get("type") == "result", text(reply)
    assert events(lucy) == [(ROLAND, AVATAR_METADATA, PNG_ID)]
    assert item_ids(await pep.items(lucy, ROLAND, AVATAR_DATA)) == [PNG_ID]
    card = (await vcard_get(pep, lucy, ROLAND)).find(qname(NS.VCARD, "vCard"))
    assert card is not None and card.findtext(qname(NS.VCARD, "FN")) == "R"
    assert len(card.findall(qname(NS.VCARD, "PHOTO"))) == 1

    # An empty PHOTO disables the avatar (XEP-0084 §4.5); no PHOTO leaves it alone.
    await vcard_set(pep, roland, "")
    assert (await vcard_get(pep, lucy, ROLAND)).find(f".//{{{NS.VCARD}}}PHOTO") is not None
    await vcard_set(pep, roland, "<PHOTO/>")
    assert (await vcard_get(pep, lucy, ROLAND)).find(f".//{{{NS.VCARD}}}PHOTO") is None
    lucy.take()
    await pep.server.send(roland, "<presence/>")
    assert update_photo(lucy.take_one("presence")) == ""


async def test_xep0398_3_2_a_bad_photo_is_refused_and_nothing_is_stored(pep: Pep) -> None:
    roland = await pep.login(ROLAND, "laptop")
    reply = await vcard_set(pep, roland, "<PHOTO><EXTVAL>https://x.example/a</EXTVAL></PHOTO>")
    assert error_condition(reply) == "bad-request"
    assert error_condition(await vcard_get(pep, roland)) == "item-not-found"
    assert error_condition(await pep.items(roland, ROLAND, AVATAR_METADATA)) == "item-not-found"


async def test_xep0398_4_broadcast_and_directed_presence_carry_the_avatar_hash(pep: Pep) -> None:
    roland = await pep.login(ROLAND, "laptop")
    lucy = await pep.login("lucy@falcot.com", "home")
    raphael = await pep.login("raphael@falcot.com", "desk")
    await subscribe(pep.server, lucy, roland)
    await publish_avatar(pep, roland)
    lucy.take()
    await pep.server.send(roland, "<presence/>")
    assert update_photo(lucy.take_one("presence")) == PNG_ID
    raphael.take()
    await pep.server.send(roland, '<presence to="raphael@falcot.com/desk"/>')
    assert update_photo(raphael.take_one("presence")) == PNG_ID

    # A new avatar is stamped at once: the remembered id follows the metadata node.
    other = hashlib.sha1(PNG[:100]).hexdigest()
    second = metadata(info(other))
    await pep.publish(roland, AVATAR_DATA, data(base64.b64encode(PNG[:100]).decode()), other)
    await pep.publish(roland, AVATAR_METADATA, second, other)
    lucy.take()
    await pep.server.send(roland, "<presence><show>away</show></presence>")
    assert update_photo(lucy.take_one("presence")) == other


async def test_xep0292_4_1_vcard4_by_iq_is_the_pep_item_current(pep: Pep) -> None:
    roland = await pep.login(ROLAND, "laptop")
    lucy = await pep.login("lucy@falcot.com", "home")
    raphael = await pep.login("raphael@falcot.com", "desk")
    await subscribe(pep.server, lucy, roland)
    get = f'type="get"><vcard xmlns="{VCARD4}"/>'
    empty = (await pep.iq(lucy, get, to=ROLAND)).find(qname(VCARD4, "vcard"))
    assert empty is not None and len(empty) == 0  # §4.1.1: none yet is an empty <vcard/>
    card = f'<vcard xmlns="{VCARD4}"><fn><text>Roland</text></fn></vcard>'
    await pep.publish(roland, "urn:xmpp:vcard4", card, "current")
    got = (await pep.iq(lucy, get, to=ROLAND)).find(qname(VCARD4, "vcard"))
    assert got is not None and got.findtext(f"{{{VCARD4}}}fn/{{{VCARD4}}}text") == "Roland"
    assert error_condition(await pep.iq(raphael, get, to=ROLAND)) == "not-authorized"

    # §4.1.2: an iq set publishes the item, read under the same access model.
    new = f'<vcard xmlns="{VCARD4}"><fn><text>R2</text></fn></vcard>'
    assert (await pep.iq(roland, f'type="set">{new}')).get("type") == "result"
    got = (await pep.iq(lucy, get, to=ROLAND)).find(qname(VCARD4, "vcard"))
    assert got is not None and got.findtext(f"{{{VCARD4}}}fn/{{{VCARD4}}}text") == "R2"
    forged = await pep.iq(lucy, f'type="set">{new}', to=ROLAND)
    assert error_condition(forged) == "forbidden"


def test_xep0398_photo_element_order_does_not_matter() -> None:
    element = Element(qname(NS.VCARD, "PHOTO"))
    SubElement(element, qname(NS.VCARD, "BINVAL")).text = PNG_B64
    SubElement(element, qname(NS.VCARD, "TYPE")).text = "image/png"
    avatar = avatar_of_photo(element)
    assert avatar is not None and avatar.id == PNG_ID
