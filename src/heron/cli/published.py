"""``heron check``'s view from outside, as ``prosodyctl check dns`` and coturn's start-up
warnings give it: the records ``heron dns`` prints against what the resolver answers, and
whether the addresses TURN relays on and advertises can work for clients on the Internet.

Each finding is one line with its fix; the comparison is by what a client uses (an SRV
record's port and target, a NAPTR record's service and replacement, an address), so an
administrator's own priorities and weights are not findings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Hashable
from itertools import groupby

from heron.config import Config
from heron.destinations import interface_addresses
from heron.dns.records import Naptr, Query, Record, RecordType, Srv
from heron.dns.resolver import Resolver
from heron.turn.server import relay_addresses
from heron.zone import ZoneRecord, is_inside, published_records

__all__ = ["dns_findings", "turn_findings"]

_SRV = re.compile(r"\d+ \d+ (?P<port>\d+) (?P<target>\S+)")
_NAPTR = re.compile(r'\d+ \d+ "[^"]*" "(?P<service>[^"]*)" "[^"]*" (?P<replacement>\S+)')


def _name(text: str) -> str:
    return text.lower().rstrip(".")


def _expected_key(record: ZoneRecord) -> Hashable:
    if record.kind == "SRV" and (srv := _SRV.fullmatch(record.data)):
        return int(srv["port"]), _name(srv["target"])
    if record.kind == "NAPTR" and (naptr := _NAPTR.fullmatch(record.data)):
        return naptr["service"].upper(), _name(naptr["replacement"])
    return ipaddress.ip_address(record.data)


def _found_key(record: Record) -> Hashable:
    if isinstance(record, Srv):
        return record.port, _name(record.target)
    if isinstance(record, Naptr):
        return record.service.upper(), _name(record.replacement)
    return ipaddress.ip_address(record)


def _shown(record: Record) -> str:
    if isinstance(record, Srv):
        return f"{record.priority} {record.weight} {record.port} {record.target}."
    if isinstance(record, Naptr):
        return (
            f'{record.order} {record.preference} "{record.flags}" "{record.service}" '
            f'"{record.regexp}" {record.replacement}.'
        )
    return record


def _compare(expected: list[ZoneRecord], found: list[Record] | None) -> str | None:
    """What is wrong with one record set (one owner and type) in DNS, with its fix; None
    when it leads clients where ``heron dns`` says."""
    owner, kind = expected[0].owner, expected[0].kind
    lines = "; ".join(f"{r.owner}. IN {r.kind} {r.data}" for r in expected)
    if found is None:
        return (
            f"dns: {owner} {kind}: the lookup failed; fix: check dns.servers, then publish {lines}"
        )
    if {_expected_key(r) for r in expected} == {_found_key(r) for r in found}:
        return None
    if not found:
        return f"dns: {owner} {kind} is missing; fix: publish {lines}"
    shown = ", ".join(sorted(_shown(r) for r in found))
    return f"dns: {owner} {kind} is {shown}; fix: publish {lines} in its place"


async def dns_findings(config: Config, resolver: Resolver) -> tuple[list[str], list[str]]:
    """(what DNS has right, what it has wrong) of every record ``heron dns`` prints."""
    groups = [
        list(records)
        for _, records in groupby(
            sorted(published_records(config), key=lambda r: (r.owner, r.kind)),
            key=lambda r: (r.owner, r.kind),
        )
    ]
    answers = await asyncio.gather(
        *(resolver.lookup(Query(g[0].owner, RecordType(g[0].kind))) for g in groups)
    )
    right: list[str] = []
    wrong: list[str] = []
    for group, answer in zip(groups, answers, strict=True):
        problem = _compare(group, None if answer is None else list(answer))
        if problem:
            wrong.append(problem)
        else:
            right.append(f"dns: {group[0].owner} {group[0].kind}")
    return right, wrong


async def turn_findings(config: Config, resolver: Resolver) -> list[str]:
    """Relay addresses that cannot work: one not on this host (the relay cannot bind it),
    a private or loopback one advertised by a public-facing config (clients on the Internet
    cannot reach it), an external address neither on this host nor the host name's A
    record (coturn's external-ip names the NAT's public side, which DNS publishes)."""
    if not config.turn.enabled:
        return []
    turn, host = config.turn, config.host_name
    local = {ipaddress.ip_address(a) for a in interface_addresses()}
    public_facing = any(not is_inside(a) for a in config.public_addresses)
    bind, shown = relay_addresses(config)
    problems: list[str] = []
    for version, address in sorted(bind.items()):
        if not address.is_unspecified and address not in local:
            problems.append(
                f"turn: relays bind {address}, which is not an address of this host; fix: "
                "turn.relay_addresses = [an address `ip -brief address` lists], and "
                f"turn.external_address = {address} if a 1:1 NAT forwards it here"
            )
        advertised = shown.get(version, address)
        if public_facing and is_inside(advertised):
            problems.append(
                f"turn: relays are advertised at {advertised}, which clients on the Internet "
                "cannot reach (public_addresses says this server is public); fix: "
                "turn.external_address = the NAT's public address"
            )
    external = turn.external_address
    if external is not None and external not in local and external not in config.public_addresses:
        answer = await resolver.lookup(Query(host, RecordType.A))
        named = {ipaddress.ip_address(a) for a in answer or () if isinstance(a, str)}
        if external not in named:
            shown_a = ", ".join(sorted(map(str, named))) or "nothing"
            problems.append(
                f"turn.external_address: {external} is neither an address of this host nor "
                f"{host}'s A record ({shown_a}); fix: the NAT's public address, published as "
                f"{host}'s A record and in public_addresses"
            )
    return problems
