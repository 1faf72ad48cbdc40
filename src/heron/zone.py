"""DNS records for a zone file (Debian Handbook §11.8.1), computed from the configuration.

Names are absolute (trailing dot) so the lines paste into any zone whatever
its $ORIGIN. Ports come from the first listener of each kind, so a changed
port in the config shows up in DNS without a second place to edit.

Port 443 (``[mux] listen``). Every TCP service, and STUN/TURN over UDP, also
answers on the mux port, so each service's SRV set gets a record for it: the
*fallback* (RFC 2782: a higher priority number, tried when the lower ones fail)
when the service keeps a port of its own, the only record when it has none.
Not the first choice, because:

- XEP-0368 §5: "Server operators should not expect multiplexing (via ALPN) to
  work in all scenarios and therefore should provide additional SRV record(s)
  that do not require multiplexing". A TLS client that sends no ALPN the mux knows
  nor a server name it maps reaches TURN (no ALPN at all) or the web component on 443,
  where a dedicated port would have reached the service;
- RFC 3263 §4.3 and RFC 2782: a client moves to the next record when a
  connection fails, which is what a hotel's or airport's firewall does to 5061,
  5222 or 3478, so 443 is still found there, at no cost to a network that works;
- coturn and Prosody set-ups publish it so: the well-known ports (3478, 5349,
  5222, 5223) first, which their clients and checkers expect, 443 as the way
  round a closed network.

NAPTR for SIP follows RFC 3263 §4.1: "there MUST be at least three records - one
with a "SIP+D2T" service field, one with a "SIP+D2U" service field, and one with a
"SIPS+D2T" service field", SIPS first ("SHOULD be preferred (i.e., have a lower
value of the order field)"), so each transport heron serves gets one.

The handbook's way (§11.8.5): each service on 443 of an address of its own. A
listener bound to a public address that ``public_addresses`` does not list gets a
target name of its own (``turn.<hostname>`` ...) with its A/AAAA record, so a
client looking for TURN reaches TURN's address, not the web's on the same port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from heron.config import Config, ListenAddress
from heron.mux.classify import Service
from heron.mux.server import server_names

__all__ = ["ZoneRecord", "is_inside", "published_records", "zone_records"]

FALLBACK = 10
"""Added to a service's SRV priority for its record on the mux port when the service
also listens on a port of its own."""

_INSIDE = [
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]
"""Addresses behind a NAT, for which ``public_addresses`` speak (RFC 1918, RFC 6598,
RFC 4193)."""


def is_inside(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address no client on the Internet reaches: behind a NAT, loopback, link-local
    or the wildcard (documentation ranges count as public, as the examples use them)."""
    return (
        ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or any(ip in network for network in _INSIDE)
    )


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One resource record of the zone: ``owner`` without its final dot, ``data`` in
    zone-file syntax."""

    owner: str
    kind: str
    data: str

    @property
    def line(self) -> str:
        return f"{self.owner + '.':<40} IN {self.kind:<5} {self.data}"


Entry = ZoneRecord | str
"""A record, or a comment line (";" first)."""


def _address_line(name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ZoneRecord:
    return ZoneRecord(name, "A" if address.version == 4 else "AAAA", str(address))


class _Targets:
    """SRV target names: the host name, or a name of its own for a listener on an
    address of its own (the handbook's way)."""

    def __init__(self, config: Config) -> None:
        self._host = config.host_name
        self._public = set(config.public_addresses)
        self.own: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}

    def name(self, address: ListenAddress, label: str) -> str:
        if address.host == "localhost":
            return self._host
        ip = ipaddress.ip_address(address.host)
        if is_inside(ip) or ip in self._public:
            return self._host
        if ip not in self.own:
            taken = set(self.own.values())
            name, number = f"{label}.{self._host}", 2
            while name in taken:
                name, number = f"{label}{number}.{self._host}", number + 1
            self.own[ip] = name
        return self.own[ip]


def _srv(
    owner: str,
    own: list[ListenAddress],
    mux: ListenAddress | None,
    targets: _Targets,
    label: str,
    priority: int = 0,
) -> Iterator[ZoneRecord]:
    """One service's SRV records: its own port (the first listener), then the mux port,
    the fallback after it or alone (see the module docstring)."""
    records: list[tuple[int, int, str]] = []
    if own:
        records.append((priority, own[0].port, targets.name(own[0], label)))
    if mux is not None:
        target = targets.name(mux, "mux")
        if (mux.port, target) not in [(port, name) for _, port, name in records]:
            records.append((priority + FALLBACK if own else priority, mux.port, target))
    for rank, port, target in records:
        weight = 0 if rank else 1
        yield ZoneRecord(owner, "SRV", f"{rank} {weight} {port} {target}.")


def _turn(config: Config, mux: ListenAddress | None, targets: _Targets) -> Iterator[Entry]:
    turn, realm = config.turn, config.turn_realm
    if not turn.listen and not turn.tls_listen and mux is None:
        return
    yield "; STUN / TURN"
    yield from _srv(f"_stun._udp.{realm}", turn.listen, mux, targets, "turn")
    yield from _srv(f"_turn._udp.{realm}", turn.listen, mux, targets, "turn")
    yield from _srv(f"_turn._tcp.{realm}", turn.listen, mux, targets, "turn")
    yield from _srv(f"_turns._tcp.{realm}", turn.tls_listen, mux, targets, "turn")
    if turn.listen or mux is not None:
        yield ZoneRecord(realm, "NAPTR", f'10 0 "s" "RELAY:turn.udp" "" _turn._udp.{realm}.')


def _sip(config: Config, mux: ListenAddress | None, targets: _Targets) -> Iterator[Entry]:
    sip, domain = config.sip, config.sip_domain
    # The mux tells SIP over TLS (no ALPN) from HTTPS by the server name alone.
    by_name = server_names(config).get(domain.lower()) is Service.SIP
    mux_tls = mux if by_name else None
    records = [
        (
            "SIPS+D2T",
            "_sips._tcp",
            list(_srv(f"_sips._tcp.{domain}", sip.tls_listen, mux_tls, targets, "sip")),
        ),
        (
            "SIP+D2T",
            "_sip._tcp",
            list(_srv(f"_sip._tcp.{domain}", sip.listen, mux, targets, "sip")),
        ),
        (
            "SIP+D2U",
            "_sip._udp",
            list(_srv(f"_sip._udp.{domain}", sip.listen, None, targets, "sip")),
        ),
    ]
    if not any(lines for _, _, lines in records):
        return
    yield "; SIP"
    if mux is not None and mux_tls is None:
        yield (
            f"; SIP over TLS is not on port {mux.port}: the mux tells it from HTTPS by the "
            "TLS server name, so sip.domain must differ from the hostname (or mux.sni name it)"
        )
    for _, _, lines in records:
        yield from lines
    order = 10
    for service, prefix, lines in records:
        if lines:
            yield ZoneRecord(domain, "NAPTR", f'{order} 0 "s" "{service}" "" {prefix}.{domain}.')
            order += 10


def _xmpp(config: Config, mux: ListenAddress | None, targets: _Targets) -> Iterator[Entry]:
    xmpp = config.xmpp
    yield "; XMPP client and server"
    for domain in config.xmpp_hosts:
        yield from _srv(f"_xmpp-client._tcp.{domain}", xmpp.listen, mux, targets, "xmpp", 5)
        yield from _srv(f"_xmpps-client._tcp.{domain}", xmpp.tls_listen, mux, targets, "xmpp", 5)
    # The mux hands ALPN xmpp-server to federation, but plain <stream:stream> to c2s.
    federating = bool(xmpp.s2s_listen or xmpp.s2s_tls_listen)
    s2s_mux = mux if federating else None
    for domain in [*config.xmpp_hosts, config.muc_domain]:
        yield from _srv(f"_xmpp-server._tcp.{domain}", xmpp.s2s_listen, None, targets, "xmpp", 5)
        yield from _srv(
            f"_xmpps-server._tcp.{domain}", xmpp.s2s_tls_listen, s2s_mux, targets, "xmpp", 5
        )


def zone_records(config: Config) -> list[str]:
    """Zone-file lines: A/AAAA for the host (and for each service on an address of its
    own), then SRV/NAPTR per enabled service."""
    return [entry if isinstance(entry, str) else entry.line for entry in _zone(config)]


def published_records(config: Config) -> list[ZoneRecord]:
    """The records of :func:`zone_records`, for ``heron check`` to compare with DNS."""
    return [entry for entry in _zone(config) if isinstance(entry, ZoneRecord)]


def _zone(config: Config) -> list[Entry]:
    host = config.host_name
    mux = config.mux.listen[0] if config.mux.listen else None
    targets = _Targets(config)
    services: list[Entry] = []
    if config.turn.enabled:
        services += _turn(config, mux, targets)
    if config.sip.enabled:
        services += _sip(config, mux, targets)
    if config.xmpp.enabled:
        services += _xmpp(config, mux, targets)
    lines: list[Entry] = [f"; heron DNS records for {config.domain}: paste into the zone file"]
    if config.public_addresses:
        lines += [_address_line(host, address) for address in config.public_addresses]
    else:
        lines.append(f"; set public_addresses in the config to list the A/AAAA records of {host}")
    if targets.own:
        lines.append("; services on addresses of their own (the handbook's way)")
        lines += [_address_line(name, address) for address, name in targets.own.items()]
    return lines + services
