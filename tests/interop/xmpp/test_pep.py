"""PEP (XEP-0163) with slixmpp's plugins: XEP-0084 avatars published by one account,
notified to a contact's device whose XEP-0115 caps ask for them and fetched by it, and
XEP-0402 bookmarks kept private to their owner.

Nothing sleeps: a device proves heron learnt its caps by receiving the last published
item, which heron sends only once it verified them (XEP-0163 §6.2).
"""

from __future__ import annotations

from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048.stanza import Bookmarks
from slixmpp.plugins.xep_0402.stanza import Conference

from tests.interop.xmpp.avatars import (
    AVATAR_PLUGINS,
    AvatarDevice,
    avatar_device,
    publish_avatar,
)
from tests.interop.xmpp.support import (
    DOMAIN,
    MUC,
    TIMEOUT,
    XmppServer,
    connect,
    log_out,
    subscribe_each_other,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300  # ~77 KB: a real avatar's size


async def test_xep0084_avatar_is_notified_to_a_contact_and_retrievable(
    shared_xmpp: XmppServer,
) -> None:
    alice = await connect(shared_xmpp, "ada", plugins=AVATAR_PLUGINS)
    bob = await connect(shared_xmpp, "brendan", resource="desk")
    phone: AvatarDevice | None = None
    try:
        await subscribe_each_other(alice, bob)
        first = await publish_avatar(alice, PNG)
        ada = JID(f"ada@{DOMAIN}")

        # A new device of the contact, whose caps say urn:xmpp:avatar:metadata+notify,
        # gets the last metadata item once heron verified its caps (XEP-0163 §6.2), and
        # the data by the id the metadata gave, from another account (XEP-0084 §4.2).
        phone = await avatar_device(shared_xmpp, "brendan", "phone")
        assert await phone.next_avatar(ada) == (first, PNG)

        # A new avatar is notified as it is published (XEP-0163 §4.3).
        second = await publish_avatar(alice, PNG[:1000])
        assert await phone.next_avatar(ada) == (second, PNG[:1000])
    finally:
        await log_out([alice, bob, *([phone.client] if phone else [])])


async def test_xep0402_bookmarks_are_stored_retrieved_and_private(
    shared_xmpp: XmppServer,
) -> None:
    plugins = ("xep_0004", "xep_0030", "xep_0060", "xep_0402")
    owner = await connect(shared_xmpp, "cleo", plugins=plugins)
    other = await connect(shared_xmpp, "dmitri", plugins=plugins)
    try:
        await subscribe_each_other(owner, other)
        # XEP-0402 §3: one item per room, id the room's JID, whitelist, max_items=max.
        options = owner.plugin["xep_0004"].make_form(ftype="submit")
        options.add_field(
            var="FORM_TYPE",
            ftype="hidden",
            value="http://jabber.org/protocol/pubsub#publish-options",
        )
        options.add_field(var="pubsub#persist_items", value=True)
        options.add_field(var="pubsub#max_items", value="max")
        options.add_field(var="pubsub#send_last_published_item", value="never")
        options.add_field(var="pubsub#access_model", value="whitelist")
        rooms = {f"room{n}@conference.{DOMAIN}": f"Room {n}" for n in range(3)}
        for room, name in rooms.items():
            conference = Conference()
            conference["name"] = name
            conference["autojoin"] = True
            conference["nick"] = "cleo"
            await owner.plugin["xep_0060"].publish(
                None, "urn:xmpp:bookmarks:1", id=room, payload=conference,
                options=options, timeout=TIMEOUT,
            )  # fmt: skip

        result = await owner.plugin["xep_0060"].get_items(
            JID(f"cleo@{DOMAIN}"), "urn:xmpp:bookmarks:1", timeout=TIMEOUT
        )
        stored = {
            item["id"]: (item["conference"]["name"], item["conference"]["autojoin"])
            for item in result["pubsub"]["items"]
        }
        assert stored == {room: (name, True) for room, name in rooms.items()}

        try:
            await other.plugin["xep_0060"].get_items(
                JID(f"cleo@{DOMAIN}"), "urn:xmpp:bookmarks:1", timeout=TIMEOUT
            )
        except IqError as error:
            assert error.condition == "not-allowed"
        else:
            raise AssertionError("a contact read another's bookmarks")
    finally:
        await log_out([owner, other])


async def test_xep0411_legacy_bookmarks_in_private_storage_are_xep0402_items(
    shared_xmpp: XmppServer,
) -> None:
    """slixmpp's xep_0048 keeps bookmarks in private XML storage (XEP-0049); a XEP-0402
    client of the same account reads them as items, and the reverse."""
    old = await connect(shared_xmpp, "esme", resource="old", plugins=("xep_0049", "xep_0048"))
    new = await connect(shared_xmpp, "esme", resource="new", plugins=("xep_0060", "xep_0402"))
    try:
        bookmarks = Bookmarks()
        bookmarks.add_conference(f"lobby@{MUC}", "esme", name="Lobby", autojoin=True)
        await old.plugin["xep_0048"].set_bookmarks(bookmarks, timeout=TIMEOUT)
        result = await new.plugin["xep_0060"].get_items(
            JID(f"esme@{DOMAIN}"), "urn:xmpp:bookmarks:1", timeout=TIMEOUT
        )
        [item] = result["pubsub"]["items"]
        assert item["id"] == f"lobby@{MUC}"
        assert (item["conference"]["name"], item["conference"]["nick"]) == ("Lobby", "esme")

        conference = Conference()
        conference["name"] = "Hall"
        await new.plugin["xep_0060"].publish(
            None, "urn:xmpp:bookmarks:1", id=f"hall@{MUC}", payload=conference,
            timeout=TIMEOUT,
        )  # fmt: skip
        stored = await old.plugin["xep_0048"].get_bookmarks(timeout=TIMEOUT)
        names = {c["jid"]: c["name"] for c in stored["private"]["bookmarks"]["conferences"]}
        assert names == {JID(f"lobby@{MUC}"): "Lobby", JID(f"hall@{MUC}"): "Hall"}
    finally:
        await log_out([old, new])
