"""Connections that hold a c2s port without ever logging in (issue 10, item 5).

Hundreds of TCP connections from one address that never send a byte: past
``limits.connections_per_source`` they are refused at once, and the ones let in
are closed with a ``connection-timeout`` stream error at the handshake
deadline; so is one that asked for STARTTLS and never started the handshake.
A logged-in client that falls silent is pinged (XEP-0199), then closed after
the idle timeout.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from pathlib import Path

from tests.security.sip_tools import wait_for
from tests.security.support import HOST, USERS, target
from tests.security.xmpp_client import HEADER, TIMEOUT, logged_in

PER_SOURCE = 40
ATTEMPTS = 300


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing; the deadline is the test's, not the server's."""
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def test_silent_connections_are_capped_per_source_and_closed_at_the_deadline(
    tmp_path: Path,
) -> None:
    limits = {"limits": {"handshake_timeout": 2, "connections_per_source": PER_SOURCE}}
    with target(tmp_path / "heron", limits) as heron:
        async with AsyncExitStack() as stack:
            streams = []
            for port in ("xmpp.listen",) * (ATTEMPTS - 5) + ("xmpp.tls_listen",) * 5:
                reader, writer = await asyncio.open_connection(HOST, heron.ports[port])
                stack.callback(writer.close)
                streams.append(reader)
            # One more that asks for STARTTLS and then never starts the TLS handshake.
            reader, writer = await asyncio.open_connection(
                HOST, heron.ports["xmpp.listen"], local_addr=("127.0.0.3", 0)
            )
            stack.callback(writer.close)
            writer.write(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            stalled = reader
            # Meanwhile the server still serves everyone else.
            async with logged_in(heron, "roland", USERS["roland"], source="127.0.0.2"):
                pass
            answers = await asyncio.gather(*(_until_closed(reader) for reader in streams))
            assert b"<proceed " in await _until_closed(stalled)
        timed_out = [a for a in answers if b"<connection-timeout" in a]
        # The rest were refused at once; the direct TLS ones, which never finished their
        # handshake, were dropped at the same deadline without a word.
        closed = [a for a in answers if a == b""]
        assert len(timed_out) == PER_SOURCE
        assert len(closed) == ATTEMPTS - PER_SOURCE
        log = heron.log()
        assert "limits.connections_per_source" in log
        assert "limits.handshake_timeout" in log


async def test_a_silent_session_is_pinged_then_closed(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"limits": {"idle_timeout": 2}}) as heron:
        async with logged_in(heron, "roland", USERS["roland"]) as session:
            ping = await session.until(re.compile(rb"<iq [^>]*>\s*<ping xmlns=\"urn:xmpp:ping\""))
            assert b'type="get"' in ping[0]
            remaining = await session.closed()
        assert b"<connection-timeout" in remaining
        assert wait_for(lambda: "limits.idle_timeout" in heron.log()), heron.log()
