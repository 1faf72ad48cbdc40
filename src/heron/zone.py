"""DNS records for a zone file (Debian Handbook §11.8.1), computed from the configuration.

Names are absolute (trailing dot) so the lines paste into any zone whatever
its $ORIGIN. Ports come from the first listener of each kind, so a changed
port in the config shows up in DNS without a second place to edit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from heron.config import Config, ListenAddress

__all__ = ["zone_records"]


def _port(addresses: list[ListenAddress]) -> int | None:
    return addresses[0].port if addresses else None


def _line(owner: str, kind: str, data: str) -> str:
    return f"{owner + '.':<40} IN {kind:<5} {data}"


def _srv(
    service: str, domain: str, port: int | None, target: str, priority: int = 0
) -> Iterator[str]:
    if port is not None:
        weight = 0 if priority else 1
        yield _line(f"{service}.{domain}", "SRV", f"{priority} {weight} {port} {target}.")


def zone_records(config: Config) -> list[str]:
    """Zone-file lines: A/AAAA for the host, then SRV/NAPTR per enabled service."""
    host = config.host_name
    lines = [f"; heron DNS records for {config.domain}: paste into the zone file"]
    if config.public_addresses:
        for address in config.public_addresses:
            kind = "A" if isinstance(address, ipaddress.IPv4Address) else "AAAA"
            lines.append(_line(host, kind, str(address)))
    else:
        lines.append(f"; set public_addresses in the config to list the A/AAAA records of {host}")
    if config.turn.enabled:
        realm = config.turn_realm
        lines.append("; STUN / TURN")
        lines += _srv("_stun._udp", realm, _port(config.turn.listen), host)
        lines += _srv("_turn._udp", realm, _port(config.turn.listen), host)
        lines += _srv("_turn._tcp", realm, _port(config.turn.listen), host)
        lines += _srv("_turns._tcp", realm, _port(config.turn.tls_listen), host)
        if config.turn.listen:
            lines.append(_line(realm, "NAPTR", f'10 0 "s" "RELAY:turn.udp" "" _turn._udp.{realm}.'))
    if config.sip.enabled and config.sip.tls_listen:
        domain = config.sip_domain
        lines.append("; SIP")
        lines += _srv("_sips._tcp", domain, _port(config.sip.tls_listen), host)
        lines.append(_line(domain, "NAPTR", f'10 0 "s" "SIPS+D2T" "" _sips._tcp.{domain}.'))
    if config.xmpp.enabled:
        lines.append("; XMPP client and server")
        for domain in config.xmpp_hosts:
            lines += _srv("_xmpp-client._tcp", domain, _port(config.xmpp.listen), host, 5)
            lines += _srv("_xmpps-client._tcp", domain, _port(config.xmpp.tls_listen), host, 5)
        for domain in [*config.xmpp_hosts, config.muc_domain]:
            lines += _srv("_xmpp-server._tcp", domain, _port(config.xmpp.s2s_listen), host, 5)
            lines += _srv("_xmpps-server._tcp", domain, _port(config.xmpp.s2s_tls_listen), host, 5)
    return lines
