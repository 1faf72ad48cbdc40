"""The one DNS resolver heron asks, for SIP and XMPP alike: dnspython's asyncio resolver.

It asks the configured name servers (``dns.servers``, else /etc/resolv.conf), each lookup
with a timeout and each locating procedure with a budget, so an unreachable name server
costs one request or one outgoing connection a few seconds, never the server. Answers are
kept for their TTL in dnspython's LRU cache, shared by every protocol: a busy server asks
once per record set, not once per call.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import TypeVar

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

from heron.dns.records import Answer, Naptr, Query, Record, Srv, Steps, parse_nameserver

__all__ = ["LOOKUP_TIMEOUT", "SEARCH_BUDGET", "Resolver", "random_pick"]

log = logging.getLogger(__name__)
T = TypeVar("T")

LOOKUP_TIMEOUT = 2.0
"""Seconds one lookup may take, retries included (dnspython's lifetime)."""
SEARCH_BUDGET = 6.0
"""Seconds all the lookups of one procedure may take; the rest count as failed."""
CACHE_SIZE = 4096
"""Record sets kept; the least recently used goes first."""


def random_pick(n: int) -> int:
    """The RFC 2782 weighted draw's random number, uniform in [0, n]."""
    return random.randint(0, n)


class Resolver:
    """Lookups of NAPTR, SRV, A and AAAA records, and the driver of a locating procedure."""

    def __init__(self, servers: Sequence[str] = (), *, timeout: float = LOOKUP_TIMEOUT) -> None:
        """``servers`` are "host" or "host:port" (ValueError when not); none means
        /etc/resolv.conf, and without it every lookup fails (the caller's "try later")."""
        nameservers = [dns.nameserver.Do53Nameserver(*parse_nameserver(s)) for s in servers]
        try:
            self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration:
            log.warning("dns: no /etc/resolv.conf and no dns.servers: DNS lookups fail")
            self._resolver = dns.asyncresolver.Resolver(configure=False)
        if nameservers:
            self._resolver.nameservers = nameservers
        self._resolver.lifetime = timeout
        self._resolver.cache = dns.resolver.LRUCache(CACHE_SIZE)

    async def run(self, steps: Steps[T], budget: float = SEARCH_BUDGET) -> T:
        """Drive a locating procedure to its end, answering each query within ``budget``
        seconds in all; a query asked after the budget is spent gets None (failed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        try:
            query = next(steps)
            while True:
                remaining = deadline - loop.time()
                answer = await self.lookup(query, remaining) if remaining > 0 else None
                query = steps.send(answer)
        except StopIteration as done:
            result: T = done.value
        return result

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
            log.info("dns: %s lookup of %s failed: %s", query.type, name, exc)
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
