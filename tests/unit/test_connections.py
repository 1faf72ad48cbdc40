"""ConnectionLimiter: open connections per source network over every listener."""

from __future__ import annotations

from ipaddress import ip_network

from heron.connections import ConnectionLimiter


def test_a_source_over_its_limit_is_refused_and_its_neighbours_are_not() -> None:
    limiter = ConnectionLimiter(3)
    assert all(limiter.open("198.51.100.7", "xmpp") for _ in range(3))
    assert not limiter.open("198.51.100.7", "sip")
    assert limiter.open("198.51.100.8", "xmpp")
    assert limiter.refused == 1


def test_a_closed_connection_frees_its_place() -> None:
    limiter = ConnectionLimiter(1)
    assert limiter.open("198.51.100.7", "web")
    limiter.close("198.51.100.7")
    assert limiter.count("198.51.100.7") == 0
    assert len(limiter) == 0
    assert limiter.open("198.51.100.7", "web")


def test_ipv6_sources_count_per_64() -> None:
    limiter = ConnectionLimiter(2)
    assert limiter.open("2001:db8:0:1::1", "turn")
    assert limiter.open("2001:db8:0:1::2", "turn")
    assert not limiter.open("2001:db8:0:1::3", "turn")
    assert limiter.open("2001:db8:0:2::1", "turn")


def test_exempt_networks_and_zero_are_unlimited() -> None:
    exempt = ConnectionLimiter(1, exempt=[ip_network("192.0.2.0/24")])
    assert all(exempt.open("192.0.2.9", "sip") for _ in range(50))
    unlimited = ConnectionLimiter(0)
    assert all(unlimited.open("198.51.100.7", "sip") for _ in range(50))
