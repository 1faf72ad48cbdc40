"""A bare XMPP client for attacking heron's c2s port: raw bytes over direct TLS (XEP-0368),
from any loopback source address, reading until the server's answer is whole.

An attacker needs no client library, and the tests need to see the exact bytes
(salts, failure conditions), so this speaks the few steps of RFC 6120 by hand.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.security.support import DOMAIN, HOST, Target

TIMEOUT = 15.0
HEADER = (
    f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0'"
    " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
).encode()
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
_SASL_ANSWER = re.compile(rb"<(success|failure|challenge)\b[^>]*(/>|>.*?</\1>)", re.S)


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: bytes = b""

    async def until(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        """Read until ``pattern`` matches what came since the last match; consume it."""
        while (found := pattern.search(self.received)) is None:
            chunk = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            if not chunk:
                raise ConnectionError(f"closed by the server after {self.received!r}")
            self.received += chunk
        self.received = self.received[found.end() :]
        return found

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def open_stream(self) -> bytes:
        """The header, then the server's features (the SASL mechanisms offered)."""
        await self.send(HEADER)
        return (await self.until(re.compile(rb"<stream:features>.*?</stream:features>", re.S)))[0]

    async def sasl(self, element: str) -> tuple[str, bytes]:
        """Send a SASL element; the answer's name (success, failure, challenge) and text."""
        await self.send(element.encode())
        answer = await self.until(_SASL_ANSWER)
        return answer[1].decode(), answer[0]

    async def closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        while chunk := await asyncio.wait_for(self.reader.read(65536), TIMEOUT):
            self.received += chunk
        return self.received


@asynccontextmanager
async def connected(target: Target, source: str = HOST) -> AsyncIterator[Connection]:
    """A TLS connection to the direct-TLS c2s port from ``source`` (a 127.0.0.0/8 address)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            HOST,
            target.ports["xmpp.tls_listen"],
            ssl=target.tls_context(),
            server_hostname=DOMAIN,
            local_addr=(source, 0),
        ),
        TIMEOUT,
    )
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()


def plain(user: str, password: str) -> str:
    payload = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='{SASL}' mechanism='PLAIN'>{payload}</auth>"


async def plain_login(target: Target, user: str, password: str, source: str = HOST) -> bytes:
    """One SASL PLAIN attempt on a fresh connection: the server's <success/> or <failure/>."""
    async with connected(target, source) as connection:
        await connection.open_stream()
        return (await connection.sasl(plain(user, password)))[1]


async def scram_server_first(
    target: Target, user: str, mechanism: str, source: str = HOST
) -> dict[str, str]:
    """The server-first message (RFC 5802 §5.1) heron answers a client-first for ``user``
    with, as its attributes; the exchange is left there."""
    client_first = base64.b64encode(f"n,,n={user},r=attackernonce".encode()).decode()
    async with connected(target, source) as connection:
        await connection.open_stream()
        name, answer = await connection.sasl(
            f"<auth xmlns='{SASL}' mechanism='{mechanism}'>{client_first}</auth>"
        )
        assert name == "challenge", answer
        text = re.sub(rb"<[^>]*>", b"", answer)
        server_first = base64.b64decode(text).decode()
    return dict(item.split("=", 1) for item in server_first.split(","))


def peak_memory(pid: int) -> int:
    """A process's resident set high-water mark (VmHWM), in bytes: it catches a peak that
    lasted a fraction of a second, which sampling VmRSS could miss."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert found is not None
    return int(found[1]) * 1024


@asynccontextmanager
async def logged_in(
    target: Target, user: str, password: str, source: str = HOST
) -> AsyncIterator[Connection]:
    """A session of ``user`` with a bound resource (RFC 6120 §6.4.6 restart, §7 bind)."""
    async with connected(target, source) as connection:
        await connection.open_stream()
        name, answer = await connection.sasl(plain(user, password))
        assert name == "success", answer
        await connection.open_stream()
        await connection.send(
            b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
        )
        await connection.until(re.compile(rb"<iq [^>]*id=\"bind\".*?</iq>", re.S))
        yield connection
