"""Opening relays for the core: UDP sockets and TCP listeners in the configured port range."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import weakref
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from heron.turn.allocation import RESERVATION_LIFETIME, Relay
from heron.turn.transports.tcp_relay import PeerLink, TcpRelay, tcp_socket
from heron.turn.transports.udp import SocketCounters, UdpRelay, UdpSocket

__all__ = ["RESERVATION_LIFETIME", "RelaySockets"]

# <linux/in.h>, <linux/in6.h>: Python 3.11's socket module lacks these names.
_IP_MTU_DISCOVER = 10
_IPV6_MTU_DISCOVER = 23
_PMTUDISC_DO = 2


def _set_dont_fragment(sock: socket.socket, version: int) -> None:
    """Send with DF set and never fragment locally (Linux path MTU discovery "do")."""
    if version == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _PMTUDISC_DO)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _PMTUDISC_DO)


class RelaySockets:
    """Binds relay sockets in the configured port range (coturn min-port/max-port)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        addresses: dict[int, IPv4Address | IPv6Address],
        ports: tuple[int, int],
        *,
        advertised: dict[int, IPv4Address | IPv6Address] | None = None,
        clock: Callable[[], float],
        counters: SocketCounters | None = None,
    ) -> None:
        self._loop = loop
        self.counters = counters or SocketCounters()
        self._open: weakref.WeakSet[UdpSocket] = weakref.WeakSet()
        self._hosts = {version: str(address) for version, address in addresses.items()}
        """The addresses to bind as strings, made once: ``str`` of an address is not free."""
        self._advertised = advertised or {}
        self._ports = ports
        self._clock = clock
        self._reserved: dict[bytes, tuple[UdpSocket, float]] = {}
        self.versions = frozenset(addresses)
        self.on_peer: Callable[[TcpRelay, PeerLink], None] | None = None
        """Called when a peer connects to a TCP relay."""
        self.on_closed: Callable[[PeerLink], None] = lambda link: None
        """Called when a peer connection of a TCP relay ends."""

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

    def open_tcp(self, version: int) -> Relay | None:
        """A listening TCP relay (RFC 6062); peers that connect go to ``on_peer``."""
        if self.on_peer is None:
            return None
        low, high = self._ports
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        for _ in range(64):
            try:
                sock = tcp_socket(family, (self._hosts[version], random.randint(low, high)))
            except OSError:
                continue
            port = sock.getsockname()[1]
            shown = self._advertised.get(version)
            advertised = (str(shown), port) if shown is not None else sock.getsockname()[:2]
            return TcpRelay(sock, advertised, self._loop, self.on_peer, self.on_closed)
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

    def kernel_drops(self) -> int:
        """The kernel's drops on the relay sockets open now (closed ones are in counters)."""
        return sum(udp.kernel_drops() for udp in list(self._open))

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
        # Non-blocking from the start (Python adds SOCK_CLOEXEC itself), and bound to
        # an address known here: no ioctl or getsockname per relay.
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        host = self._hosts[version]
        try:
            if version == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            return None
        udp = UdpSocket(sock, self._loop, self.counters, (host, port))
        self._open.add(udp)
        return udp
