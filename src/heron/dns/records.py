"""DNS records as the locating procedures see them, sans-IO (RFC 2782, RFC 3403, RFC 3596).

A procedure (SIP's RFC 3263 §4 in :mod:`heron.sip.locate`, XMPP's RFC 6120 §3.2 in
:mod:`heron.xmpp.s2s.locate`) is a generator: it yields a :class:`Query`, is sent back the
records of that query (or None when the lookup failed), and returns its result. The adapter
(:mod:`heron.dns.resolver`) does the lookups; tests answer from a dict. Randomness, the
weighted choice among SRV records of one priority, is the ``pick`` argument.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

__all__ = [
    "Answer",
    "Naptr",
    "Pick",
    "Query",
    "Record",
    "RecordType",
    "Srv",
    "Steps",
    "is_numeric",
    "order_srv",
    "parse_nameserver",
]


class RecordType(StrEnum):
    NAPTR = "NAPTR"  # RFC 3403
    SRV = "SRV"  # RFC 2782
    A = "A"
    AAAA = "AAAA"  # RFC 3596


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    type: RecordType


@dataclass(frozen=True, slots=True)
class Naptr:
    """A NAPTR record (RFC 3403 §4.1); SIP uses only ``flags="s"`` and a replacement."""

    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str


@dataclass(frozen=True, slots=True)
class Srv:
    """An SRV record (RFC 2782); the target "." means "decidedly not available"."""

    priority: int
    weight: int
    port: int
    target: str


Record = Naptr | Srv | str
Answer = Sequence[Record] | None
"""The records of one query (A/AAAA as address strings); None when the lookup failed."""
Pick = Callable[[int], int]
"""``pick(n)``: a uniform random integer in [0, n], both ends included (RFC 2782)."""
T = TypeVar("T")
Steps = Generator[Query, Answer, T]
"""A locating procedure: yields queries, is sent their answers, returns its result."""


def order_srv(records: Sequence[Srv], pick: Pick) -> list[Srv]:
    """RFC 2782 "Usage rules": lowest priority first; within one priority, a weighted
    random order, records of weight 0 placed first so they are rarely chosen early.

    The draw is from [0, sum] as RFC 2782 says while a weight-0 record is left (a draw of 0
    is its "very small chance"), else from [1, sum]: a 0 would otherwise fall on the first
    record too and skew the weights.
    """
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group = [r for r in group if r.weight == 0] + [r for r in group if r.weight > 0]
        while group:
            total = sum(r.weight for r in group)
            low = 0 if group[0].weight == 0 else 1
            chosen = min(max(low + pick(total - low), low), total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= chosen:
                    ordered.append(group.pop(index))
                    break
    return ordered


def is_numeric(host: str) -> bool:
    """``host`` is an IP address, not a name to look up."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
