"""aioice's TURN client (the one aiortc uses) relays through heron over UDP, TCP and TLS.

The echo peer is an asyncio datagram endpoint in the test: it sees where each datagram came
from, so the test checks that the source is the relayed address heron allocated.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

import pytest
from aioice.turn import create_turn_endpoint

from tests.interop.turn.support import LOCALHOST, PASSWORD, TURN_USER, TurnServer

pytestmark = pytest.mark.interop

COUNT = 20
TIMEOUT = 10.0
Address = tuple[str, int]


class EchoPeer(asyncio.DatagramProtocol):
    """Sends every datagram back where it came from, remembering the sources."""

    def __init__(self) -> None:
        self.sources: list[Address] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        self.sources.append(source)
        assert self.transport is not None
        self.transport.sendto(data, source)


class Receiver(asyncio.DatagramProtocol):
    """The application side of the TURN endpoint: collects echoes until ``expected`` arrive."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Address]] = []
        self.errors: list[Exception] = []
        self.expected = COUNT
        self.complete = asyncio.Event()
        self.closed = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.append((data, (str(addr[0]), int(addr[1]))))
        if len(self.received) >= self.expected:
            self.complete.set()

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.complete.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


def tls_context(server: TurnServer) -> ssl.SSLContext:
    """Verifying, against heron's self-signed certificate (it names 127.0.0.1 too)."""
    context = ssl.create_default_context(cafile=str(server.certificate))
    context.set_alpn_protocols(["stun.turn"])
    return context


async def relays_to_an_echo_peer(
    turn: TurnServer,
    server: Address,
    transport: str,
    context: ssl.SSLContext | None,
    *,
    user: str = TURN_USER,
    password: str = PASSWORD,
) -> None:
    """aioice allocates at ``server`` over ``transport`` (TLS with ``context``) and
    relays COUNT datagrams to an echo peer: each comes back from the peer, and the peer
    saw them all from the relayed address, one of ``turn``'s relay ports."""
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(EchoPeer, local_addr=(LOCALHOST, 0))
    peer_address: Address = peer_transport.get_extra_info("sockname")[:2]
    try:
        relay, receiver = await asyncio.wait_for(
            create_turn_endpoint(
                Receiver,
                server_addr=server,
                username=user,
                password=password,
                transport=transport,
                ssl=context,
            ),
            TIMEOUT,
        )
        try:
            relayed = relay.get_extra_info("sockname")
            assert relayed[0] == LOCALHOST and turn.has_relay_port(relayed[1]), relayed
            payloads = {b"heron %d " % i + bytes(i * 7) for i in range(COUNT)}
            for payload in sorted(payloads):
                relay.sendto(payload, peer_address)
            await asyncio.wait_for(receiver.complete.wait(), TIMEOUT)
            assert receiver.errors == []
            assert {data for data, _ in receiver.received} == payloads
            assert {source for _, source in receiver.received} == {peer_address}
            assert set(peer.sources) == {tuple(relayed)}
        finally:
            relay.close()
            await asyncio.wait_for(receiver.closed.wait(), TIMEOUT)
    finally:
        peer_transport.close()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_aioice_relays_to_udp_peer(shared_turn: TurnServer, transport: str) -> None:
    tls = transport == "tls"
    port = shared_turn.tls_port if tls else shared_turn.port
    context = tls_context(shared_turn) if tls else None
    await relays_to_an_echo_peer(
        shared_turn, (LOCALHOST, port), "udp" if transport == "udp" else "tcp", context
    )


async def test_tls_listener_negotiates_stun_turn_alpn(shared_turn: TurnServer) -> None:
    # RFC 7443: the ALPN identifier of TURN over TLS is "stun.turn".
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(LOCALHOST, shared_turn.tls_port, ssl=tls_context(shared_turn)),
        TIMEOUT,
    )
    try:
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "stun.turn"
    finally:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)
