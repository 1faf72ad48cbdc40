"""Which URIs name this proxy: its SIP domains, and the addresses it listens on.

A proxy must tell a Request-URI or Route naming itself from one naming
someone else (RFC 3261 §16.4, §16.5). The listeners' advertised addresses go
into our Via and Record-Route too, so the server fills them in as they start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from heron.config import ListenAddress
from heron.sip.uri import SipUri, Uri

__all__ = ["DEFAULT_PORTS", "Locality"]

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
"""RFC 3261 §19.1.2: 5061 for TLS, 5060 for the rest."""


class Locality:
    """Our domains and listening addresses, and the questions asked of them."""

    def __init__(
        self, domains: Iterable[str], listen: Sequence[ListenAddress], host_name: str
    ) -> None:
        self._domains = frozenset(domains)
        self._listen_hosts = {address.host for address in listen}
        self._listen_ports: set[int | None] = {address.port for address in listen} | {None}
        self._host_name = host_name
        self._addresses: dict[str, tuple[str, int]] = {}
        self._former: set[tuple[str, str, int]] = set()
        """Addresses advertised before a reload moved their listener: a Record-Route
        written then still names this proxy (for the flows it opened) until a restart."""

    @property
    def addresses(self) -> Mapping[str, tuple[str, int]]:
        """The host and port we advertise per transport: its first listener's."""
        return self._addresses

    def advertise(self, transport: str, address: ListenAddress) -> None:
        """Record a listener; a wildcard address is advertised by the host name."""
        host = address.host
        if host in ("0.0.0.0", "::"):
            host = self._host_name
        elif ":" in host:
            host = f"[{host}]"
        self._addresses.setdefault(transport, (host, address.port))

    def rebind(self, transport: str, listen: Sequence[ListenAddress]) -> None:
        """A reload moved ``transport``'s listeners to ``listen``: new transactions get its
        first address, the old one is still ours."""
        if (old := self._addresses.pop(transport, None)) is not None:
            self._former.add((transport, *old))
        for address in listen:
            self.advertise(transport, address)
        self._listen_hosts.update(address.host for address in listen)
        self._listen_ports.update(address.port for address in listen)

    def add_hosts(self, hosts: Iterable[str]) -> None:
        """More addresses a listener answers on (a wildcard listener's interfaces): with
        one of our ports, or none, they name this proxy."""
        self._listen_hosts.update(host.strip("[]").lower() for host in hosts)

    def sent_by(self, transport: str) -> tuple[str, int]:
        """The address for our Via on ``transport``: its listener's, else the UDP one."""
        return self._addresses.get(transport, self._addresses.get("udp", ("127.0.0.1", 5060)))

    def is_local(self, uri: SipUri) -> bool:
        """The URI names one of our domains, or this proxy."""
        return uri.host.lower() in self._domains or self.is_me(uri)

    def is_server(self, uri: Uri) -> bool:
        """The URI names the server itself, no user in it: one of our domains, our host
        name, or this proxy's address (what a health check's OPTIONS is sent to)."""
        if not isinstance(uri, SipUri) or uri.user is not None:
            return False
        return self.is_local(uri) or uri.host.lower() == self._host_name.lower()

    def is_me(self, uri: Uri) -> bool:
        """The URI names this proxy: an advertised address, or a listener's host and port."""
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower()
        advertised = [(transport, *address) for transport, address in self._addresses.items()]
        for transport, own_host, own_port in [*advertised, *self._former]:
            if (
                host == own_host.lower()
                and (uri.port or DEFAULT_PORTS.get(transport, 5060)) == own_port
            ):
                return True
        return host.strip("[]") in self._listen_hosts and uri.port in self._listen_ports
