"""Which peers a relay may reach (RFC 8656 §21.3; coturn CVE-2020-26262), every spelling."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.turn.peers import DENIED_BY_DEFAULT, IPNetwork, PeerPolicy, embedded_ipv4

DEFAULT = PeerPolicy()


def permits(policy: PeerPolicy, text: str) -> bool:
    return policy.permits(ip_address(text))


# --- spellings of an IPv4 address inside IPv6 -------------------------------------------------


def mapped(v4: IPv4Address) -> IPv6Address:
    return IPv6Address(0xFFFF_0000_0000 | int(v4))  # ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)


def compatible(v4: IPv4Address) -> IPv6Address:
    return IPv6Address(int(v4))  # ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated)


def nat64(v4: IPv4Address) -> IPv6Address:
    return IPv6Address(int(IPv6Address("64:ff9b::")) | int(v4))  # RFC 6052 well-known prefix


def nat64_local(v4: IPv4Address) -> IPv6Address:
    return IPv6Address(int(IPv6Address("64:ff9b:1::")) | int(v4))  # RFC 8215 local-use


def sixtofour(v4: IPv4Address, suffix: int = 1) -> IPv6Address:
    return IPv6Address((0x2002 << 112) | (int(v4) << 80) | suffix)  # RFC 3056


TEREDO_SERVER = IPv4Address("65.54.227.120")


def teredo(v4: IPv4Address, server: IPv4Address = TEREDO_SERVER) -> IPv6Address:
    """RFC 4380 §4: 2001:0::/32, server, flags, port and client, the last two inverted."""
    return IPv6Address(
        (0x2001_0000 << 96) | (int(server) << 64) | (0x8000 << 48) | (0x63BF << 32)
        | (int(v4) ^ 0xFFFF_FFFF)
    )  # fmt: skip


SPELLINGS = [mapped, compatible, nat64, nat64_local, sixtofour, teredo]


@pytest.mark.parametrize("spell", SPELLINGS, ids=lambda f: f.__name__)
def test_embedded_ipv4_recovers_every_spelling(spell: object) -> None:
    v4 = IPv4Address("192.0.2.33")

    assert embedded_ipv4(spell(v4)) == v4  # type: ignore[operator]


@pytest.mark.parametrize("text", ["::", "::1", "2001:db8::1", "2606:4700::1111", "fe80::1"])
def test_embedded_ipv4_finds_none_in_plain_ipv6(text: str) -> None:
    assert embedded_ipv4(IPv6Address(text)) is None


# --- the default-deny table ------------------------------------------------------------------


def edges(net: IPNetwork) -> list[str]:
    return [str(net.network_address), str(net.network_address + 1), str(net.broadcast_address)]


@pytest.mark.parametrize("net", DENIED_BY_DEFAULT, ids=str)
def test_rfc8656_21_3_every_default_denied_range_is_refused_edge_to_edge(net: IPNetwork) -> None:
    for text in edges(net):
        assert not permits(DEFAULT, text), text


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255",
        "192.168.0.1", "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0",
        "0.1.2.3", "192.0.0.8", "198.18.0.1", "198.19.255.255", "224.0.0.251",
        "239.255.255.250", "240.0.0.1", "255.255.255.255",
        "::", "::1", "100::1", "fc00::1", "fdff:ffff::1", "fe80::1", "febf::1", "ff02::1",
        "ff05::1:3",
    ],
)  # fmt: skip
def test_rfc8656_21_3_loopback_private_link_local_multicast_unspecified_refused(
    text: str,
) -> None:
    assert not permits(DEFAULT, text)


@pytest.mark.parametrize(
    "text",
    [
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.168.1.1", "::ffff:169.254.169.254",
        "::ffff:0.0.0.0", "::ffff:224.0.0.1", "::127.0.0.1", "::10.0.0.1", "::2",
        "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::c0a8:101", "2002:7f00:1::1",
        "2002:a00:1::", "2002:c0a8:101::1", "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    ],
)  # fmt: skip
def test_cve_2020_26262_ipv6_spellings_of_internal_ipv4_refused(text: str) -> None:
    assert not permits(DEFAULT, text)


@pytest.mark.parametrize(
    "text",
    [
        "8.8.8.8", "1.1.1.1", "198.51.100.7", "203.0.113.9", "9.255.255.255", "11.0.0.0",
        "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255",
        "169.255.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0",
        "198.17.255.255", "198.20.0.0", "223.255.255.255",
        "2001:4860:4860::8888", "2606:4700:4700::1111", "2001:db8::7", "::ffff:8.8.8.8",
        "64:ff9b::808:808", "2002:808:808::1",
    ],
)  # fmt: skip
def test_rfc8656_21_3_public_addresses_are_allowed(text: str) -> None:
    assert permits(DEFAULT, text)


# --- configuration ----------------------------------------------------------------------------


def test_allowed_range_admits_every_spelling_of_it() -> None:
    policy = PeerPolicy(allowed=[ip_network("10.0.0.0/8")])

    assert permits(policy, "10.1.2.3")
    assert permits(policy, "::ffff:10.1.2.3")
    assert permits(policy, "64:ff9b::a01:203")
    assert not permits(policy, "192.168.1.1")
    assert not permits(policy, "::ffff:127.0.0.1")


def test_allowed_ipv6_range_admits_private_ipv6() -> None:
    policy = PeerPolicy(allowed=[ip_network("fd00::/8")])

    assert permits(policy, "fd12::1")
    assert not permits(policy, "fc00::1")


def test_extra_denied_range_is_refused_in_every_spelling() -> None:
    policy = PeerPolicy(denied=[ip_network("203.0.113.0/24")])

    assert not permits(policy, "203.0.113.5")
    assert not permits(policy, "::ffff:203.0.113.5")
    assert not permits(policy, "2002:cb00:7105::1")
    assert permits(policy, "203.0.114.5")


def test_own_addresses_are_refused_in_every_spelling() -> None:
    policy = PeerPolicy(own_addresses=[IPv4Address("198.51.100.1"), IPv6Address("2001:db8::1")])

    assert not permits(policy, "198.51.100.1")
    assert not permits(policy, "::ffff:198.51.100.1")
    assert not permits(policy, "64:ff9b::c633:6401")
    assert not permits(policy, "2001:db8::1")
    assert permits(policy, "198.51.100.2")
    assert permits(policy, "2001:db8::2")


# --- properties -------------------------------------------------------------------------------

internal_v4 = st.one_of(
    st.integers(0x7F00_0000, 0x7FFF_FFFF),  # 127/8
    st.integers(0x0A00_0000, 0x0AFF_FFFF),  # 10/8
    st.integers(0xAC10_0000, 0xAC1F_FFFF),  # 172.16/12
    st.integers(0xC0A8_0000, 0xC0A8_FFFF),  # 192.168/16
    st.integers(0xA9FE_0000, 0xA9FE_FFFF),  # 169.254/16
).map(IPv4Address)

DENIED_V4 = [net for net in DENIED_BY_DEFAULT if net.version == 4]
public_v4 = st.ip_addresses(v=4).filter(lambda a: not any(a in net for net in DENIED_V4))


@given(v4=internal_v4, suffix=st.integers(0, 2**80 - 1))
def test_cve_2020_26262_internal_ipv4_refused_in_every_ipv6_spelling(
    v4: IPv4Address, suffix: int
) -> None:
    assert not DEFAULT.permits(v4)
    for spell in (mapped, compatible, nat64, nat64_local, teredo):
        assert not DEFAULT.permits(spell(v4)), spell.__name__
    assert not DEFAULT.permits(sixtofour(v4, suffix))


@given(v4=public_v4)
def test_rfc8656_21_3_public_ipv4_allowed_in_every_spelling(v4: IPv4Address) -> None:
    assert DEFAULT.permits(v4)
    for spell in SPELLINGS:
        assert DEFAULT.permits(spell(v4)), spell.__name__


# --- heron's own listeners, whatever the allowed ranges ----------------------------------------

OWN = PeerPolicy(
    allowed=[ip_network("127.0.0.0/8"), ip_network("10.0.0.0/8")],
    own_addresses=[ip_address("10.0.0.5")],
    own_ports=[5060, 5222],
)


@pytest.mark.parametrize(
    ("host", "port", "own"),
    [
        ("127.0.0.1", 5060, True),
        ("127.9.9.9", 5222, True),
        ("::ffff:127.0.0.1", 5060, True),
        ("10.0.0.5", 5060, True),
        ("0.0.0.0", 5060, True),
        ("127.0.0.1", 5061, False),
        ("10.0.0.6", 5060, False),
    ],
)
def test_own_listening_ports_are_never_peers_though_the_range_is_allowed(
    host: str, port: int, own: bool
) -> None:
    assert OWN.is_own_service(ip_address(host), port) is own
