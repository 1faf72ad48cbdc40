"""Stopping federation while another server's stream is open: the stream ends with
system-shutdown (RFC 6120 §4.9.3.20) and nothing is reported as an error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, NoReturn
from xml.etree.ElementTree import Element

from heron.config import ListenAddress
from heron.connections import ConnectionLimiter
from heron.listeners import Accepting
from heron.peer_tls import s2s_client_context, s2s_server_context
from heron.tls import write_self_signed
from heron.xmpp.errors import StanzaError
from heron.xmpp.jid import JID
from heron.xmpp.s2s.server import Federation, FederationSettings
from tests.support.config import free_port

DOMAIN = "falcot.com"
PEER_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='example.org' to='falcot.com' "
    b"version='1.0'>"
)


async def _deliver(stanza: Element, sender: JID, to: JID) -> None:
    raise AssertionError("nothing is delivered in this test")


async def _bounce(stanza: Element, error: StanzaError, sender: JID, to: JID) -> None:
    raise AssertionError("nothing is bounced in this test")


async def _locate(domain: str) -> NoReturn:
    raise AssertionError("nothing is looked up in this test")


def _federation(directory: Path) -> Federation:
    cert, key = directory / "cert.pem", directory / "key.pem"
    write_self_signed(cert, key, [DOMAIN])
    return Federation(
        FederationSettings(local_domains=frozenset({DOMAIN})),
        deliver=_deliver,
        bounce=_bounce,
        locate=_locate,
        server_tls=s2s_server_context(cert, key, None),
        client_tls=s2s_client_context(cert, key, None),
        connections=ConnectionLimiter(0),
        dialback_secret=b"dialback secret of this test",
    )


async def test_stop_ends_an_open_incoming_stream_without_an_error(tmp_path: Path) -> None:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    federation = _federation(tmp_path)
    port = free_port()
    listener = Accepting("xmpp", ListenAddress("127.0.0.1", port), federation.handoff(), tls=False)
    listener.bind()
    await listener.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(PEER_HEADER)
        await reader.readuntil(b"</stream:features>")  # heron's side now waits on the peer
        listener.close_listener()  # as the XMPP component stops
        await federation.stop()
        closing = await reader.read()
    finally:
        writer.close()
    assert b"system-shutdown" in closing
    assert errors == []
