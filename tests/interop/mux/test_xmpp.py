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

from tests.interop.mux.support import ACCOUNTS, DOMAIN, MuxHeron
from tests.interop.xmpp.support import (
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
        f"{user}@{DOMAIN}/mux", ACCOUNTS[user], server.port, alpn_context(server), direct_tls=True
    )


async def starttls(server: MuxHeron, user: str) -> Client:
    jid = f"{user}@{DOMAIN}/mux"
    return await login(jid, ACCOUNTS[user], server.port, client_context(server.xmpp))


async def leave(*clients: Client) -> None:
    """Log out once heron has answered a roster request from each: it handles a stream's
    stanzas in order, so the initial presence is done with by then. heron stopped while
    still at it exits by SIGKILL, 30 s later (reported to the lead)."""
    for client in clients:
        await asyncio.wait_for(client.get_roster(), TIMEOUT)
    await log_out(list(clients))


def tls_of(client: Client) -> ssl.SSLObject | None:
    """The TLS of the client's connection to heron, if any."""
    assert client.transport is not None
    tls: ssl.SSLObject | None = client.transport.get_extra_info("ssl_object")
    return tls


async def test_xep0368_direct_tls_login_by_alpn_through_the_mux(shared_mux: MuxHeron) -> None:
    client = await direct_tls(shared_mux, "bob")
    try:
        assert str(client.boundjid) == f"{'bob'}@{DOMAIN}/mux"
        tls = tls_of(client)
        assert tls is not None and tls.selected_alpn_protocol() == "xmpp-client"
    finally:
        await leave(client)


async def test_rfc6120_starttls_login_through_the_mux(shared_mux: MuxHeron) -> None:
    client = await starttls(shared_mux, "ivan")
    try:
        assert str(client.boundjid) == f"{'ivan'}@{DOMAIN}/mux"
        assert tls_of(client) is not None  # upgraded by STARTTLS
    finally:
        await leave(client)


async def test_rfc6121_message_between_direct_tls_and_starttls_through_the_mux(
    shared_mux: MuxHeron,
) -> None:
    sender = await direct_tls(shared_mux, "bob")
    receiver = await starttls(shared_mux, "ivan")
    try:
        sender.send_message(mto=receiver.boundjid, mbody="one port", mtype="chat")
        message = await receiver.next_message("one port")
        assert message["from"] == sender.boundjid
        receiver.send_message(mto=sender.boundjid, mbody="one port back", mtype="chat")
        answer = await sender.next_message("one port back")
        assert answer["from"] == receiver.boundjid
    finally:
        await leave(sender, receiver)
