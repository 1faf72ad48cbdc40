"""Hostile XML over a real socket ends that one stream (RFC 6120 §4.9, §11.1); the server
and everyone else's sessions carry on."""

from __future__ import annotations

import asyncio

import pytest

from tests.interop.xmpp.support import DOMAIN, TIMEOUT, XmppServer, logged_in

HEADER = (
    f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams'>"
).encode()
LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>'
)

HOSTILE = {
    "billion laughs": (LAUGHS + HEADER, "restricted-xml"),
    "external entity": (
        b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + HEADER,
        "restricted-xml",
    ),
    "processing instruction": (HEADER + b"<?evil data?>", "restricted-xml"),
    "comment": (HEADER + b"<!-- hi -->", "restricted-xml"),
    "invalid UTF-8": (HEADER + b"<message>\xff\xfe</message>", "not-well-formed"),
    "deep nesting": (HEADER + b"<a>" * 10_000, "policy-violation"),
    "oversize stanza": (HEADER + b"<message><body>" + b"x" * 300_000, "policy-violation"),
}


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT):
        received += chunk
    return received


@pytest.mark.parametrize("attack", sorted(HOSTILE))
async def test_hostile_xml_ends_only_its_own_stream(shared_xmpp: XmppServer, attack: str) -> None:
    payload, condition = HOSTILE[attack]
    async with logged_in(shared_xmpp, "trent", plugins=("xep_0199",)) as (bystander,):
        reader, writer = await asyncio.open_connection("127.0.0.1", shared_xmpp.port)
        try:
            writer.write(payload)
            await writer.drain()
            answer = await read_until_closed(reader)
        finally:
            writer.close()
        assert b"<stream:error>" in answer
        assert f"<{condition} ".encode() in answer or f"<{condition}/>".encode() in answer
        assert answer.rstrip().endswith(b"</stream:stream>")
        # The bystander's session is untouched and the server still answers it.
        await bystander.plugin["xep_0199"].ping(DOMAIN, timeout=TIMEOUT)
