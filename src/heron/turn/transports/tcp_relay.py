"""TCP relays (RFC 6062): a listening socket per TCP allocation and its peer connections.

A peer connection buffers what the peer sends until the client binds a data
connection to it; from then on bytes flow both ways untouched, with each
side pausing the other when its buffer fills.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

from heron.turn.allocation import Address

__all__ = ["PeerLink", "TcpRelay", "open_outgoing", "tcp_socket"]

MAX_UNBOUND_BUFFER = 64 * 1024
"""Peer bytes kept before the client binds; past this the peer is paused."""


def tcp_socket(family: int, address: Address) -> socket.socket:
    """A TCP socket on the relay address; SO_REUSEPORT lets Connect share the listener's port."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class PeerLink(asyncio.Protocol):
    """One TCP connection with a peer; joined later to the client's data connection."""

    def __init__(self, on_made: Callable[[PeerLink], None], on_lost: Callable[[PeerLink], None]):
        self._on_made = on_made
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._partner: asyncio.Transport | None = None
        self.peer: Address = ("", 0)
        self.connection_id: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = (host, port)
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self._partner is not None:
            self._partner.write(data)
            return
        self._buffer += data
        if len(self._buffer) > MAX_UNBOUND_BUFFER and self._transport is not None:
            self._transport.pause_reading()

    def join(self, partner: asyncio.Transport) -> None:
        """Start piping to the client's data connection, beginning with what was buffered."""
        self._partner = partner
        if self._buffer:
            partner.write(bytes(self._buffer))
            self._buffer.clear()
        if self._transport is not None:
            self._transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partner is not None:
            self._partner.close()
        self._on_lost(self)


class TcpRelay:
    """The relayed transport address of a TCP allocation: peers connect here."""

    def __init__(
        self,
        sock: socket.socket,
        advertised: Address,
        loop: asyncio.AbstractEventLoop,
        on_peer: Callable[[TcpRelay, PeerLink], None],
        on_closed: Callable[[PeerLink], None],
    ) -> None:
        self.address = advertised
        self.local: Address = sock.getsockname()[:2]
        self.family = sock.family
        self.links: set[PeerLink] = set()
        self._loop = loop
        self._on_peer = on_peer
        self._on_closed = on_closed
        self._closed = False
        sock.listen(16)
        self._server = loop.create_task(loop.create_server(self._incoming, sock=sock))

    def _incoming(self) -> PeerLink:
        return PeerLink(self._arrived, self.lost)

    def _arrived(self, link: PeerLink) -> None:
        self.links.add(link)
        self._on_peer(self, link)

    def lost(self, link: PeerLink) -> None:
        self.links.discard(link)
        self._on_closed(link)

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        """TCP allocations carry no datagrams; peers arrive as connections instead."""

    def send(self, data: bytes, peer: Address) -> None:
        """Nothing to send: data goes through bound connections."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.add_done_callback(_close_server)
        for link in list(self.links):
            link.close()


def _close_server(task: asyncio.Task[asyncio.Server]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


async def open_outgoing(relay: TcpRelay, peer: Address, timeout: float) -> PeerLink:
    """Connect from the relayed address to ``peer`` (RFC 6062 §5.2); OSError on failure."""
    loop = asyncio.get_running_loop()
    sock = tcp_socket(relay.family, relay.local)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, peer), timeout)
        _, link = await loop.create_connection(
            lambda: PeerLink(relay.links.add, relay.lost), sock=sock
        )
    except (OSError, TimeoutError) as exc:
        sock.close()
        raise OSError(f"cannot connect to {peer}: {exc}") from None
    return link
