"""Blocking Command (XEP-0191) with slixmpp's xep_0191: a block reaches the user's other
resource as a push and the blocked contact sees the user go (§3.3); a message to it is
refused with <blocked/> (§3.5); an empty <unblock/> empties the list, is pushed, and the
contact gets the user's presence again (§3.4)."""

from __future__ import annotations

import asyncio

from slixmpp import JID, Iq

from tests.interop.xmpp.support import (
    DOMAIN,
    TIMEOUT,
    XmppServer,
    connect,
    log_out,
    subscribe_each_other,
)

PLUGINS = ("xep_0191",)
PIA = JID(f"pia@{DOMAIN}")


async def test_xep0191_block_message_refused_then_unblock_all_restores_presence(
    shared_xmpp: XmppServer,
) -> None:
    desk = await connect(shared_xmpp, "otto", resource="desk", plugins=PLUGINS)
    phone = await connect(shared_xmpp, "otto", resource="phone", plugins=PLUGINS)
    contact = await connect(shared_xmpp, "pia")
    try:
        await subscribe_each_other(desk, contact)
        await contact.presence_from(str(phone.boundjid))
        pushes: asyncio.Queue[Iq] = asyncio.Queue()
        for event in ("blocked", "unblocked"):
            phone.add_event_handler(event, pushes.put_nowait)
        for client in (desk, phone):  # §3.3: pushes go to resources that asked for the list
            assert await client.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT) == set()

        await desk.plugin["xep_0191"].block(PIA, timeout=TIMEOUT)
        push = await asyncio.wait_for(pushes.get(), TIMEOUT)
        assert {JID(item["jid"]) for item in push["block"]} == {PIA}
        for resource in (desk, phone):  # §3.3: the contact sees every resource go
            await contact.presence_from(str(resource.boundjid), "unavailable")

        desk.send_message(mto=PIA, mbody="blocked", mtype="chat")
        error = await asyncio.wait_for(desk.errors.get(), TIMEOUT)
        assert error["error"]["condition"] == "not-acceptable"
        assert error.xml.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked") is not None

        # §3.4: an <unblock/> without items empties the list (slixmpp has no call for it).
        everything = desk.make_iq_set()
        everything.enable("unblock")
        await everything.send(timeout=TIMEOUT)
        push = await asyncio.wait_for(pushes.get(), TIMEOUT)
        assert push.xml.find("{urn:xmpp:blocking}unblock") is not None
        assert len(push["unblock"]) == 0
        assert await phone.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT) == set()
        for resource in (desk, phone):
            await contact.presence_from(str(resource.boundjid))
    finally:
        await log_out([desk, phone, contact])
