"""Where heron may connect on someone else's word: one rule for SIP and XMPP.

A SIP proxy connects to whatever a Request-URI, a Route or a DNS answer
names, and an XMPP server to whatever the DNS of a domain in a JID names, so
without a policy anyone who can get a request or a stanza through it (a user,
a web phone, a party to a dialog, a remote domain's DNS) can make it reach
what only the server itself should: Redis on 127.0.0.1:6379, a cloud metadata service on
169.254.169.254, the office LAN behind it, or heron's own ports. Such
*internal* addresses are loopback, link-local, private (RFC 1918, RFC 4193),
unspecified, multicast and reserved ranges, and heron's own addresses.

A request may still go there when the administrator said so
(``sip.trusted_peers``, ``sip.allowed_destinations``, a static route or a
click-to-call target; ``xmpp.s2s_allowed_destinations`` for XMPP), or when
the address is a registered phone's: the SIP server asks
:class:`heron.sip.bindings.BindingCache` and its flows before it refuses.
TURN keeps its own ranges (``turn.allowed_peer_ranges``), as coturn does.

:class:`Destinations` decides, without I/O; :func:`own_addresses` finds
heron's own addresses once at start.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["Destinations", "interface_addresses", "own_addresses"]

log = logging.getLogger(__name__)

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_CACHED = 4096


def _address(host: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Destinations:
    """Which addresses are internal, and which of those the configuration allows."""

    __slots__ = ("_allowed", "_hosts", "_known", "_own")

    def __init__(
        self,
        allowed: Iterable[IPv4Network | IPv6Network] = (),
        hosts: Iterable[str] = (),
        own: Iterable[str] = (),
    ) -> None:
        """``allowed`` networks and ``hosts`` (the IP literals of configured targets) may
        be reached; ``own`` are heron's own addresses, never reached."""
        self._allowed = tuple(allowed)
        self._hosts = frozenset(a for a in map(_address, hosts) if a is not None)
        self._own: set[IPv4Address | IPv6Address] = set()
        self._known: dict[str, bool] = {}
        """Answers so far: a proxy sends to the same few addresses again and again."""
        self.add_own(own)

    def add_own(self, hosts: Iterable[str]) -> None:
        """More of heron's own addresses (found at start: the host name's addresses)."""
        for host in hosts:
            address = _address(host)
            if address is not None and not address.is_unspecified:
                self._own.add(address)
        self._known.clear()

    def is_own(self, host: str) -> bool:
        """``host`` is one of heron's own addresses."""
        return _address(host) in self._own

    def internal(self, host: str) -> bool:
        """``host`` (an IP address as a request would be sent to it) is one no request may
        reach without a reason: not a public address, or heron's own. A host name is
        internal too: heron sends only to the addresses DNS gave it."""
        known = self._known.get(host)
        if known is None:
            if len(self._known) >= _CACHED:
                self._known.clear()
            known = self._known[host] = self._internal(host)
        return known

    def _internal(self, host: str) -> bool:
        address = _address(host)
        if address is None:
            return True
        if address in self._hosts:
            return False
        if any(address in net for net in self._allowed if net.version == address.version):
            return False
        return (
            address in self._own
            or address.is_loopback
            or address.is_link_local
            or address.is_private
            or address.is_unspecified
            or address.is_multicast
            or address.is_reserved
            or (isinstance(address, IPv4Address) and address in _SHARED)
            or (isinstance(address, IPv6Address) and address.sixtofour is not None)
            or (isinstance(address, IPv6Address) and address.teredo is not None)
        )


def interface_addresses() -> list[str]:
    """The host's own IP addresses, from Linux's /proc (none elsewhere): IPv4 from the
    local routing table, IPv6 from the interface list."""
    found = ["127.0.0.1", "::1"]
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as trie:
            last = ""
            for line in trie:
                text = line.strip()
                if text.startswith("|-- "):
                    last = text[4:]
                elif text.startswith("/32 host LOCAL") and last:
                    found.append(last)
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as interfaces:
            for line in interfaces:
                digits = line.split()[0] if line.strip() else ""
                if len(digits) == 32:
                    found.append(str(ipaddress.IPv6Address(int(digits, 16))))
    except (OSError, ValueError):
        pass
    return list(dict.fromkeys(found))


async def own_addresses(host_name: str, also: Iterable[str] = ()) -> list[str]:
    """heron's own addresses, best effort: ``also`` (configured aliases; names among them
    are ignored by :class:`Destinations`), the host's interfaces' and its host name's."""
    own = [*also, *interface_addresses()]
    try:
        found = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host_name, None), timeout=2.0
        )
    except (OSError, TimeoutError) as exc:
        log.debug("cannot resolve %s: %s", host_name, exc)
    else:
        own += [str(info[4][0]) for info in found]
    return own
