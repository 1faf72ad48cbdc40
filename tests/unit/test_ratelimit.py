"""FloodGuard: per-source token buckets and bans (what Kamailio's pike does)."""

from __future__ import annotations

from ipaddress import ip_network

from heron.ratelimit import FloodGuard


def test_a_burst_passes_then_the_source_is_banned_for_the_ban_time() -> None:
    guard = FloodGuard(rate=10, burst=5, ban=60)
    assert all(guard.allow("198.51.100.7", 0.0) for _ in range(5))
    assert not guard.allow("198.51.100.7", 0.0)
    assert guard.banned(0.0) == ["198.51.100.7"]
    assert not guard.allow("198.51.100.7", 59.9)  # tokens came back, the ban holds
    assert guard.allow("198.51.100.7", 60.1)
    assert guard.banned_total == 1


def test_a_steady_source_under_the_rate_is_never_banned() -> None:
    guard = FloodGuard(rate=10, burst=5)
    assert all(guard.allow("198.51.100.7", step * 0.1) for step in range(1000))


def test_one_flooding_source_does_not_touch_another() -> None:
    guard = FloodGuard(rate=1, burst=2)
    for _ in range(10):
        guard.allow("198.51.100.7", 0.0)
    assert guard.allow("198.51.100.8", 0.0)


def test_exempt_ranges_and_a_zero_rate_are_never_limited() -> None:
    guard = FloodGuard(rate=1, burst=1, exempt=[ip_network("127.0.0.0/8")])
    assert all(guard.allow("127.0.0.1", 0.0) for _ in range(100))
    assert all(FloodGuard(rate=0, burst=1).allow("198.51.100.7", 0.0) for _ in range(100))


def test_memory_is_bounded_by_capacity() -> None:
    guard = FloodGuard(rate=1, burst=1, capacity=100)
    for n in range(1000):
        guard.allow(f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(guard._buckets) <= 100


def test_a_ban_one_worker_starts_holds_in_another() -> None:
    heard: list[tuple[str, float]] = []
    first = FloodGuard(rate=1, burst=2, ban=60.0, on_ban=lambda s, until: heard.append((s, until)))
    second = FloodGuard(rate=1, burst=2, ban=60.0, exempt=[ip_network("127.0.0.0/8")])
    while first.allow("198.51.100.7", 0.0):
        pass

    assert heard == [("198.51.100.7", 60.0)]
    for source, until in heard:
        second.ban(source, until, 1.0)
    second.ban("127.0.0.1", 60.0, 1.0)  # exempt here: never banned
    second.ban("198.51.100.9", 0.5, 1.0)  # over already
    assert not second.allow("198.51.100.7", 59.0)
    assert second.allow("198.51.100.7", 60.5)
    assert second.allow("127.0.0.1", 2.0) and second.allow("198.51.100.9", 2.0)


def test_a_source_no_longer_exempt_after_a_reload_is_limited_again() -> None:
    guard = FloodGuard(rate=1, burst=2, ban=60, exempt=[ip_network("10.0.0.0/8")])
    assert all(guard.allow("10.1.2.3", 0.0) for _ in range(10))  # exempt, and remembered so
    guard.exempt([])
    assert [guard.allow("10.1.2.3", 0.0) for _ in range(3)] == [True, True, False]
