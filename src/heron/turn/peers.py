"""Which peer addresses a relay may reach (RFC 8656 §21.3, coturn CVE-2020-26262).

A TURN server that relays to loopback, private or link-local addresses lets
anyone with a login scan and reach the server's own network. heron refuses
those unless the administrator allows a range, and checks the IPv4 address
hidden in IPv6 spellings (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
Teredo) so that ``::ffff:127.0.0.1`` is treated as ``127.0.0.1``.

Whatever ranges are allowed, a relay never sends to heron's own listening
ports on its own or loopback addresses (coturn refuses its own listeners too):
data from a relay comes from the server's own address, which SIP, XMPP and the
web would take for a local process.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

__all__ = ["DENIED_BY_DEFAULT", "IPAddress", "IPNetwork", "PeerPolicy", "embedded_ipv4"]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

DENIED_BY_DEFAULT: tuple[IPNetwork, ...] = tuple(
    ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # RFC 6598 carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "fc00::/7",  # RFC 4193 unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local (RFC 3879)
        "ff00::/8",  # multicast
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_COMPATIBLE = IPv6Network("::/96")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if any, by any of its spellings."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _COMPATIBLE and int(address) > 1:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64_LOCAL:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class PeerPolicy:
    """Decides whether a permission or a relayed packet may target an address."""

    def __init__(
        self,
        *,
        allowed: Iterable[IPNetwork] = (),
        denied: Iterable[IPNetwork] = (),
        own_addresses: Iterable[IPAddress] = (),
        own_ports: Iterable[int] = (),
    ) -> None:
        self._allowed = tuple(allowed)
        self._denied = DENIED_BY_DEFAULT + tuple(denied)
        self._own = frozenset(own_addresses)
        self.own_ports = frozenset(own_ports)
        """Ports heron listens on (every service): never a peer on its own addresses."""

    def is_own_service(self, address: IPAddress, port: int) -> bool:
        """True if ``address``:``port`` may be one of heron's own listeners (any spelling)."""
        if port not in self.own_ports:
            return False
        spellings: list[IPAddress] = [address]
        if isinstance(address, IPv6Address) and (inner := embedded_ipv4(address)) is not None:
            spellings.append(inner)
        return any(s in self._own or s.is_loopback or s.is_unspecified for s in spellings)

    def permits(self, address: IPAddress) -> bool:
        """True if relaying to ``address`` is allowed.

        Every spelling of the address (the IPv4 inside an IPv6 one too) must
        pass: one that is denied, unspecified or the server's own refuses it
        unless an allow range covers that very spelling. So allowing
        2000::/3 does not admit 127.0.0.1 spelled as 6to4.
        """
        spellings: list[IPAddress] = [address]
        if isinstance(address, IPv6Address):
            inner = embedded_ipv4(address)
            if inner is not None:
                spellings.append(inner)
        for spelling in spellings:
            if any(spelling in net for net in self._allowed if spelling.version == net.version):
                continue
            if spelling in self._own or spelling.is_unspecified:
                return False
            if any(spelling in net for net in self._denied if spelling.version == net.version):
                return False
        return True
