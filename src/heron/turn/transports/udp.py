"""UDP sockets read straight off the event loop, for listeners and relays alike.

Relays are opened synchronously while an Allocate is answered, so they use
plain non-blocking sockets registered with ``loop.add_reader`` rather than
asyncio transports (whose creation is a coroutine). Each wake-up drains up
to a batch of datagrams, which is also what keeps the relay path cheap.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from heron.turn.allocation import Address

__all__ = ["UdpClient", "UdpRelay", "UdpSocket"]

log = logging.getLogger(__name__)

_BATCH = 64
_MAX_DATAGRAM = 65_535

Receiver = Callable[[bytes, Address], None]


class UdpSocket:
    """A bound non-blocking UDP socket whose datagrams go to ``receiver``."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.address: Address = sock.getsockname()[:2]
        self._loop = loop
        self._receiver: Receiver | None = None

    def start(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        receive = self.sock.recvfrom
        receiver = self._receiver
        assert receiver is not None
        for _ in range(_BATCH):
            try:
                data, source = receive(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the socket: nothing to read
            receiver(data, source[:2])

    def sendto(self, data: bytes, address: Address) -> None:
        try:
            self.sock.sendto(data, address)
        except OSError:
            pass  # UDP: a full buffer or an unreachable peer loses this datagram only

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            if self._receiver is not None:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


class UdpClient:
    """The way back to a UDP client: its address, through the listener it used."""

    stream = False

    def __init__(self, listener: UdpSocket, address: Address) -> None:
        self._sendto = listener.sock.sendto
        self._address = address

    def send(self, data: bytes) -> None:
        try:
            self._sendto(data, self._address)
        except OSError:
            pass  # as UdpSocket.sendto: this datagram is lost, nothing more


class UdpRelay:
    """A relay socket; it forwards peers' datagrams to its allocation once attached."""

    def __init__(self, udp: UdpSocket, advertised: Address, clock: Callable[[], float]) -> None:
        self._udp = udp
        self._sendto = udp.sock.sendto
        self.address = advertised
        self._clock = clock

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        clock = self._clock
        self._udp.start(lambda data, peer: deliver(data, peer, clock()))

    def send(self, data: bytes, peer: Address) -> None:
        try:
            self._sendto(data, peer)
        except OSError:
            pass  # as UdpSocket.sendto: this datagram is lost, nothing more

    def close(self) -> None:
        self._udp.close()
