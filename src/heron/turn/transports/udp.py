"""UDP sockets read straight off the event loop, for listeners and relays alike.

Relays are opened synchronously while an Allocate is answered, so they use
plain non-blocking sockets registered with ``loop.add_reader`` rather than
asyncio transports (whose creation is a coroutine).

Where the C extension :mod:`heron.turn._mmsg` is built, a socket reads all it has
queued (up to a batch) with one ``recvmmsg`` per wake-up, and what is sent on it
during one loop iteration is queued and sent with one ``sendmmsg`` at the start of
the next: a relayed packet then costs a share of two system calls instead of one
``recvfrom`` and one ``sendto`` of its own, and the interpreter's work around them
(a socket method's frame, its parsed address, the BlockingIOError that ends a
drain) is paid per batch. Setting ``HERON_NO_MMSG`` (or an install without a C
compiler) keeps the pure-Python path below.

Without it, a listener, which every client shares, drains up to a batch of
datagrams a wake-up. A relay, which carries one allocation's few packets in
flight, reads one: draining costs a ``recvfrom`` that fails with EAGAIN (and
raises) per wake-up, which measured as much as a third of a relayed packet's
cost, while the loop's epoll is level-triggered and wakes the relay again for a
datagram left queued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from heron.turn.allocation import Address

try:
    from heron.turn._mmsg import recv_batch, send_batch

    BUILT = True
except ImportError:  # built without a C compiler: the pure-Python path only
    BUILT = False

__all__ = [
    "NO_MMSG",
    "Datagrams",
    "SOCKET_DROP_REASONS",
    "SocketCounters",
    "UdpClient",
    "UdpRelay",
    "UdpSocket",
    "batched",
]

log = logging.getLogger(__name__)

_BATCH = 64
_MAX_DATAGRAM = 65_535
_BUFFER = 65_536
"""Room for any UDP datagram (65,527 bytes at most without IPv6 jumbograms): none is cut."""

NO_MMSG = "HERON_NO_MMSG"
"""Environment variable that, set to anything but empty, keeps sockets on recvfrom/sendto."""

Datagrams = list[tuple[bytes, Address]]
"""Datagrams read in one wake-up, each with its sender."""
Receiver = Callable[[Datagrams], None]

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


def batched() -> bool:
    """Whether new sockets read by recvmmsg and send by sendmmsg (the module docstring)."""
    return BUILT and not os.environ.get(NO_MMSG)


@dataclass(slots=True)
class SocketCounters:
    """What a process's UDP sockets (listeners and relays) received, and lost."""

    received: int = 0
    send_failed: int = 0
    closed_kernel_drops: int = 0
    """The kernel's drops on sockets since closed (a live socket's are read when asked)."""


class UdpSocket:
    """A bound non-blocking UDP socket whose datagrams go to ``receiver``.

    A relay is opened per allocation, so what its setup costs in system calls counts:
    a caller that bound ``sock`` to a known port passes that ``address`` (no
    ``getsockname``), and one created with ``SOCK_NONBLOCK`` needs no ``setblocking``
    (an ``ioctl``).
    """

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        counters: SocketCounters | None = None,
        address: Address | None = None,
    ) -> None:
        if sock.getblocking():
            sock.setblocking(False)
        self.sock = sock
        self.address: Address = address if address is not None else sock.getsockname()[:2]
        self.counters = counters or SocketCounters()
        self.batched = batched()
        self.fd = sock.fileno()
        self._loop = loop
        self._receiver: Receiver | None = None
        self._watched = False
        self._outbox: Datagrams = []
        self.sendto: Callable[[bytes, Address], None] = (
            self._queue if self.batched else self._send_now
        )
        """Send a datagram: at once, or at the start of the next loop iteration, batched."""

    def start(self, receiver: Receiver) -> None:
        """Hand ``receiver`` up to a batch of datagrams each time the socket is readable: one
        call a wake-up, so what it does once (read the clock) is not paid per datagram."""
        self._receiver = receiver
        self.watch(self._read_batch if self.batched else self._readable)

    def watch(self, readable: Callable[[], None]) -> None:
        """Call ``readable`` each time the socket is readable (level-triggered)."""
        self._watched = True
        self._loop.add_reader(self.fd, readable)

    def receive_batch(self) -> Datagrams:
        """What is queued, up to a batch, by one recvmmsg (:attr:`batched` sockets only)."""
        batch = recv_batch(self.fd, _BATCH, _BUFFER)
        self.counters.received += len(batch)
        return batch

    def _read_batch(self) -> None:
        assert self._receiver is not None
        self._receiver(self.receive_batch())

    def _readable(self) -> None:
        receive = self.sock.recvfrom
        assert self._receiver is not None
        batch: Datagrams = []
        for _ in range(_BATCH):
            try:
                data, source = receive(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error queued on the socket: nothing to read
            batch.append((data, source[:2]))
        self.counters.received += len(batch)
        self._receiver(batch)

    def _queue(self, data: bytes, address: Address) -> None:
        outbox = self._outbox
        if not outbox:
            self._loop.call_soon(self.flush)
        outbox.append((data, address))

    def flush(self) -> None:
        """Send what was queued by one sendmmsg; what the kernel did not take is lost
        (a full send buffer, as for a failed ``sendto``) and counted."""
        outbox = self._outbox
        if not outbox:
            return
        sent = send_batch(self.fd, outbox) if self.sock.fileno() >= 0 else 0
        self.counters.send_failed += len(outbox) - sent
        outbox.clear()

    def _send_now(self, data: bytes, address: Address) -> None:
        try:
            self.sock.sendto(data, address)
        except OSError:  # a full buffer (EAGAIN, ENOBUFS) or an ICMP error queued
            self.counters.send_failed += 1  # UDP: this datagram is lost, nothing more

    def kernel_drops(self) -> int:
        return kernel_drops(self.sock) if self.sock.fileno() >= 0 else 0

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.flush()
            if self._watched:
                self._loop.remove_reader(self.fd)
            self.counters.closed_kernel_drops += kernel_drops(self.sock)
            self.sock.close()


class UdpClient:
    """The way back to a UDP client: its address, through the listener it used."""

    stream = False

    def __init__(self, listener: UdpSocket, address: Address) -> None:
        self._sendto = listener.sendto
        self._address = address

    def send(self, data: bytes) -> None:
        self._sendto(data, self._address)


class UdpRelay:
    """A relay socket; it forwards peers' datagrams to its allocation once attached."""

    def __init__(self, udp: UdpSocket, advertised: Address, clock: Callable[[], float]) -> None:
        self._udp = udp
        self.send: Callable[[bytes, Address], None] = udp.sendto
        """Send ``data`` to ``peer`` (the socket's own, so no frame of ours on the way)."""
        self.address = advertised
        self._clock = clock

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        udp, clock = self._udp, self._clock
        if udp.batched:
            receive_batch = udp.receive_batch

            def readable() -> None:
                now = clock()
                for data, peer in receive_batch():
                    deliver(data, peer, now)

        else:
            receive, counters = udp.sock.recvfrom, udp.counters

            def readable() -> None:
                # One datagram a wake-up: see the module docstring.
                try:
                    data, peer = receive(_MAX_DATAGRAM)
                except OSError:  # woken for nothing (EAGAIN), or an ICMP error queued
                    return
                counters.received += 1
                deliver(data, peer[:2], clock())

        udp.watch(readable)

    def close(self) -> None:
        self._udp.close()
