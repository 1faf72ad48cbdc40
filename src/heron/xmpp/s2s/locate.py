"""Locating another domain's XMPP server, sans-IO (RFC 6120 §3.2, XEP-0368 §3).

:func:`locate_server` is a generator in the style of :mod:`heron.sip.locate`: it yields a
:class:`~heron.dns.records.Query`, is sent back the records (None when the lookup failed)
and returns a :class:`ServerLocation`. The adapter (:mod:`heron.xmpp.s2s.dns`) does the
lookups; tests answer from a dict. ``pick`` is RFC 2782's random draw.

- RFC 6120 §3.2.1 and XEP-0368 §3: the ``_xmpps-server._tcp`` (direct TLS) and
  ``_xmpp-server._tcp`` (STARTTLS) SRV records of the domain, merged: lowest priority
  first, at one priority the direct-TLS ones first ("SHOULD be preferred"), each kind in
  RFC 2782's weighted random order; each target's A and AAAA records in that order.
- §3.2.1 step 2: an SRV answer that is the single target "." means the service "is
  decidedly not available at this domain": that kind of record gives nothing, and when
  no record gives anything there is no target at all, not the fallback.
- §3.2.1 steps 7-8 and §3.2.2: the fallback, the domain's own A/AAAA records on port 5269
  with STARTTLS, only when the domain published no SRV record of either kind (an SRV
  record that names no reachable server does not lead to the fallback).
- An IP literal as domain (RFC 7622 §3.2) is the target itself, on 5269.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from heron.dns.records import Answer, Pick, Query, RecordType, Srv, Steps, is_numeric, order_srv

__all__ = [
    "DEFAULT_PORT",
    "DIRECT_TLS_SERVICE",
    "STARTTLS_SERVICE",
    "Endpoint",
    "ServerLocation",
    "Target",
    "locate_server",
    "merge_srv",
]

DEFAULT_PORT = 5269
"""RFC 6120 §3.2.2 and §14.7: the s2s port of the fallback, with STARTTLS."""
DIRECT_TLS_SERVICE = "_xmpps-server._tcp"
"""XEP-0368 §3: servers reached with TLS from the first byte (ALPN ``xmpp-server``)."""
STARTTLS_SERVICE = "_xmpp-server._tcp"
"""RFC 6120 §3.2.1: servers reached in the clear, which then negotiate STARTTLS."""

MAX_SRV = 8
"""SRV records used per kind: a hostile domain publishing hundreds costs no more."""
MAX_TARGETS = 16
"""Addresses returned at most ..."""
MAX_QUERIES = 2 + 2 * 2 * MAX_SRV
"""... and lookups asked for one domain (two SRV, then A and AAAA per endpoint)."""
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_-]{1,63}$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A server name and port to resolve, and whether TLS starts at once (XEP-0368)."""

    host: str
    port: int
    direct_tls: bool


@dataclass(frozen=True, slots=True)
class Target:
    """An address to connect to; ``host`` is the name it came from (for logs: the
    certificate is checked against the domain, not against this, RFC 6120 §13.7.2.1)."""

    address: str
    port: int
    direct_tls: bool
    host: str


@dataclass(frozen=True, slots=True)
class ServerLocation:
    """The targets in the order to try them.

    ``failed`` says a lookup failed (timeout, server failure) rather than came back empty:
    with no targets, stanzas bounce with ``remote-server-timeout``, not
    ``remote-server-not-found``.
    """

    targets: tuple[Target, ...]
    failed: bool = False


def locate_server(domain: str, pick: Pick) -> Steps[ServerLocation]:
    """The RFC 6120 §3.2 procedure for ``domain``; see the module docstring."""
    state = _State()
    name = domain.strip("[]").lower().rstrip(".")
    if is_numeric(name):
        return ServerLocation((Target(name, DEFAULT_PORT, False, name),))
    if not _DOMAIN.match(name):
        return ServerLocation(())
    direct = yield from state.ask(Query(f"{DIRECT_TLS_SERVICE}.{name}", RecordType.SRV))
    starttls = yield from state.ask(Query(f"{STARTTLS_SERVICE}.{name}", RecordType.SRV))
    if direct or starttls:
        endpoints = merge_srv(direct, starttls, pick)
    else:
        endpoints = [Endpoint(name, DEFAULT_PORT, False)]
    for endpoint in endpoints:
        yield from state.addresses(endpoint)
    return state.result()


def merge_srv(direct: Sequence[Srv], starttls: Sequence[Srv], pick: Pick) -> list[Endpoint]:
    """XEP-0368 §3: both kinds by priority, direct TLS first at equal priority; a kind whose
    answer is the single target "." (RFC 6120 §3.2.1 step 2) or records of port 0 give none."""
    merged: list[Endpoint] = []
    for priority in sorted({r.priority for r in (*direct, *starttls)}):
        for records, tls in ((direct, True), (starttls, False)):
            group = [r for r in records if r.priority == priority]
            merged += [
                Endpoint(r.target.lower().rstrip("."), r.port, tls)
                for r in order_srv(group, pick)
                if r.target not in (".", "") and 0 < r.port <= 65535
            ]
    return list(dict.fromkeys(merged))


class _State:
    """What one run has found so far, and how much it may still ask."""

    def __init__(self) -> None:
        self.targets: dict[Target, None] = {}
        self.failed = False
        self.queries = 0

    def ask(self, query: Query) -> Generator[Query, Answer, list[Srv]]:
        """The SRV records of ``query``, at most :data:`MAX_SRV` of them."""
        records = yield from self._ask(query)
        return [r for r in records if isinstance(r, Srv)][:MAX_SRV]

    def _ask(self, query: Query) -> Generator[Query, Answer, Sequence[object]]:
        if self.queries >= MAX_QUERIES:
            return ()
        self.queries += 1
        answer = yield query
        if answer is None:
            self.failed = True
            return ()
        return answer

    def addresses(self, endpoint: Endpoint) -> Generator[Query, Answer, None]:
        if is_numeric(endpoint.host):
            self._add(Target(endpoint.host, endpoint.port, endpoint.direct_tls, endpoint.host))
            return
        for record_type in (RecordType.A, RecordType.AAAA):
            if len(self.targets) >= MAX_TARGETS:
                return
            records = yield from self._ask(Query(endpoint.host, record_type))
            for address in records:
                if isinstance(address, str) and is_numeric(address):
                    target = Target(address, endpoint.port, endpoint.direct_tls, endpoint.host)
                    self._add(target)

    def _add(self, target: Target) -> None:
        if len(self.targets) < MAX_TARGETS:
            self.targets[target] = None

    def result(self) -> ServerLocation:
        return ServerLocation(tuple(self.targets), self.failed and not self.targets)
