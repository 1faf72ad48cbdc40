"""Message Carbons (XEP-0280) with slixmpp's xep_0280 plugin: one account on three devices,
two of which enabled carbons, and a contact.

Absence is proven without waiting: heron queues a message's copies in the same step as the
original, so once a device has the answer to a ping it sent after that, anything meant for
it has arrived.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import slixmpp
from slixmpp import JID

from tests.interop.xmpp.support import DOMAIN, TIMEOUT, Client, XmppServer, connect, log_out

CARBONS = "urn:xmpp:carbons:2"
PLUGINS = ("xep_0030", "xep_0199", "xep_0280")


@dataclass
class Device:
    """A client and the carbons its plugin reported, by kind."""

    client: Client
    received: asyncio.Queue[slixmpp.Message]
    sent: asyncio.Queue[slixmpp.Message]

    async def settled(self) -> None:
        """Once this returns, everything the server queued for the device before has arrived."""
        await self.client.plugin["xep_0199"].ping(JID(DOMAIN), timeout=TIMEOUT)

    async def nothing_more(self) -> None:
        await self.settled()
        assert (self.received.qsize(), self.sent.qsize(), self.client.messages.qsize()) == (0, 0, 0)


async def device(server: XmppServer, user: str, resource: str) -> Device:
    client = await connect(server, user, resource=resource, plugins=PLUGINS)
    received: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
    sent: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
    client.add_event_handler("carbon_received", received.put_nowait)
    client.add_event_handler("carbon_sent", sent.put_nowait)
    found = Device(client, received, sent)
    await found.settled()  # its initial presence is in: it is available (RFC 6121 §4.2)
    return found


async def forwarded(queue: asyncio.Queue[slixmpp.Message], kind: str) -> slixmpp.Message:
    carbon = await asyncio.wait_for(queue.get(), TIMEOUT)
    assert carbon["from"] == carbon["to"].bare  # §7, §8: from the account's bare JID
    inner: slixmpp.Message = carbon[f"carbon_{kind}"]
    return inner


async def test_xep0280_slixmpp_devices_see_both_sides_of_a_chat(shared_xmpp: XmppServer) -> None:
    devices = [
        await device(shared_xmpp, "quinn", resource) for resource in ("laptop", "phone", "desk")
    ]
    laptop, phone, desk = devices
    contact = await device(shared_xmpp, "uma", "test")
    try:
        # §3: the server says it does carbons; §4: two of the devices turn them on.
        info = await laptop.client.plugin["xep_0030"].get_info(jid=JID(DOMAIN), timeout=TIMEOUT)
        assert CARBONS in info["disco_info"]["features"]
        for enabling in (laptop, phone):
            await enabling.client.plugin["xep_0280"].enable(timeout=TIMEOUT)

        # To the bare JID: RFC 6121 §8.5.2.1.1 gives every device (all at priority 0) the
        # original, so nobody gets a copy (§7).
        contact.client.send_message(mto=JID(f"quinn@{DOMAIN}"), mbody="to all", mtype="chat")
        for each in devices:
            await each.client.next_message("to all")
        for each in devices:
            await each.nothing_more()

        # To one device: the other enabled one gets a received carbon; the desk, nothing.
        contact.client.send_message(mto=JID(f"quinn@{DOMAIN}/laptop"), mbody="to one", mtype="chat")
        await laptop.client.next_message("to one")
        copied = await forwarded(phone.received, "received")
        assert (copied["from"], copied["body"]) == (f"uma@{DOMAIN}/test", "to one")
        for each in devices:
            await each.nothing_more()

        # Sent from the laptop: the phone gets a sent carbon; the laptop and the desk do not.
        laptop.client.send_message(mto=JID(f"uma@{DOMAIN}"), mbody="answer", mtype="chat")
        await contact.client.next_message("answer")
        copied = await forwarded(phone.sent, "sent")
        assert (copied["to"], copied["body"]) == (f"uma@{DOMAIN}", "answer")
        for each in devices:
            await each.nothing_more()

        # §9: a private message is delivered and copied nowhere.
        secret = laptop.client.make_message(mto=JID(f"uma@{DOMAIN}"), mbody="secret", mtype="chat")
        secret.enable("carbon_private")
        secret.send()
        await contact.client.next_message("secret")
        for each in devices:
            await each.nothing_more()
    finally:
        await log_out([each.client for each in (*devices, contact)])
