"""Another XMPP server, as an attacker runs one against heron's s2s listeners.

It is heron's own sans-IO :class:`~heron.xmpp.s2s.stream.S2SStream` over a real socket:
:func:`dial` connects to the target's STARTTLS s2s port as ``domain`` and negotiates
(TLS, then SASL EXTERNAL when heron trusts the certificate, dialback otherwise);
:func:`authoritative` serves a domain's s2s port the way its real server would, with a
dialback secret of its own, for heron's dialback checks. Raw bytes go out through
:meth:`S2SPeer.send`, so a test can say what heron's stream would refuse to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from heron.peer_tls import s2s_client_context, s2s_server_context
from heron.xmpp.s2s.events import Authenticated, Role, S2SEvent, StartTlsRequested, StreamEnded
from heron.xmpp.s2s.stream import S2SStream
from tests.security.support import DOMAIN, HOST, Target
from tests.security.xmpp_client import TIMEOUT
from tests.support.federation.ca import CertFiles, TestCa


@dataclass
class S2SPeer:
    """One s2s connection and the stream over it; ``events`` are every event it gave."""

    stream: S2SStream
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tls: ssl.SSLContext
    events: list[S2SEvent] = field(default_factory=list)
    received: bytes = b""
    """Every byte heron sent since TLS (or from the start, without TLS)."""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def flush(self) -> None:
        if data := self.stream.data_to_send():
            self.writer.write(data)

    async def until(self, wanted: Callable[[S2SEvent], bool]) -> S2SEvent:
        """Read and answer (STARTTLS) until an event is ``wanted``; fails when the stream
        ends first (unless the end is what is wanted)."""
        while True:
            while (event := self.stream.next_event()) is not None:
                self.events.append(event)
                if wanted(event):
                    self.flush()
                    return event
                if isinstance(event, StreamEnded):
                    raise AssertionError(f"the stream ended: {event.error!r}")
                if isinstance(event, StartTlsRequested):
                    await self._start_tls()
            self.flush()
            chunk = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            if not chunk:
                raise ConnectionError(f"closed by the peer after {self.received!r}")
            self.received += chunk
            self.stream.receive_data(chunk)

    async def _start_tls(self) -> None:
        self.flush()
        await self.writer.drain()
        server_side = self.stream.role is Role.INCOMING
        await self.writer.start_tls(self.tls, server_hostname=None if server_side else DOMAIN)
        self.received = b""
        self.stream.start_tls_done(lambda _domain: False)

    async def authenticated(self) -> Authenticated:
        event = await self.until(lambda event: isinstance(event, Authenticated))
        assert isinstance(event, Authenticated)
        return event

    async def ended(self) -> bytes:
        """Everything heron sends until it closes the connection (a reset too: heron may
        close before it reads our own end of the stream)."""
        with contextlib.suppress(ConnectionResetError):
            while chunk := await asyncio.wait_for(self.reader.read(65536), TIMEOUT):
                self.received += chunk
        return self.received


@asynccontextmanager
async def dial(
    target: Target, domain: str, tls: CertFiles, ca: TestCa, source: str = HOST
) -> AsyncIterator[S2SPeer]:
    """A stream from ``domain`` to the target's STARTTLS s2s port, started (not negotiated:
    call :meth:`S2SPeer.authenticated`)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, target.ports["xmpp.s2s_listen"], local_addr=(source, 0)),
        TIMEOUT,
    )
    stream = S2SStream(
        role=Role.OUTGOING,
        local_domains={domain},
        stream_id="",
        dialback_secret=b"the attacker's own secret",
        local=domain,
        remote=DOMAIN,
    )
    peer = S2SPeer(stream, reader, writer, s2s_client_context(tls.cert, tls.key, ca.cafile))
    stream.start()
    peer.flush()
    try:
        yield peer
    finally:
        writer.close()


@dataclass
class Authoritative:
    """A server of another domain: where it listens and the streams it accepted."""

    port: int
    accepted: list[S2SPeer]


@asynccontextmanager
async def authoritative(domain: str, tls: CertFiles, ca: TestCa) -> AsyncIterator[Authoritative]:
    """A server for ``domain`` on a free loopback port, answering dialback verifications
    with a secret of its own, which an attacker claiming ``domain`` does not know."""
    accepted: list[S2SPeer] = []
    context = s2s_server_context(tls.cert, tls.key, ca.cafile)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = S2SStream(
            role=Role.INCOMING,
            local_domains={domain},
            stream_id="authoritative",
            dialback_secret=b"the real owner's secret",
        )
        peer = S2SPeer(stream, reader, writer, context)
        accepted.append(peer)
        try:
            await peer.until(lambda event: isinstance(event, StreamEnded))
        except (ConnectionError, TimeoutError, AssertionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, HOST, 0)
    try:
        yield Authoritative(server.sockets[0].getsockname()[1], accepted)
    finally:
        server.close()


__all__ = ["Authoritative", "S2SPeer", "authoritative", "dial"]
