"""Locating another domain's XMPP server (RFC 6120 §3.2, XEP-0368 §3), then the adapter
on a real UDP name server, with the outgoing-address rule applied.

The core is driven from a dict of records: each test states what a domain publishes and
checks the queries asked and the targets found, in order.
"""

from __future__ import annotations

import ast
import ipaddress
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import heron
from heron.config import Config
from heron.destinations import Destinations
from heron.dns.records import Pick, Query, Record, RecordType, Srv
from heron.dns.resolver import Resolver
from heron.xmpp.s2s.dns import ServerLocator, s2s_destinations
from heron.xmpp.s2s.locate import (
    MAX_QUERIES,
    MAX_TARGETS,
    ServerLocation,
    Target,
    locate_server,
)
from tests.support.dns_stub import dns_stub
from tests.unit.test_layers import imported_modules
from tests.unit.test_sans_io import FORBIDDEN, imported_roots

SRV, A, AAAA = RecordType.SRV, RecordType.A, RecordType.AAAA
Zone = Mapping[tuple[str, RecordType], Sequence[Record]]
XMPPS, XMPP = "_xmpps-server._tcp.remote.test", "_xmpp-server._tcp.remote.test"


def lowest(n: int) -> int:
    return 0


def run(
    domain: str, zone: Zone, pick: Pick = lowest, failing: Collection[str] = ()
) -> tuple[ServerLocation, list[Query]]:
    """Drive the generator, answering from ``zone``; names in ``failing`` time out."""
    steps = locate_server(domain, pick)
    asked: list[Query] = []
    try:
        query = next(steps)
        while True:
            asked.append(query)
            answer = None if query.name in failing else zone.get((query.name, query.type), ())
            query = steps.send(answer)
    except StopIteration as done:
        return done.value, asked


def test_rfc6120_3_2_1_starttls_srv_targets_and_their_addresses() -> None:
    zone = {
        (XMPP, SRV): [Srv(10, 0, 5270, "xmpp.remote.test")],
        ("xmpp.remote.test", A): ["192.0.2.1"],
        ("xmpp.remote.test", AAAA): ["2001:db8::1"],
    }
    located, asked = run("remote.test", zone)
    assert asked[:2] == [Query(XMPPS, SRV), Query(XMPP, SRV)]
    assert located == ServerLocation(
        (
            Target("192.0.2.1", 5270, False, "xmpp.remote.test"),
            Target("2001:db8::1", 5270, False, "xmpp.remote.test"),
        )
    )


def test_xep0368_3_direct_tls_is_preferred_at_equal_priority_only() -> None:
    zone = {
        (XMPPS, SRV): [Srv(10, 0, 5223, "tls.remote.test"), Srv(5, 0, 443, "mux.remote.test")],
        (XMPP, SRV): [Srv(10, 0, 5269, "plain.remote.test"), Srv(1, 0, 5269, "first.test")],
        ("tls.remote.test", A): ["192.0.2.1"],
        ("mux.remote.test", A): ["192.0.2.2"],
        ("plain.remote.test", A): ["192.0.2.3"],
        ("first.test", A): ["192.0.2.4"],
    }
    located, _ = run("remote.test", zone)
    assert [(t.host, t.port, t.direct_tls) for t in located.targets] == [
        ("first.test", 5269, False),  # priority 1
        ("mux.remote.test", 443, True),  # priority 5
        ("tls.remote.test", 5223, True),  # priority 10, direct TLS first
        ("plain.remote.test", 5269, False),
    ]


def test_rfc2782_weights_order_records_of_one_priority() -> None:
    zone = {
        (XMPP, SRV): [Srv(10, 1, 5269, "light.test"), Srv(10, 99, 5269, "heavy.test")],
        ("light.test", A): ["192.0.2.1"],
        ("heavy.test", A): ["192.0.2.2"],
    }
    first = Counter(run("remote.test", zone, pick=lambda n: n)[0].targets[0].host for _ in "ab")
    assert first == {"heavy.test": 2}  # the top of the draw falls in the heavy record's share
    assert run("remote.test", zone, pick=lowest)[0].targets[0].host == "light.test"


def test_rfc6120_3_2_2_no_srv_falls_back_to_the_domain_on_5269() -> None:
    zone = {("remote.test", A): ["192.0.2.9"], ("remote.test", AAAA): ["2001:db8::9"]}
    located, asked = run("Remote.Test.", zone)
    assert asked == [
        Query(XMPPS, SRV),
        Query(XMPP, SRV),
        Query("remote.test", A),
        Query("remote.test", AAAA),
    ]
    assert located.targets == (
        Target("192.0.2.9", 5269, False, "remote.test"),
        Target("2001:db8::9", 5269, False, "remote.test"),
    )


def test_rfc6120_3_2_1_step_8_unanswered_srv_queries_fall_back_too() -> None:
    zone = {("remote.test", A): ["192.0.2.9"]}
    located, _ = run("remote.test", zone, failing={XMPPS, XMPP})
    assert located == ServerLocation((Target("192.0.2.9", 5269, False, "remote.test"),))


def test_rfc6120_3_2_1_step_2_a_dot_target_means_no_service_and_no_fallback() -> None:
    zone = {(XMPP, SRV): [Srv(0, 0, 0, ".")], ("remote.test", A): ["192.0.2.9"]}
    located, asked = run("remote.test", zone)
    assert located == ServerLocation(())
    assert Query("remote.test", A) not in asked


def test_a_dot_for_one_kind_leaves_the_other() -> None:
    zone = {
        (XMPPS, SRV): [Srv(0, 0, 0, ".")],
        (XMPP, SRV): [Srv(10, 0, 5269, "xmpp.remote.test")],
        ("xmpp.remote.test", A): ["192.0.2.1"],
    }
    located, _ = run("remote.test", zone)
    assert located.targets == (Target("192.0.2.1", 5269, False, "xmpp.remote.test"),)


def test_rfc6120_3_2_1_step_7_srv_without_addresses_does_not_fall_back() -> None:
    zone = {(XMPP, SRV): [Srv(10, 0, 5269, "gone.test")], ("remote.test", A): ["192.0.2.9"]}
    located, asked = run("remote.test", zone)
    assert located == ServerLocation(())
    assert Query("remote.test", A) not in asked


def test_failed_lookups_with_no_target_say_failed() -> None:
    zone = {(XMPP, SRV): [Srv(10, 0, 5269, "xmpp.remote.test")]}
    located, _ = run("remote.test", zone, failing={"xmpp.remote.test"})
    assert located == ServerLocation((), failed=True)


def test_rfc7622_an_ip_literal_domain_is_its_own_target() -> None:
    for domain, address in (("192.0.2.7", "192.0.2.7"), ("[2001:db8::7]", "2001:db8::7")):
        located, asked = run(domain, {})
        assert located.targets == (Target(address, 5269, False, address),)
        assert asked == []


@pytest.mark.parametrize("domain", ["", "a..b", "-x.test", "x" * 64 + ".test", "a b", "é.test"])
def test_a_domain_that_is_no_dns_name_is_never_asked(domain: str) -> None:
    assert run(domain, {}) == (ServerLocation(()), [])


def test_srv_target_port_zero_and_numeric_targets() -> None:
    zone = {(XMPP, SRV): [Srv(10, 0, 0, "zero.test"), Srv(20, 0, 5269, "192.0.2.5")]}
    located, asked = run("remote.test", zone)
    assert located.targets == (Target("192.0.2.5", 5269, False, "192.0.2.5"),)
    assert len(asked) == 2


def test_hostile_dns_is_bounded_in_queries_and_targets() -> None:
    many = [Srv(i % 3, 1, 5269, f"h{i}.test") for i in range(500)]
    zone: dict[tuple[str, RecordType], Sequence[Record]] = {(XMPPS, SRV): many, (XMPP, SRV): many}
    for i in range(500):
        zone[(f"h{i}.test", A)] = [f"192.0.2.{j}" for j in range(1, 200)]
    located, asked = run("remote.test", zone, pick=lambda n: n // 2)
    assert len(asked) <= MAX_QUERIES
    assert len(located.targets) == MAX_TARGETS


@given(
    st.lists(
        st.tuples(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 65535)),
        max_size=12,
    ),
    st.booleans(),
)
def test_any_srv_answer_gives_bounded_valid_targets(
    records: list[tuple[int, int, int]], direct: bool
) -> None:
    srvs = [Srv(p, w, port, f"h{i}.test") for i, (p, w, port) in enumerate(records)]
    zone = {(XMPPS if direct else XMPP, SRV): srvs}
    zone |= {(f"h{i}.test", A): ["192.0.2.1"] for i in range(len(records))}
    located, asked = run("remote.test", zone, pick=lambda n: n)
    assert len(asked) <= MAX_QUERIES and len(located.targets) <= MAX_TARGETS
    assert all(0 < t.port <= 65535 and t.direct_tls == direct for t in located.targets)
    priorities = [next(s.priority for s in srvs if s.target == t.host) for t in located.targets]
    assert priorities == sorted(priorities)


@pytest.mark.parametrize("core", ["xmpp/s2s/locate.py", "xmpp/s2s/identity.py", "dns/records.py"])
def test_the_s2s_and_dns_cores_import_no_io_clock_or_randomness(core: str) -> None:
    """tests/unit/test_sans_io.py's rule, for the cores outside the packages it globs; the
    records module may not reach dnspython either (through heron.dns.resolver)."""
    path = Path(heron.__file__).parent / core
    assert not imported_roots(path) & FORBIDDEN
    assert "heron.dns.resolver" not in imported_modules(ast.parse(path.read_text()))


STUB_ZONE = {
    (XMPPS, "SRV"): ["10 0 {tls} tls.remote.test."],
    (XMPP, "SRV"): ["10 0 {plain} plain.remote.test.", "20 0 5269 public.remote.test."],
    ("tls.remote.test", "A"): ["127.0.0.1"],
    ("plain.remote.test", "A"): ["127.0.0.1"],
    ("public.remote.test", "A"): ["198.51.200.80"],
}


def zone_with_ports(tls: int, plain: int) -> dict[tuple[str, str], list[str]]:
    return {
        key: [t.format(tls=tls, plain=plain) for t in texts] for key, texts in STUB_ZONE.items()
    }


async def test_locate_server_asks_the_name_server_and_keeps_loopback_only_when_allowed() -> None:
    async with dns_stub(zone_with_ports(15223, 15269)) as stub:
        resolver = Resolver([stub.address])
        loopback = Destinations([ipaddress.ip_network("127.0.0.0/8")])
        allowed = await ServerLocator(resolver, loopback).locate("remote.test")
        strict = ServerLocator(resolver, Destinations())
        refused = await strict.locate("remote.test")

    assert allowed == ServerLocation(
        (
            Target("127.0.0.1", 15223, True, "tls.remote.test"),
            Target("127.0.0.1", 15269, False, "plain.remote.test"),
            Target("198.51.200.80", 5269, False, "public.remote.test"),
        )
    )
    assert stub.asked(XMPPS) == ["SRV"] and stub.asked(XMPP) == ["SRV"]
    assert refused == ServerLocation((Target("198.51.200.80", 5269, False, "public.remote.test"),))
    assert strict.refused == 2


async def test_locate_server_says_failed_when_the_name_server_never_answers() -> None:
    async with dns_stub({}, silent=frozenset({XMPPS, XMPP, "remote.test"})) as stub:
        locator = ServerLocator(Resolver([stub.address], timeout=0.2), Destinations(), budget=0.5)
        assert await locator.locate("remote.test") == ServerLocation((), failed=True)


def test_s2s_destinations_read_their_setting_and_own_the_xmpp_listeners() -> None:
    config = Config.model_validate(
        {
            "xmpp": {
                "s2s_allowed_destinations": ["10.1.0.0/16"],
                "s2s_listen": ["192.0.2.44:5269"],
            }
        }
    )
    rule = s2s_destinations(config)
    assert not rule.internal("10.1.2.3")
    assert rule.internal("10.2.0.1") and rule.internal("127.0.0.1")
    assert rule.internal("192.0.2.44") and rule.is_own("192.0.2.44")
