"""slixmpp through the mux port (issue 13): XEP-0368 direct TLS, named by ALPN
``xmpp-client``, and RFC 6120 STARTTLS, named by the plain stream header; a message
goes from one to the other. heron's XMPP has no listener of its own here.

slixmpp 1.17 offers no ALPN by itself: its direct TLS names only the domain in SNI,
which is heron's host name, so the mux would give it to the web component. A client
that follows XEP-0368 §3 offers ``xmpp-client``; here the ssl context does.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest

from tests.interop.mux.support import DOMAIN, XMPP_USERS, MuxHeron
from tests.interop.xmpp.support import (
    PASSWORD,
    TIMEOUT,
    Client,
    client_context,
    log_out,
    login,
)

pytestmark = pytest.mark.interop


def alpn_context(server: MuxHeron) -> ssl.SSLContext:
    context = client_context(server.xmpp)
    context.set_alpn_protocols(["xmpp-client"])
    return context


async def direct_tls(server: MuxHeron, user: str) -> Client:
    return await login(
        f"{user}@{DOMAIN}/mux", PASSWORD, server.port, alpn_context(server), direct_tls=True
    )


async def starttls(server: MuxHeron, user: str) -> Client:
    return await login(f"{user}@{DOMAIN}/mux", PASSWORD, server.port, client_context(server.xmpp))


async def leave(*clients: Client) -> None:
    """Log out once heron has answered a roster request from each: it handles a stream's
    stanzas in order, so the initial presence is done with by then. heron stopped while
    still at it exits by SIGKILL, 30 s later (reported to the lead)."""
    for client in clients:
        await asyncio.wait_for(client.get_roster(), TIMEOUT)
    await log_out(list(clients))


async def test_xep0368_direct_tls_login_by_alpn_through_the_mux(shared_mux: MuxHeron) -> None:
    client = await direct_tls(shared_mux, XMPP_USERS[0])
    try:
        assert str(client.boundjid) == f"{XMPP_USERS[0]}@{DOMAIN}/mux"
        tls = client.transport.get_extra_info("ssl_object")
        assert tls.selected_alpn_protocol() == "xmpp-client"
    finally:
        await leave(client)


async def test_rfc6120_starttls_login_through_the_mux(shared_mux: MuxHeron) -> None:
    client = await starttls(shared_mux, XMPP_USERS[1])
    try:
        assert str(client.boundjid) == f"{XMPP_USERS[1]}@{DOMAIN}/mux"
        assert client.transport.get_extra_info("ssl_object") is not None  # upgraded
    finally:
        await leave(client)


async def test_rfc6121_message_between_direct_tls_and_starttls_through_the_mux(
    shared_mux: MuxHeron,
) -> None:
    sender = await direct_tls(shared_mux, XMPP_USERS[2])
    receiver = await starttls(shared_mux, XMPP_USERS[3])
    try:
        sender.send_message(mto=receiver.boundjid, mbody="one port", mtype="chat")
        message = await receiver.next_message("one port")
        assert message["from"] == sender.boundjid
        receiver.send_message(mto=sender.boundjid, mbody="one port back", mtype="chat")
        answer = await sender.next_message("one port back")
        assert answer["from"] == receiver.boundjid
    finally:
        await leave(sender, receiver)
