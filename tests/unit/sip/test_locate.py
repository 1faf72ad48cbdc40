"""Locating SIP servers (RFC 3263 §4, RFC 2782 ordering), then the DNS adapter on a stub.

The core is driven from a dict of records, each test stating the records a domain
publishes and checking the queries asked and the targets found, in order.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.dns.records import (
    Naptr,
    Pick,
    Query,
    Record,
    RecordType,
    Srv,
    order_srv,
    parse_nameserver,
)
from heron.dns.resolver import Resolver
from heron.sip.locate import (
    MAX_TARGETS,
    DnsTarget,
    Located,
    Transport,
    locate,
    select_naptr,
)
from heron.sip.transports.dns import SipLocator
from heron.sip.uri import SipUri, parse_uri
from tests.support.dns_stub import dns_stub

UDP, TCP, TLS = Transport.UDP, Transport.TCP, Transport.TLS
NAPTR, SRV, A, AAAA = RecordType.NAPTR, RecordType.SRV, RecordType.A, RecordType.AAAA
Zone = Mapping[tuple[str, RecordType], Sequence[Record]]


def lowest(n: int) -> int:
    return 0


def run(
    uri: str, zone: Zone, pick: Pick = lowest, failing: Collection[str] = ()
) -> tuple[Located, list[Query]]:
    """Drive the locate generator, answering from ``zone``; names in ``failing`` time out."""
    parsed = parse_uri(uri)
    assert isinstance(parsed, SipUri)
    steps = locate(parsed, pick)
    asked: list[Query] = []
    try:
        query = next(steps)
        while True:
            asked.append(query)
            answer = None if query.name in failing else zone.get((query.name, query.type), ())
            query = steps.send(answer)
    except StopIteration as done:
        return done.value, asked


def naptr(order: int, preference: int, service: str, replacement: str, flags: str = "s") -> Naptr:
    return Naptr(order, preference, flags, service, "", replacement)


def targets(located: Located) -> list[tuple[str, str, int]]:
    return [(t.transport.value, t.host, t.port) for t in located.targets]


# --- §4.1 transport, §4.2 numeric host and explicit port ------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:bob@192.0.2.7", ("udp", "192.0.2.7", 5060)),
        ("sips:bob@192.0.2.7", ("tls", "192.0.2.7", 5061)),
        ("sip:bob@192.0.2.7:5080;transport=tcp", ("tcp", "192.0.2.7", 5080)),
        ("sip:bob@[2001:db8::1]", ("udp", "2001:db8::1", 5060)),
        ("sip:bob@other.test;maddr=192.0.2.9", ("udp", "192.0.2.9", 5060)),
    ],
)
def test_rfc3263_4_2_numeric_host_asks_nothing(uri: str, expected: tuple[str, str, int]) -> None:
    # §4.1: UDP for SIP, TCP (here TLS) for SIPS; §4.2: that address, port or default.
    located, asked = run(uri, {})

    assert asked == []
    assert targets(located) == [expected]


def test_rfc3263_4_2_explicit_port_skips_naptr_and_srv() -> None:
    zone: Zone = {("other.test", A): ["192.0.2.1"], ("other.test", AAAA): ["2001:db8::1"]}
    located, asked = run("sip:bob@other.test:5080", zone)

    assert asked == [Query("other.test", A), Query("other.test", AAAA)]
    # §4.2: each address at the explicit port, A first, then AAAA.
    assert targets(located) == [("udp", "192.0.2.1", 5080), ("udp", "2001:db8::1", 5080)]


def test_rfc3263_4_1_explicit_transport_skips_naptr() -> None:
    # §4.2: an SRV query for that transport only, then its targets' addresses.
    zone: Zone = {
        ("_sip._tcp.other.test", SRV): [Srv(10, 0, 5070, "pbx.other.test")],
        ("pbx.other.test", A): ["192.0.2.5"],
    }
    located, asked = run("sip:bob@other.test;transport=tcp", zone)

    assert asked[0] == Query("_sip._tcp.other.test", SRV)
    assert NAPTR not in {q.type for q in asked}
    assert targets(located) == [("tcp", "192.0.2.5", 5070)]


def test_rfc3263_4_2_sips_with_explicit_transport_uses_sips_srv() -> None:
    zone: Zone = {
        ("_sips._tcp.other.test", SRV): [Srv(10, 0, 5071, "tls.other.test")],
        ("tls.other.test", A): ["192.0.2.6"],
    }
    located, asked = run("sips:bob@other.test;transport=tcp", zone)

    assert asked[0] == Query("_sips._tcp.other.test", SRV)
    assert targets(located) == [("tls", "192.0.2.6", 5071)]


def test_rfc3263_4_2_explicit_transport_without_srv_uses_its_default_port() -> None:
    zone: Zone = {("other.test", A): ["192.0.2.1"]}
    located, _ = run("sip:bob@other.test;transport=tls", zone)

    assert targets(located) == [("tls", "192.0.2.1", 5061)]


@pytest.mark.parametrize(
    "uri",
    [
        "sip:bob@other.test;transport=ws",
        "sip:bob@other.test;transport=sctp",
        "sip:bob@other.test;transport=bogus",
        "sips:bob@other.test;transport=udp",
        "sip:bob@other.test;maddr=not..a..host",
    ],
)
def test_rfc3263_4_1_a_transport_heron_cannot_use_gives_no_target(uri: str) -> None:
    located, asked = run(uri, {("other.test", A): ["192.0.2.1"]})

    assert located == Located(())
    assert asked == []


# --- §4.1 NAPTR ------------------------------------------------------------------------------


def test_rfc3263_4_1_naptr_then_srv_then_a() -> None:
    zone: Zone = {
        ("other.test", NAPTR): [naptr(10, 50, "SIP+D2U", "_sip._udp.other.test")],
        ("_sip._udp.other.test", SRV): [Srv(10, 0, 5070, "uas.other.test")],
        ("uas.other.test", A): ["192.0.2.10"],
    }
    located, asked = run("sip:bob@other.test", zone)

    assert asked == [
        Query("other.test", NAPTR),
        Query("_sip._udp.other.test", SRV),
        Query("uas.other.test", A),
        Query("uas.other.test", AAAA),
    ]
    assert targets(located) == [("udp", "192.0.2.10", 5070)]


def test_rfc3263_4_1_naptr_preference_orders_the_transports() -> None:
    records = [
        naptr(10, 90, "SIP+D2U", "_sip._udp.other.test"),
        naptr(10, 20, "SIP+D2T", "_sip._tcp.other.test"),
        naptr(10, 50, "SIPS+D2T", "_sips._tcp.other.test"),
    ]

    assert select_naptr(records, secure=False) == [
        (TCP, "_sip._tcp.other.test"),
        (TLS, "_sips._tcp.other.test"),
        (UDP, "_sip._udp.other.test"),
    ]


def test_rfc3263_4_1_sips_uri_discards_services_without_sips() -> None:
    # "If the client is resolving a SIPS URI, it MUST discard any services that do not
    # contain "SIPS" as the protocol in the service field."
    records = [
        naptr(10, 10, "SIP+D2U", "_sip._udp.other.test"),
        naptr(10, 20, "SIPS+D2T", "_sips._tcp.other.test"),
    ]

    assert select_naptr(records, secure=True) == [(TLS, "_sips._tcp.other.test")]


@pytest.mark.parametrize(
    "record",
    [
        naptr(10, 10, "SIP+D2S", "_sip._sctp.other.test"),  # SCTP: heron has none
        naptr(10, 10, "SIPS+D2S", "_sips._sctp.other.test"),
        naptr(10, 10, "E2U+sip", "_sip._udp.other.test"),  # ENUM, not SIP
        naptr(10, 10, "SIP+D2U", "_sip._udp.other.test", flags="a"),  # not an SRV lookup
        Naptr(10, 10, "s", "SIP+D2U", "!^.*$!sip:x@y!", ""),  # a regexp, no replacement
    ],
)
def test_rfc3263_4_1_unusable_naptr_falls_back_to_srv(record: Naptr) -> None:
    zone: Zone = {
        ("other.test", NAPTR): [record],
        ("_sip._tcp.other.test", SRV): [Srv(10, 0, 5060, "tcp.other.test")],
        ("tcp.other.test", A): ["192.0.2.3"],
    }
    located, asked = run("sip:bob@other.test", zone)

    assert Query("_sip._udp.other.test", SRV) in asked
    assert targets(located) == [("tcp", "192.0.2.3", 5060)]


def test_rfc3403_4_1_only_the_lowest_usable_order_counts() -> None:
    # "once a match is found the client MUST NOT consider records with a different Order".
    records = [
        naptr(20, 10, "SIP+D2U", "_sip._udp.other.test"),
        naptr(10, 90, "SIP+D2T", "_sip._tcp.other.test"),
        naptr(5, 10, "SIP+D2S", "_sip._sctp.other.test"),  # unusable: does not count
    ]

    assert select_naptr(records, secure=False) == [(TCP, "_sip._tcp.other.test")]


def test_rfc3263_4_2_naptr_transport_without_srv_uses_a_records() -> None:
    # §4.2: no SRV records: the domain's addresses, the chosen transport, its default port.
    zone: Zone = {
        ("other.test", NAPTR): [naptr(10, 10, "SIP+D2T", "_sip._tcp.other.test")],
        ("other.test", A): ["192.0.2.1"],
    }
    located, _ = run("sip:bob@other.test", zone)

    assert targets(located) == [("tcp", "192.0.2.1", 5060)]


# --- §4.1 and §4.2 without NAPTR: SRV per transport, then A/AAAA ------------------------------


def test_rfc3263_4_1_without_naptr_one_srv_query_per_supported_transport() -> None:
    zone: Zone = {
        ("_sip._udp.other.test", SRV): [Srv(10, 0, 5060, "udp.other.test")],
        ("_sips._tcp.other.test", SRV): [Srv(10, 0, 5061, "tls.other.test")],
        ("udp.other.test", A): ["192.0.2.1"],
        ("tls.other.test", A): ["192.0.2.2"],
    }
    located, asked = run("sip:bob@other.test", zone)

    srv_names = [q.name for q in asked if q.type is SRV]
    assert srv_names == ["_sip._udp.other.test", "_sip._tcp.other.test", "_sips._tcp.other.test"]
    assert targets(located) == [("udp", "192.0.2.1", 5060), ("tls", "192.0.2.2", 5061)]


def test_rfc3263_4_1_sips_without_naptr_asks_only_for_sips_over_tcp() -> None:
    _, asked = run("sips:bob@other.test", {})

    assert [q.name for q in asked if q.type is SRV] == ["_sips._tcp.other.test"]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:bob@other.test", ("udp", "192.0.2.1", 5060)),
        ("sips:bob@other.test", ("tls", "192.0.2.1", 5061)),
    ],
)
def test_rfc3263_4_2_without_srv_a_records_and_default_port(
    uri: str, expected: tuple[str, str, int]
) -> None:
    # §4.1: "If no SRV records are found, the client SHOULD use TCP for a SIPS URI, and UDP
    # for a SIP URI"; §4.2: at the default port for that transport.
    located, asked = run(uri, {("other.test", A): ["192.0.2.1"]})

    assert asked[-2:] == [Query("other.test", A), Query("other.test", AAAA)]
    assert targets(located) == [expected]


def test_rfc2782_target_dot_means_decidedly_not_available() -> None:
    zone: Zone = {
        ("_sip._udp.other.test", SRV): [Srv(0, 0, 0, ".")],
        ("other.test", A): ["192.0.2.1"],
    }
    located, asked = run("sip:bob@other.test", zone)

    # Neither the "." target nor the domain's own address: the service is not there.
    assert located == Located(())
    assert Query("other.test", A) not in asked


def test_rfc3263_4_2_srv_order_gives_the_target_order() -> None:
    zone: Zone = {
        ("_sip._udp.other.test", SRV): [
            Srv(20, 0, 5062, "backup.other.test"),
            Srv(10, 0, 5060, "main.other.test"),
        ],
        ("main.other.test", A): ["192.0.2.1", "192.0.2.2"],
        ("backup.other.test", A): ["192.0.2.9"],
    }
    located, _ = run("sip:bob@other.test", zone)

    assert targets(located) == [
        ("udp", "192.0.2.1", 5060),
        ("udp", "192.0.2.2", 5060),
        ("udp", "192.0.2.9", 5062),
    ]


# --- §4.3 and hostile answers -----------------------------------------------------------------


def test_rfc3263_4_3_no_records_is_not_a_failure() -> None:
    located, _ = run("sip:bob@nowhere.test", {})

    assert located == Located((), failed=False)


def test_rfc3263_4_3_failed_lookups_without_targets_are_temporary() -> None:
    located, _ = run("sip:bob@down.test", {}, failing={"down.test", "_sip._udp.down.test"})

    assert located == Located((), failed=True)


def test_rfc3263_4_3_a_failed_lookup_skips_that_target_only() -> None:
    zone: Zone = {
        ("_sip._udp.other.test", SRV): [
            Srv(10, 0, 5060, "dead.other.test"),
            Srv(20, 0, 5060, "live.other.test"),
        ],
        ("live.other.test", A): ["192.0.2.4"],
    }
    located, _ = run("sip:bob@other.test", zone, failing={"dead.other.test"})

    assert located == Located((DnsTarget(UDP, "192.0.2.4", 5060),), failed=False)


def test_hostile_answers_are_bounded_and_sorted_out() -> None:
    zone: Zone = {
        ("_sip._udp.other.test", SRV): [Srv(10, 0, 5060, f"h{i}.other.test") for i in range(50)]
        + [Srv(10, 0, 5060, "h0.other.test")],
        **{
            (f"h{i}.other.test", A): ["192.0.2.1", "not an address", "192.0.2.1"] for i in range(50)
        },
        ("other.test", NAPTR): ["a string where a NAPTR belongs"],
    }
    located, asked = run("sip:bob@other.test", zone)

    # One target per distinct (transport, address, port), never more than MAX_TARGETS,
    # and the lookups stop once they are found.
    assert targets(located) == [("udp", "192.0.2.1", 5060)]
    assert len(asked) <= 40
    assert len(located.targets) <= MAX_TARGETS


# --- RFC 2782 ordering --------------------------------------------------------------------------

srv_records = st.lists(
    st.builds(
        Srv,
        st.integers(0, 3),
        st.integers(0, 5),
        st.integers(1, 65535),
        st.sampled_from(["a.test", "b.test", "c.test", "d.test"]),
    ),
    max_size=8,
)


@given(srv_records, st.randoms(use_true_random=False))
def test_rfc2782_order_is_a_permutation_by_ascending_priority(
    records: list[Srv], rng: random.Random
) -> None:
    ordered = order_srv(records, lambda n: rng.randint(0, n))

    assert Counter(ordered) == Counter(records)
    assert [r.priority for r in ordered] == sorted(r.priority for r in records)


@given(srv_records)
def test_rfc2782_zero_weights_come_first_when_the_draw_is_zero(records: list[Srv]) -> None:
    # Zero-weight records are placed at the beginning of the list, so a draw of 0 picks them.
    ordered = order_srv(records, lowest)

    for priority in {r.priority for r in records}:
        weights = [r.weight for r in ordered if r.priority == priority]
        zeros = weights.count(0)
        assert weights[:zeros] == [0] * zeros


@given(srv_records)
def test_rfc2782_zero_weights_come_last_when_the_draw_is_the_sum(records: list[Srv]) -> None:
    # A draw of the running sum's total lands on a record with weight: a zero-weight one is
    # chosen only when no other is left ("a very small chance of being selected").
    ordered = order_srv(records, lambda n: n)

    for priority in {r.priority for r in records}:
        weights = [r.weight for r in ordered if r.priority == priority]
        positive = sum(1 for w in weights if w > 0)
        assert all(w > 0 for w in weights[:positive])


@given(srv_records, st.integers())
def test_rfc2782_a_draw_out_of_range_is_clamped(records: list[Srv], draw: int) -> None:
    ordered = order_srv(records, lambda n: draw)

    assert Counter(ordered) == Counter(records)


def test_rfc2782_weights_share_the_first_choice() -> None:
    # Weight 3 against weight 1 at one priority: chosen first about 3 times in 4.
    heavy, light = Srv(10, 3, 5060, "heavy.test"), Srv(10, 1, 5060, "light.test")
    rng = random.Random(3263)
    firsts = Counter(order_srv([light, heavy], lambda n: rng.randint(0, n))[0] for _ in range(4000))

    assert 0.70 < firsts[heavy] / 4000 < 0.80


# --- the DNS adapter, on a stub name server ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[2001:db8::53]:5300", ("2001:db8::53", 5300)),
    ],
)
def test_nameserver_is_host_or_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["ns.example.com", "127.0.0.1:0", "127.0.0.1:99999", "[::1", ""])
def test_nameserver_that_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_nameserver(text)


STUB_ZONE = {
    ("other.test", "NAPTR"): ['10 50 "s" "SIP+D2T" "" _sip._tcp.other.test.'],
    ("_sip._tcp.other.test", "SRV"): ["10 60 5070 uas.other.test."],
    ("uas.other.test", "A"): ["127.0.0.1"],
}


async def test_rfc3263_lookups_go_to_the_configured_server_and_are_cached() -> None:
    async with dns_stub(STUB_ZONE) as stub:
        locator = SipLocator(Resolver([stub.address]))
        uri = parse_uri("sip:bob@other.test")
        assert isinstance(uri, SipUri)
        first = await locator.locate(uri)
        asked = len(stub.questions)
        second = await locator.locate(uri)

    assert first == second == Located((DnsTarget(TCP, "127.0.0.1", 5070),))
    assert stub.asked("other.test") == ["NAPTR"]
    assert stub.asked("_sip._tcp.other.test") == ["SRV"]
    assert len(stub.questions) == asked  # the second time, all from the cache


async def test_rfc3263_4_3_a_domain_without_records_has_no_target() -> None:
    async with dns_stub(STUB_ZONE) as stub:
        uri = parse_uri("sip:bob@nowhere.test")
        assert isinstance(uri, SipUri)
        located = await SipLocator(Resolver([stub.address])).locate(uri)

    assert located == Located((), failed=False)
    assert stub.asked("nowhere.test") == ["NAPTR"]


async def test_unanswered_lookups_fail_within_the_budget() -> None:
    async with dns_stub(STUB_ZONE, silent=frozenset({"down.test"})) as stub:
        uri = parse_uri("sip:bob@down.test")
        assert isinstance(uri, SipUri)
        located = await SipLocator(Resolver([stub.address], timeout=0.2), budget=0.5).locate(uri)

    assert located == Located((), failed=True)
    assert stub.asked("down.test")[0] == "NAPTR"
