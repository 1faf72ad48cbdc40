"""The DNS side of RFC 3263: dnspython's asyncio resolver answering :mod:`heron.sip.locate`.

The sans-IO core says which NAPTR, SRV, A and AAAA records it needs; this adapter asks
the configured name servers (``sip.dns_servers``, else /etc/resolv.conf), each lookup with
a timeout and the whole search with a budget, so an unreachable name server costs one
request a few seconds, never the proxy. Answers are kept for their TTL in dnspython's LRU
cache: a busy proxy asks once per record set, not once per call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.resolver
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from heron.sip.locate import Answer, Located, Naptr, Pick, Query, Record, Srv, locate
from heron.sip.uri import SipUri

__all__ = ["SipLocator", "parse_nameserver"]

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 2.0
"""Seconds one lookup may take, retries included (dnspython's lifetime)."""
SEARCH_BUDGET = 6.0
"""Seconds all the lookups for one request may take; the rest count as failed."""
CACHE_SIZE = 4096
"""Record sets kept; the least recently used goes first."""


def parse_nameserver(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address as (address, port)."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not host, host:port or [v6]:port")
        if rest:
            port = _port(text, rest[1:])
    elif host.count(":") == 1:
        host, port_text = host.split(":")
        port = _port(text, port_text)
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{text!r}: a name server is an IP address") from None
    return address, port


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be between 1 and 65535")
    return int(port_text)


def _pick(n: int) -> int:
    return random.randint(0, n)


class SipLocator:
    """Targets for a SIP URI (RFC 3263 §4), looked up over DNS."""

    def __init__(
        self,
        servers: Sequence[str] = (),
        *,
        timeout: float = LOOKUP_TIMEOUT,
        budget: float = SEARCH_BUDGET,
        pick: Pick = _pick,
    ) -> None:
        """``servers`` are "host" or "host:port" (ValueError when not); none means
        /etc/resolv.conf, and without it every lookup fails (503, not a crash)."""
        nameservers = [dns.nameserver.Do53Nameserver(*parse_nameserver(s)) for s in servers]
        try:
            self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration:
            log.warning("sip: no /etc/resolv.conf and no sip.dns_servers: DNS lookups fail")
            self._resolver = dns.asyncresolver.Resolver(configure=False)
        if nameservers:
            self._resolver.nameservers = nameservers
        self._resolver.lifetime = timeout
        self._resolver.cache = dns.resolver.LRUCache(CACHE_SIZE)
        self._budget = budget
        self._pick = pick

    async def locate(self, uri: SipUri) -> Located:
        """Drive :func:`heron.sip.locate.locate` to its end, answering each query."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budget
        steps = locate(uri, self._pick)
        try:
            query = next(steps)
            while True:
                remaining = deadline - loop.time()
                answer = await self.lookup(query, remaining) if remaining > 0 else None
                query = steps.send(answer)
        except StopIteration as done:
            located: Located = done.value
        log.debug("sip: %s located at %s", uri, located)
        return located

    async def lookup(self, query: Query, budget: float = LOOKUP_TIMEOUT) -> Answer:
        """The records of one query; () when there are none, None when the lookup failed."""
        name = query.name.rstrip(".") + "."
        try:
            answer = await self._resolver.resolve(
                name,
                query.type.value,
                search=False,
                raise_on_no_answer=False,
                lifetime=min(budget, self._resolver.lifetime),
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return ()
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            log.info("sip: DNS %s lookup of %s failed: %s", query.type, name, exc)
            return None
        if answer.rrset is None:
            return ()
        return [r for r in map(_record, answer.rrset) if r is not None]


def _record(rdata: dns.rdata.Rdata) -> Record | None:
    if isinstance(rdata, NAPTR):
        return Naptr(
            rdata.order,
            rdata.preference,
            _text(rdata.flags),
            _text(rdata.service),
            _text(rdata.regexp),
            _name(rdata.replacement),
        )
    if isinstance(rdata, SRV):
        return Srv(rdata.priority, rdata.weight, rdata.port, _name(rdata.target))
    if isinstance(rdata, A | AAAA):
        return str(rdata.address)
    return None  # a CNAME's target, say: the resolver already followed it


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")


def _name(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)
