"""vCards with slixmpp's plugins: a XEP-0084 avatar read back as a vcard-temp PHOTO
(XEP-0054) and announced by its XEP-0153 hash in presence, a vCard PHOTO published as
the XEP-0084 avatar (XEP-0398), and a XEP-0292 vCard4 on PEP read under its access model.
"""

from __future__ import annotations

import hashlib

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError

from tests.interop.xmpp.avatars import (
    AVATAR_PLUGINS,
    AvatarDevice,
    avatar_device,
    publish_avatar,
)
from tests.interop.xmpp.support import (
    DOMAIN,
    TIMEOUT,
    XmppServer,
    connect,
    log_out,
    subscribe_each_other,
)

VCARD_PLUGINS = ("xep_0054",)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 120  # ~30 KB
PNG_ID = hashlib.sha1(PNG).hexdigest()
UPDATE = "{vcard-temp:x:update}"


def announced_hash(presence: slixmpp.Presence) -> str | None:
    """The XEP-0153 <photo/> of ``presence``, read from its XML."""
    return presence.xml.findtext(f"{UPDATE}x/{UPDATE}photo")


async def test_xep0398_a_xep0084_avatar_is_the_vcard_photo_and_its_hash_is_in_presence(
    shared_xmpp: XmppServer,
) -> None:
    owner = await connect(shared_xmpp, "hana", plugins=AVATAR_PLUGINS)
    contact = await connect(shared_xmpp, "ines", plugins=VCARD_PLUGINS)
    try:
        await subscribe_each_other(owner, contact)
        assert await publish_avatar(owner, PNG) == PNG_ID

        # XEP-0398 §3.1: a vcard-temp client reads the avatar as the PHOTO.
        result = await contact.plugin["xep_0054"].get_vcard(JID(f"hana@{DOMAIN}"), timeout=TIMEOUT)
        assert result["vcard_temp"]["PHOTO"]["BINVAL"] == PNG
        assert result["vcard_temp"]["PHOTO"]["TYPE"] == "image/png"

        # §4: presence the owner's client sends without XEP-0153 carries the hash.
        owner.send_presence(pstatus="here")
        presence = await contact.presence_from(str(owner.boundjid))
        while presence["status"] != "here":  # earlier presences (the caps update) first
            presence = await contact.presence_from(str(owner.boundjid))
        assert announced_hash(presence) == PNG_ID
    finally:
        await log_out([owner, contact])


async def test_xep0398_a_vcard_photo_is_published_as_the_xep0084_avatar(
    shared_xmpp: XmppServer,
) -> None:
    owner = await connect(shared_xmpp, "jon", plugins=(*VCARD_PLUGINS, "xep_0153"))
    contact = await connect(shared_xmpp, "kai", resource="desk")
    phone: AvatarDevice | None = None
    try:
        await subscribe_each_other(owner, contact)
        # As slixmpp's XEP-0153 plugin does: read the vCard, add the PHOTO, write it back.
        card = owner.plugin["xep_0054"].make_vcard()
        card["FN"] = "Jon"
        await owner.plugin["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
        await owner.plugin["xep_0153"].set_avatar(avatar=PNG, mtype="image/png", timeout=TIMEOUT)

        # §3.2: a XEP-0084 device of the contact gets the metadata as the last item
        # (XEP-0163 §6.2), then the data by its id.
        phone = await avatar_device(shared_xmpp, "kai", "phone")
        assert await phone.next_avatar(JID(f"jon@{DOMAIN}")) == (PNG_ID, PNG)

        # The vCard keeps its other fields; its PHOTO is the avatar.
        result = await owner.plugin["xep_0054"].get_vcard(JID(f"jon@{DOMAIN}"), timeout=TIMEOUT)
        assert result["vcard_temp"]["FN"] == "Jon"
        assert result["vcard_temp"]["PHOTO"]["BINVAL"] == PNG

        # Hostile: a PHOTO that is no image, and one past the PEP item limit, are refused
        # and leave the avatar as it was.
        for bad in (b"", PNG * 6):
            card["PHOTO"]["TYPE"] = "image/png"
            card["PHOTO"]["BINVAL"] = bad
            try:
                await owner.plugin["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
            except IqError as error:
                assert error.condition in ("bad-request", "not-acceptable")
            else:
                raise AssertionError(f"a PHOTO of {len(bad)} bytes was taken")
        result = await owner.plugin["xep_0054"].get_vcard(JID(f"jon@{DOMAIN}"), timeout=TIMEOUT)
        assert result["vcard_temp"]["PHOTO"]["BINVAL"] == PNG
    finally:
        await log_out([owner, contact, *([phone.client] if phone else [])])


async def test_xep0292_vcard4_on_pep_is_read_by_a_contact_not_by_a_stranger(
    shared_xmpp: XmppServer,
) -> None:
    plugins = ("xep_0030", "xep_0060", "xep_0163", "xep_0292")
    owner = await connect(shared_xmpp, "lena", plugins=plugins)
    contact = await connect(shared_xmpp, "mona", plugins=plugins)
    stranger = await connect(shared_xmpp, "ines", resource="other", plugins=plugins)
    try:
        await subscribe_each_other(owner, contact)
        # XEP-0398 §2 and XEP-0292: the account says what it converts and keeps.
        info = await owner.plugin["xep_0030"].get_info(JID(f"lena@{DOMAIN}"), timeout=TIMEOUT)
        features = set(info["disco_info"]["features"])
        assert {"urn:xmpp:vcard4", "urn:xmpp:pep-vcard-conversion:0"} <= features

        # XEP-0292 §4.2: the node is urn:xmpp:vcard4 and the item "current".
        await owner.plugin["xep_0292"].publish_vcard(
            full_name="Lena", nickname="lena", node="urn:xmpp:vcard4", timeout=TIMEOUT
        )
        item = await contact.plugin["xep_0060"].get_item(
            JID(f"lena@{DOMAIN}"), "urn:xmpp:vcard4", "current", timeout=TIMEOUT
        )
        assert item["pubsub"]["items"]["item"]["vcard"]["full_name"] == "Lena"

        # The PEP default access model, presence: no subscription, no vCard.
        try:
            await stranger.plugin["xep_0060"].get_item(
                JID(f"lena@{DOMAIN}"), "urn:xmpp:vcard4", "current", timeout=TIMEOUT
            )
        except IqError as error:
            assert error.condition == "not-authorized"
        else:
            raise AssertionError("a stranger read a presence-only vCard4")
    finally:
        await log_out([owner, contact, stranger])
