"""UDP sockets read straight off the event loop, for listeners and relays alike.

Relays are opened synchronously while an Allocate is answered, so they use
plain non-blocking sockets registered with ``loop.add_reader`` rather than
asyncio transports (whose creation is a coroutine).

A listener, which every client shares, drains up to a batch of datagrams a
wake-up. A relay, which carries one allocation's few packets in flight, reads
one: draining costs a ``recvfrom`` that fails with EAGAIN (and raises) per
wake-up, which measured as much as a third of a relayed packet's cost, while
the loop's epoll is level-triggered and wakes the relay again for a datagram
left queued.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from heron.turn.allocation import Address

__all__ = ["SOCKET_DROP_REASONS", "SocketCounters", "UdpClient", "UdpRelay", "UdpSocket"]

log = logging.getLogger(__name__)

_BATCH = 64
_MAX_DATAGRAM = 65_535

Receiver = Callable[[bytes, Address], None]

SOCKET_DROP_REASONS = ("receive_buffer", "send_failed")
"""Drops at the sockets: the kernel's, for a full receive buffer (SO_MEMINFO), and ours
when a send fails (a full send buffer, EAGAIN or ENOBUFS; or an ICMP error queued)."""

_SO_MEMINFO = 55  # <asm-generic/socket.h>; Python's socket module lacks the name
_MEMINFO = struct.Struct("9I")
_MEMINFO_DROPS = 8  # SK_MEMINFO_DROPS


def kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped on ``sock`` (its receive buffer was full), ever."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, _MEMINFO.size)
    except OSError:
        return 0
    return int(_MEMINFO.unpack(raw)[_MEMINFO_DROPS])


@dataclass(slots=True)
class SocketCounters:
    """What a process's UDP sockets (listeners and relays) received, and lost."""

    received: int = 0
    send_failed: int = 0
    closed_kernel_drops: int = 0
    """The kernel's drops on sockets since closed (a live socket's are read when asked)."""


class UdpSocket:
    """A bound non-blocking UDP socket whose datagrams go to ``receiver``."""

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        counters: SocketCounters | None = None,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.address: Address = sock.getsockname()[:2]
        self.counters = counters or SocketCounters()
        self._loop = loop
        self._receiver: Receiver | None = None
        self._watched = False

    def start(self, receiver: Receiver) -> None:
        """Drain up to a batch of datagrams into ``receiver`` each time the socket is readable."""
        self._receiver = receiver
        self.watch(self._readable)

    def watch(self, readable: Callable[[], None]) -> None:
        """Call ``readable`` each time the socket is readable (level-triggered)."""
        self._watched = True
        self._loop.add_reader(self.sock.fileno(), readable)

    def _readable(self) -> None:
        receive = self.sock.recvfrom
        receiver = self._receiver
        assert receiver is not None
        received = 0
        try:
            for _ in range(_BATCH):
                try:
                    data, source = receive(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    continue  # an ICMP error queued on the socket: nothing to read
                received += 1
                receiver(data, source[:2])
        finally:
            self.counters.received += received

    def sendto(self, data: bytes, address: Address) -> None:
        try:
            self.sock.sendto(data, address)
        except OSError:  # a full buffer (EAGAIN, ENOBUFS) or an ICMP error queued
            self.counters.send_failed += 1  # UDP: this datagram is lost, nothing more

    def kernel_drops(self) -> int:
        return kernel_drops(self.sock) if self.sock.fileno() >= 0 else 0

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            if self._watched:
                self._loop.remove_reader(self.sock.fileno())
            self.counters.closed_kernel_drops += kernel_drops(self.sock)
            self.sock.close()


class UdpClient:
    """The way back to a UDP client: its address, through the listener it used."""

    stream = False

    def __init__(self, listener: UdpSocket, address: Address) -> None:
        self._sendto = listener.sock.sendto
        self._counters = listener.counters
        self._address = address

    def send(self, data: bytes) -> None:
        try:
            self._sendto(data, self._address)
        except OSError:  # as UdpSocket.sendto
            self._counters.send_failed += 1


class UdpRelay:
    """A relay socket; it forwards peers' datagrams to its allocation once attached."""

    def __init__(self, udp: UdpSocket, advertised: Address, clock: Callable[[], float]) -> None:
        self._udp = udp
        self._sendto = udp.sock.sendto
        self._counters = udp.counters
        self.address = advertised
        self._clock = clock

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        receive, counters, clock = self._udp.sock.recvfrom, self._counters, self._clock

        def readable() -> None:
            # One datagram a wake-up: see the module docstring.
            try:
                data, peer = receive(_MAX_DATAGRAM)
            except OSError:  # woken for nothing (EAGAIN), or an ICMP error queued
                return
            counters.received += 1
            deliver(data, peer[:2], clock())

        self._udp.watch(readable)

    def send(self, data: bytes, peer: Address) -> None:
        try:
            self._sendto(data, peer)
        except OSError:  # as UdpSocket.sendto
            self._counters.send_failed += 1

    def close(self) -> None:
        self._udp.close()
