"""How many connections one source may hold, and how long an idle one may live, sans-IO.

Every stream listener (SIP TCP/TLS/WebSocket, TURN TCP/TLS, XMPP, the web)
asks one shared :class:`ConnectionLimiter` before it serves an accepted
connection, and tells it when the connection ends, so a source network cannot
take the server's file descriptors with connections that never speak.
:class:`ConnectionPolicy` carries the deadlines (``[limits]`` in the
configuration) each server enforces on its own connections: a handshake
deadline until the peer has proved who it is or sent a first whole message,
and an idle timeout after that.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from heron.guesses import network_key

__all__ = ["ConnectionLimiter", "ConnectionPolicy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """Deadlines every stream listener applies (``limits`` in the configuration)."""

    handshake_timeout: float = 30.0
    """Seconds from accept until TLS, the stream negotiation and authentication are done
    (or, for SIP, a first whole message came); then the connection is closed."""
    idle_timeout: float = 900.0
    """Seconds without a byte from the peer after which an established connection is closed
    (a protocol may ping first, or keep a connection that carries a live registration)."""


class ConnectionLimiter:
    """Open connections per source network (IPv4 address, IPv6 /64), over every listener.

    ``per_source`` 0 means no limit; ``exempt`` networks are never limited.
    """

    def __init__(
        self,
        per_source: int,
        *,
        exempt: Iterable[IPv4Network | IPv6Network] = (),
        ipv6_prefix: int = 64,
    ) -> None:
        self._limit = per_source
        self._exempt = tuple(exempt)
        self._prefix = ipv6_prefix
        self._open: dict[str, int] = {}
        self.refused = 0

    def retune(self, per_source: int, exempt: Iterable[IPv4Network | IPv6Network]) -> None:
        """New limits for the next connections (a reload); open ones are not closed."""
        self._limit = per_source
        self._exempt = tuple(exempt)

    def __len__(self) -> int:
        """Source networks holding connections."""
        return len(self._open)

    def open(self, ip: str, service: str) -> bool:
        """Count a new connection from ``ip``; False (and not counted) when over the limit.

        A caller that gets True must call :meth:`close` exactly once when the
        connection ends; one that gets False closes the connection at once.
        """
        key = network_key(ip, self._prefix)
        count = self._open.get(key, 0)
        if self._limit and count >= self._limit and not self._is_exempt(ip):
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "%s: connection from %s refused: %s already holds %d connection(s) "
                    "(limits.connections_per_source); %d refused so far",
                    service,
                    ip,
                    key,
                    count,
                    self.refused,
                )
            return False
        self._open[key] = count + 1
        return True

    def close(self, ip: str) -> None:
        key = network_key(ip, self._prefix)
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def count(self, ip: str) -> int:
        return self._open.get(network_key(ip, self._prefix), 0)

    def _is_exempt(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip.strip("[]").partition("%")[0])
        except ValueError:
            return False
        return any(address in net for net in self._exempt if net.version == address.version)
