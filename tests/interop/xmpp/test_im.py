"""RFC 6121 with slixmpp: subscriptions and presence, messages, offline delivery (XEP-0160)."""

from __future__ import annotations

import asyncio

from tests.interop.xmpp.support import DOMAIN, TIMEOUT, XmppServer, connect, logged_in


async def test_rfc6121_3_mutual_subscription_then_presence_both_ways(
    shared_xmpp: XmppServer,
) -> None:
    async with logged_in(shared_xmpp, "erin", "frank") as (erin, frank):
        erin.auto_authorize = True
        frank.auto_authorize = True
        erin.auto_subscribe = True
        frank.auto_subscribe = True
        erin.send_presence_subscription(pto=f"frank@{DOMAIN}")
        await frank.presence_from(f"erin@{DOMAIN}", "subscribe")
        await erin.presence_from(f"frank@{DOMAIN}", "subscribed")
        await erin.presence_from(f"frank@{DOMAIN}", "subscribe")
        await frank.presence_from(f"erin@{DOMAIN}", "subscribed")
        # Both rosters now hold the other with subscription both (RFC 6121 §2.1.2.5).
        await asyncio.wait_for(erin.get_roster(), TIMEOUT)
        await asyncio.wait_for(frank.get_roster(), TIMEOUT)
        assert erin.client_roster[f"frank@{DOMAIN}"]["subscription"] == "both"
        assert frank.client_roster[f"erin@{DOMAIN}"]["subscription"] == "both"
        # A presence change reaches the contact (RFC 6121 §4.4).
        frank.send_presence(pstatus="in a meeting", pshow="dnd")
        update = await erin.presence_from(f"frank@{DOMAIN}/test", show="dnd")
        assert update["status"] == "in a meeting"
        # Logging out sends unavailable to the contact (RFC 6121 §4.5.2).
        frank.disconnect(wait=0)
        await erin.presence_from(f"frank@{DOMAIN}/test", "unavailable")


async def test_rfc6121_8_5_messages_both_ways(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "grace", "heidi") as (grace, heidi):
        grace.send_message(mto=f"heidi@{DOMAIN}", mbody="hello heidi", mtype="chat")
        received = await heidi.next_message("hello heidi")
        assert received["from"] == f"grace@{DOMAIN}/test"
        heidi.send_message(mto=received["from"], mbody="hello grace", mtype="chat")
        answer = await grace.next_message("hello grace")
        assert answer["from"] == f"heidi@{DOMAIN}/test"


async def test_xep0160_message_to_an_offline_user_is_delivered_at_login(
    shared_xmpp: XmppServer,
) -> None:
    async with logged_in(shared_xmpp, "ivan") as (ivan,):
        ivan.send_message(mto=f"judy@{DOMAIN}", mbody="while you were out", mtype="chat")
        # The sender's own stream is in order: a ping answered after the message means the
        # server has handled (stored) the message.
        ivan.register_plugin("xep_0199")
        await ivan.plugin["xep_0199"].ping(DOMAIN, timeout=TIMEOUT)
    judy = await connect(shared_xmpp, "judy", plugins=("xep_0203",))
    try:
        message = await judy.next_message("while you were out")
        assert message["from"].bare == f"ivan@{DOMAIN}"
        assert message["delay"]["stamp"] is not None  # XEP-0203 stamp of the storage
    finally:
        judy.disconnect(wait=0)
