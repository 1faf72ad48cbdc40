"""UDP sockets read straight off the event loop, for listeners and relays alike.

Relays are opened synchronously while an Allocate is answered, so they use
plain non-blocking sockets registered with ``loop.add_reader`` rather than
asyncio transports (whose creation is a coroutine). Each wake-up drains up
to a batch of datagrams, which is also what keeps the relay path cheap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from heron.turn.allocation import Address, Relay

__all__ = ["UdpClient", "UdpRelay", "UdpRelayFactory", "UdpSocket"]

log = logging.getLogger(__name__)

_BATCH = 64
_MAX_DATAGRAM = 65_535
RESERVATION_LIFETIME = 30.0
"""RFC 8656 §7.2: a reserved port is held for about 30 seconds."""

Receiver = Callable[[bytes, Address], None]

# <linux/in.h>, <linux/in6.h>: Python 3.11's socket module lacks these names.
_IP_MTU_DISCOVER = 10
_IPV6_MTU_DISCOVER = 23
_PMTUDISC_DO = 2


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
        self._listener = listener
        self._address = address

    def send(self, data: bytes) -> None:
        self._listener.sendto(data, self._address)


class UdpRelay:
    """A relay socket; it forwards peers' datagrams to its allocation once attached."""

    def __init__(self, udp: UdpSocket, advertised: Address, clock: Callable[[], float]) -> None:
        self._udp = udp
        self.address = advertised
        self._clock = clock

    def attach(self, deliver: Callable[[bytes, Address, float], None]) -> None:
        clock = self._clock
        self._udp.start(lambda data, peer: deliver(data, peer, clock()))

    def send(self, data: bytes, peer: Address) -> None:
        self._udp.sendto(data, peer)

    def close(self) -> None:
        self._udp.close()


def _set_dont_fragment(sock: socket.socket, version: int) -> None:
    """Send with DF set and never fragment locally (Linux path MTU discovery "do")."""
    if version == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _PMTUDISC_DO)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _PMTUDISC_DO)


class UdpRelayFactory:
    """Binds relay sockets in the configured port range (coturn min-port/max-port)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        addresses: dict[int, IPv4Address | IPv6Address],
        ports: tuple[int, int],
        *,
        advertised: dict[int, IPv4Address | IPv6Address] | None = None,
        clock: Callable[[], float],
    ) -> None:
        self._loop = loop
        self._addresses = addresses
        self._advertised = advertised or {}
        self._ports = ports
        self._clock = clock
        self._reserved: dict[bytes, tuple[UdpSocket, float]] = {}
        self.versions = frozenset(addresses)

    def open(
        self, version: int, *, even_port: bool, reserve_next: bool, dont_fragment: bool = False
    ) -> tuple[Relay, bytes | None] | None:
        low, high = self._ports
        for _ in range(64):
            port = random.randint(low, high - 1 if reserve_next else high)
            if even_port and port % 2:
                port -= 1 if port > low else -1
            relay = self._bind(version, port)
            if relay is None:
                continue
            if dont_fragment:
                _set_dont_fragment(relay.sock, version)
            if not reserve_next:
                return self._relay(version, relay), None
            following = self._bind(version, port + 1)
            if following is None:
                relay.close()
                continue
            token = os.urandom(8)
            self._reserved[token] = (following, self._clock() + RESERVATION_LIFETIME)
            return self._relay(version, relay), token
        return None

    def claim(self, token: bytes) -> Relay | None:
        reserved = self._reserved.pop(token, None)
        if reserved is None:
            return None
        udp = reserved[0]
        version = 6 if ":" in udp.address[0] else 4
        return self._relay(version, udp)

    def expire(self, now: float) -> None:
        for token in [t for t, (_, until) in self._reserved.items() if until < now]:
            self._reserved.pop(token)[0].close()

    def close(self) -> None:
        for udp, _ in self._reserved.values():
            udp.close()
        self._reserved.clear()

    def _relay(self, version: int, udp: UdpSocket) -> UdpRelay:
        shown = self._advertised.get(version)
        advertised = (str(shown), udp.address[1]) if shown is not None else udp.address
        return UdpRelay(udp, advertised, self._clock)

    def _bind(self, version: int, port: int) -> UdpSocket | None:
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if version == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((str(self._addresses[version]), port))
        except OSError:
            sock.close()
            return None
        return UdpSocket(sock, self._loop)
