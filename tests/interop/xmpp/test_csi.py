"""Client State Indication (XEP-0352) with slixmpp's xep_0352 plugin: a phone that says it is
inactive gets a contact's chat at once, and the contact's presence and chat states only
with the next message that has a body, or once it says it is active again; in order, none
lost (heron holds back what Prosody's mod_csi_simple does).

Absence is proven without waiting: heron handles one client's stanzas in order, so once the
contact has the answer to a ping it sent after its presence, that presence was handed to the
phone's session (and, were it not held, written to the phone in the same turn).
"""

from __future__ import annotations

import slixmpp
from slixmpp import JID

from tests.interop.xmpp.support import (
    DOMAIN,
    TIMEOUT,
    Client,
    XmppServer,
    connect,
    log_out,
    subscribe_each_other,
)

PLUGINS = ("xep_0085", "xep_0199")


def arrivals(client: Client) -> list[str]:
    """What reaches ``client``, in the order slixmpp reads it (its handlers run as each
    stanza is parsed): ``presence <show>``, ``message <body>``, ``chat state <state>``."""
    seen: list[str] = []

    def on_presence(presence: slixmpp.Presence) -> None:
        seen.append(f"presence {presence['from'].bare} {presence['show'] or 'available'}")

    def on_message(message: slixmpp.Message) -> None:
        seen.append(f"message {message['body']}")

    def on_chat_state(message: slixmpp.Message) -> None:
        seen.append(f"chat state {message['chat_state']}")

    client.add_event_handler("presence", on_presence)
    client.add_event_handler("message", on_message)  # those with a body
    client.add_event_handler("chatstate", on_chat_state)  # XEP-0085, with or without one
    return seen


async def settled(client: Client) -> None:
    """Once this returns, the server has handled everything ``client`` sent before."""
    await client.plugin["xep_0199"].ping(JID(DOMAIN), timeout=TIMEOUT)


async def test_xep0352_slixmpp_inactive_phone_gets_bodies_at_once_presence_later(
    shared_xmpp: XmppServer,
) -> None:
    phone = await connect(shared_xmpp, "xena", resource="phone", plugins=(*PLUGINS, "xep_0352"))
    contact = await connect(shared_xmpp, "wendy", plugins=PLUGINS)
    try:
        await subscribe_each_other(contact, phone)
        csi = phone.plugin["xep_0352"]
        assert csi.enabled  # §4.1: <csi/> came with the features after authentication
        seen = arrivals(phone)
        wendy = f"wendy@{DOMAIN}"

        csi.send_inactive()
        await settled(phone)  # §5.1: the nonza took effect before the ping was answered
        contact.send_presence(pshow="away")
        contact.send_presence(pshow="xa")
        await settled(contact)
        assert seen == []  # held back

        # A message with a body goes at once, after what was held, in order.
        contact.send_message(mto=phone.boundjid, mbody="wake up", mtype="chat")
        await phone.next_message("wake up")
        assert seen == [f"presence {wendy} away", f"presence {wendy} xa", "message wake up"]

        # Still inactive: a chat state without a body waits too, until <active/>.
        seen.clear()
        contact.send_presence(pshow="dnd")
        composing = contact.make_message(mto=phone.boundjid, mtype="chat")
        composing["chat_state"] = "composing"
        composing.send()
        await settled(contact)
        assert seen == []
        csi.send_active()
        await settled(phone)  # §5.1: what <active/> released came before the answer
        assert seen == [f"presence {wendy} dnd", "chat state composing"]

        # Active again: presence is no longer held.
        seen.clear()
        phone.presences.clear()  # the subscription's own presences, left untaken
        contact.send_presence()
        await phone.presence_from(str(contact.boundjid), show="")
        assert seen == [f"presence {wendy} available"]
    finally:
        await log_out([phone, contact])
