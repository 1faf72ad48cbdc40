"""Push Notifications (XEP-0357) with slixmpp clients: a phone enables push toward an app
server the test runs (a slixmpp session of another account, answering pubsub publishes as
an app server does), goes away, and the app server hears of a message without its body.

slixmpp has no XEP-0357 plugin: the phone sends the <enable/> of §5 as its own payload.
Waits are on what the clients see: a publish arrives, a presence goes unavailable, the
session is listed as hibernating by ``heron xmpp sessions``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from tests.interop.xmpp.push_app import PUSH, AppServer, enable_push
from tests.interop.xmpp.support import (
    DOMAIN,
    TIMEOUT,
    XmppServer,
    connect,
    log_out,
    subscribe_each_other,
    xmpp_server,
)

USERS = "alice bob carol dave mallory".split()


@pytest.fixture(scope="module")
def push_xmpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XmppServer]:
    with xmpp_server(tmp_path_factory.mktemp("heron-push"), users=USERS) as server:
        yield server


async def hibernating(server: XmppServer, jid: str) -> None:
    """Until heron lists ``jid``'s session as hibernating (it noticed the cut)."""

    async def listed() -> None:
        while True:
            rows = await asyncio.to_thread(server.heron.cli, "xmpp", "sessions")
            if any(jid in line and "hibernating" in line for line in rows.stdout.splitlines()):
                return

    await asyncio.wait_for(listed(), TIMEOUT * 2)


async def test_xep0357_hibernating_phone_is_woken_without_the_body(
    push_xmpp: XmppServer,
) -> None:
    app = AppServer(await connect(push_xmpp, "carol", resource="app"))
    phone = await connect(push_xmpp, "alice", resource="phone", plugins=("xep_0030", "xep_0198"))
    contact = await connect(push_xmpp, "bob")
    try:
        disco = await phone.plugin["xep_0030"].get_info(jid=phone.boundjid.bare, timeout=TIMEOUT)
        assert PUSH in disco["disco_info"]["features"]
        await enable_push(phone, str(app.client.boundjid), "alice-phone-node")
        assert phone.transport is not None
        phone.transport.abort()  # out of reach, no </stream:stream>: XEP-0198 hibernation
        await hibernating(push_xmpp, f"alice@{DOMAIN}/phone")
        contact.send_message(mto=f"alice@{DOMAIN}", mbody="meet at the gate at 9", mtype="chat")
        node, summary = await app.next_summary()
        assert node == "alice-phone-node"
        assert summary["FORM_TYPE"] == "urn:xmpp:push:summary"
        assert summary["last-message-sender"] == f"bob@{DOMAIN}"
        assert "last-message-body" not in summary
        assert "gate" not in str(summary)
    finally:
        phone.abort()
        await log_out([app.client, contact])


async def test_xep0357_offline_phone_is_woken_and_another_account_cannot_enable_for_it(
    push_xmpp: XmppServer,
) -> None:
    """mallory points her app server at dave's account: refused, and what bob writes to
    dave reaches only dave's own app server."""
    app = AppServer(await connect(push_xmpp, "carol", resource="app2", plugins=("xep_0199",)))
    phone = await connect(push_xmpp, "dave", resource="phone")
    contact = await connect(push_xmpp, "bob", resource="desk")
    mallory = await connect(push_xmpp, "mallory")
    try:
        with pytest.raises(IqError) as refused:
            await enable_push(mallory, str(app.client.boundjid), "spy", to=f"dave@{DOMAIN}")
        assert refused.value.condition == "service-unavailable"
        await enable_push(phone, str(app.client.boundjid), "dave-node")
        await subscribe_each_other(contact, phone)
        await log_out([phone])
        await contact.presence_from(f"dave@{DOMAIN}/phone", "unavailable")
        contact.send_message(mto=f"dave@{DOMAIN}", mbody="for dave", mtype="chat")
        node, summary = await app.next_summary()
        assert (node, summary["last-message-sender"]) == ("dave-node", f"bob@{DOMAIN}")
        assert "last-message-body" not in summary
        # The ping is answered after the publishes heron sent before it: none was mallory's.
        await app.client.plugin["xep_0199"].ping(slixmpp.JID(DOMAIN), timeout=TIMEOUT)
        assert app.publishes.empty()
    finally:
        await log_out([app.client, contact, mallory])
