"""Locating SIP servers (RFC 3263 §4), sans-IO: which DNS records to ask for, in what order,
and the ordered list of (transport, address, port) targets they name.

:func:`locate` is a generator: it yields a :class:`Query`, is sent back the records of
that query (or None when the lookup failed), and returns a :class:`Located`. The adapter
(:mod:`heron.sip.transports.dns`, on :mod:`heron.dns.resolver`) does the lookups; tests
answer from a dict. Randomness, the weighted choice among SRV records of one priority
(RFC 2782, :func:`heron.dns.records.order_srv`), is the ``pick`` argument.

- §4.1 transport: an explicit ``transport`` parameter; else UDP (SIP) or TLS (SIPS) for a
  numeric host or an explicit port; else the NAPTR records of the domain; else the SRV
  records that exist among ``_sip._udp``, ``_sip._tcp`` and ``_sips._tcp``; else UDP/TLS.
- §4.2 address and port: a numeric host as is; an explicit port with the A/AAAA records of
  the host; else the SRV records (RFC 2782 order), each target's A/AAAA records; else the
  host's A/AAAA records with the transport's default port.
- §4.3 failure: the caller tries the targets in order, moving on after a 503, a transport
  error or a timeout without any response.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from heron.dns.records import (
    Answer,
    Naptr,
    Pick,
    Query,
    Record,
    RecordType,
    Srv,
    Steps,
    is_numeric,
    order_srv,
)
from heron.sip.errors import MalformedValue
from heron.sip.grammar import parse_host
from heron.sip.uri import SipUri

__all__ = [
    "DEFAULT_PORTS",
    "SUPPORTED",
    "DnsTarget",
    "Located",
    "Locating",
    "Service",
    "Transport",
    "locate",
    "select_naptr",
]


class Transport(StrEnum):
    """Transports as heron names them (RFC 3261 §18, the URI ``transport`` parameter)."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    SCTP = "sctp"
    TLS_SCTP = "tls-sctp"


class Service(StrEnum):
    """NAPTR services for SIP (RFC 3263 §4.1: "SIP+D2X" and "SIPS+D2X")."""

    SIP_UDP = "SIP+D2U"
    SIP_TCP = "SIP+D2T"
    SIP_SCTP = "SIP+D2S"
    SIPS_TCP = "SIPS+D2T"
    SIPS_SCTP = "SIPS+D2S"


_SERVICE_TRANSPORT = {
    Service.SIP_UDP: Transport.UDP,
    Service.SIP_TCP: Transport.TCP,
    Service.SIP_SCTP: Transport.SCTP,
    Service.SIPS_TCP: Transport.TLS,
    Service.SIPS_SCTP: Transport.TLS_SCTP,
}
_SRV_PREFIX = {
    Transport.UDP: "_sip._udp",
    Transport.TCP: "_sip._tcp",
    Transport.SCTP: "_sip._sctp",
    Transport.TLS: "_sips._tcp",
    Transport.TLS_SCTP: "_sips._sctp",
}
_SECURE = frozenset({Transport.TLS, Transport.TLS_SCTP})
DEFAULT_PORTS = {
    Transport.UDP: 5060,
    Transport.TCP: 5060,
    Transport.SCTP: 5060,
    Transport.TLS: 5061,
    Transport.TLS_SCTP: 5061,
}
"""RFC 3261 §19.1.2: 5060 for sip:, 5061 for sips: (TLS)."""
SUPPORTED = frozenset({Transport.UDP, Transport.TCP, Transport.TLS})
"""What heron can send over, in the order it prefers when the domain leaves it the choice."""
_PREFERENCE = (Transport.UDP, Transport.TCP, Transport.TLS, Transport.SCTP, Transport.TLS_SCTP)

MAX_TARGETS = 16
"""Hostile DNS bounds the work: at most this many targets ..."""
MAX_QUERIES = 40
"""... and lookups for one request."""


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """Where to send: a transport, a numeric address and a port."""

    transport: Transport
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Located:
    """The targets, in the order to try them (RFC 3263 §4.3).

    ``failed`` says a lookup failed (timeout, server failure) rather than came back empty:
    with no targets, the request gets 503 (try later), not 404.
    """

    targets: tuple[DnsTarget, ...]
    failed: bool = False


Locating = Steps[Located]


def locate(uri: SipUri, pick: Pick, supported: frozenset[Transport] = SUPPORTED) -> Locating:
    """The RFC 3263 §4 procedure for ``uri``; see the module docstring."""
    state = _State(supported)
    secure = uri.scheme == "sips"
    host = uri.maddr or uri.host
    try:
        parse_host(host)
    except MalformedValue:
        return Located(())
    host = host.strip("[]").lower().rstrip(".")
    transport = _explicit_transport(uri.transport, secure)
    if transport is None and uri.transport is not None:
        return Located(())  # ws, wss, sctp over sips, or an unknown token: nothing to do
    if is_numeric(host):
        chosen = transport or (Transport.TLS if secure else Transport.UDP)
        if chosen not in supported:
            return Located(())
        return Located((DnsTarget(chosen, host, uri.port or DEFAULT_PORTS[chosen]),))
    if uri.port is not None:
        # §4.2: an explicit port skips NAPTR and SRV.
        chosen = transport or (Transport.TLS if secure else Transport.UDP)
        if chosen in supported:
            yield from state.addresses(chosen, host, uri.port)
        return state.result()
    if transport is not None:
        # §4.2: an explicit transport skips NAPTR; SRV for that transport, then A/AAAA.
        if transport not in supported:
            return Located(())
        records = yield from state.ask(Query(f"{_SRV_PREFIX[transport]}.{host}", RecordType.SRV))
        services = [(transport, _srvs(records))]
    else:
        services = yield from state.naptr_services(host, secure)
        # §4.1: NAPTR chose the transport; without NAPTR, UDP for SIP and TLS for SIPS.
        transport = services[0][0] if services else None
        if not services:
            # §4.1: no usable NAPTR, so one SRV query per transport we support.
            for candidate in _PREFERENCE:
                if candidate in supported and (not secure or candidate in _SECURE):
                    name = f"{_SRV_PREFIX[candidate]}.{host}"
                    records = yield from state.ask(Query(name, RecordType.SRV))
                    services.append((candidate, _srvs(records)))
    for service_transport, srvs in services:
        for srv in order_srv(srvs, pick):
            if srv.target == ".":
                continue  # RFC 2782: the service is decidedly not available there
            yield from state.addresses(service_transport, srv.target, srv.port)
    if not any(srvs for _, srvs in services):
        # §4.2: no SRV records at all: the host's addresses, the transport's default port.
        chosen = transport or (Transport.TLS if secure else Transport.UDP)
        if chosen in supported:
            yield from state.addresses(chosen, host, DEFAULT_PORTS[chosen])
    return state.result()


def select_naptr(
    records: Sequence[Naptr], secure: bool, supported: frozenset[Transport] = SUPPORTED
) -> list[tuple[Transport, str]]:
    """(transport, SRV name) of the usable NAPTR records, best first (RFC 3263 §4.1).

    Usable: a SIP service we support with flag "s" and a replacement. A SIPS URI keeps only
    SIPS services (a MUST); a SIP URI keeps them too, TLS being supported. Only the lowest
    order holding a usable record counts (RFC 3403 §4.1: "once a match is found the client
    MUST NOT consider records with a different Order").
    """
    usable: list[tuple[int, int, Transport, str]] = []
    for record in records:
        try:
            transport = _SERVICE_TRANSPORT[Service(record.service.upper())]
        except ValueError:
            continue
        replacement = record.replacement.lower().rstrip(".")
        if (
            transport not in supported
            or (secure and transport not in _SECURE)
            or record.flags.lower() != "s"
            or record.regexp
            or not replacement
        ):
            continue
        usable.append((record.order, record.preference, transport, replacement))
    if not usable:
        return []
    first = min(order for order, *_ in usable)
    kept = sorted((u for u in usable if u[0] == first), key=lambda u: u[1])
    return list(dict.fromkeys((transport, name) for _, _, transport, name in kept))


class _State:
    """What one locate run has found so far, and how much it may still ask."""

    def __init__(self, supported: frozenset[Transport]) -> None:
        self.supported = supported
        self.targets: dict[DnsTarget, None] = {}
        self.failed = False
        self.queries = 0

    def ask(self, query: Query) -> Generator[Query, Answer, Sequence[Record]]:
        if self.queries >= MAX_QUERIES:
            return ()
        self.queries += 1
        answer = yield query
        if answer is None:
            self.failed = True
            return ()
        return answer

    def naptr_services(
        self, host: str, secure: bool
    ) -> Generator[Query, Answer, list[tuple[Transport, list[Srv]]]]:
        records = yield from self.ask(Query(host, RecordType.NAPTR))
        naptrs = [r for r in records if isinstance(r, Naptr)]
        services = []
        for transport, name in select_naptr(naptrs, secure, self.supported)[:8]:
            srvs = yield from self.ask(Query(name, RecordType.SRV))
            services.append((transport, _srvs(srvs)))
        return services

    def addresses(
        self, transport: Transport, host: str, port: int
    ) -> Generator[Query, Answer, None]:
        host = host.lower().rstrip(".")
        if is_numeric(host):
            self._add(DnsTarget(transport, host, port))
            return
        for record_type in (RecordType.A, RecordType.AAAA):
            if len(self.targets) >= MAX_TARGETS:
                return
            records = yield from self.ask(Query(host, record_type))
            for address in records:
                if isinstance(address, str) and is_numeric(address):
                    self._add(DnsTarget(transport, address, port))

    def _add(self, target: DnsTarget) -> None:
        if len(self.targets) < MAX_TARGETS and 0 < target.port <= 65535:
            self.targets[target] = None

    def result(self) -> Located:
        return Located(tuple(self.targets), self.failed and not self.targets)


def _explicit_transport(param: str | None, secure: bool) -> Transport | None:
    """The ``transport`` parameter as a transport; over SIPS, TCP means TLS (RFC 3261 §26.2)."""
    if param is None:
        return None
    try:
        transport = Transport(param)
    except ValueError:
        return None
    if secure:
        return {Transport.TCP: Transport.TLS, Transport.TLS: Transport.TLS}.get(transport)
    return transport


def _srvs(records: Sequence[Record]) -> list[Srv]:
    return [r for r in records if isinstance(r, Srv)]
