"""Push Notifications (XEP-0357) over s2s: a heron user's phone enables an app server that
is a session on Prosody 0.12 (slixmpp answering pubsub publishes, see ``push_app``); once
the phone is offline, heron publishes the summary to Prosody, which hands it to the app
server; the app server's result leaves the registration in place.

Waits are on what clients see: the phone's unavailable presence at its contact, the publish
at the app server."""

from __future__ import annotations

import pytest

from tests.interop.xmpp.federation.support import peer_login
from tests.interop.xmpp.push_app import AppServer, enable_push
from tests.interop.xmpp.support import log_out, subscribe_each_other
from tests.support.federation.reference import ReferenceServer

pytestmark = pytest.mark.interop


async def test_xep0357_heron_pushes_to_an_app_server_on_prosody(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    app = AppServer(await peer_login(prosody_peer, "alice", "app"))
    phone = await peer_login(heron_peer, "bob", "phone")
    contact = await peer_login(heron_peer, "carol", "desk")
    try:
        await enable_push(phone, str(app.client.boundjid), "bob-node")
        await subscribe_each_other(contact, phone)
        await log_out([phone])
        await contact.presence_from(str(phone.boundjid), "unavailable")
        contact.send_message(mto=phone.boundjid.bare, mbody="are you up?", mtype="chat")
        node, summary = await app.next_summary()
        assert (node, summary["last-message-sender"]) == ("bob-node", str(contact.boundjid.bare))
        assert "last-message-body" not in summary
        # The registration stands after the app server's result: a second message is
        # pushed too.
        contact.send_message(mto=phone.boundjid.bare, mbody="hello?", mtype="chat")
        await app.next_summary()
        assert app.sources == [heron_peer.domain] * 2
    finally:
        await log_out([app.client, contact])
