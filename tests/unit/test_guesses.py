"""GuessThrottle: growing waits per account and per source network, known devices exempt."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heron.guesses import GuessThrottle, account_key, network_key

ACCOUNT = "roland@falcot.com"


def fail_until_wait(throttle: GuessThrottle, account: str | None, source: str, now: float) -> int:
    """Fail until a wait starts; how many failures that took."""
    count = 0
    while throttle.wait(account, source, now) == 0:
        throttle.failure(account, source, now)
        count += 1
        assert count < 10_000
    return count


def test_account_key_is_one_spelling_of_every_variant() -> None:
    assert account_key("Roland", "FALCOT.com.") == ACCOUNT
    assert account_key("roland", "falcot.com") == ACCOUNT


def test_ipv6_sources_count_per_64_and_ipv4_mapped_as_ipv4() -> None:
    assert (
        network_key("2001:db8:1:2::1")
        == network_key("2001:db8:1:2:ffff::9")
        == ("2001:db8:1:2::/64")
    )
    assert network_key("2001:db8:1:3::1") != network_key("2001:db8:1:2::1")
    assert network_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert network_key("[2001:db8::1]") == "2001:db8::/64"


def test_free_failures_then_a_wait_that_doubles_up_to_the_ceiling() -> None:
    throttle = GuessThrottle(account_free=5, source_free=1000, base=1.0, account_ceiling=8.0)
    now = 0.0
    assert fail_until_wait(throttle, ACCOUNT, "198.51.100.1", now) == 6
    waits = []
    for _ in range(6):
        wait = throttle.wait(ACCOUNT, "198.51.100.1", now)
        waits.append(wait)
        now += wait
        throttle.failure(ACCOUNT, "198.51.100.1", now)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_guesses_from_many_sources_add_up_on_the_account() -> None:
    """The outside review: 72 guesses from 6 addresses, then the right one from a 7th."""
    throttle = GuessThrottle(account_free=5, source_free=20)
    for attempt in range(72):
        source = f"198.51.100.{attempt % 6 + 1}"
        if throttle.wait(ACCOUNT, source, 0.0) == 0:
            throttle.failure(ACCOUNT, source, 0.0)
    assert throttle.wait(ACCOUNT, "198.51.100.7", 0.0) > 0


def test_guesses_refused_during_a_wait_do_not_lengthen_it() -> None:
    throttle = GuessThrottle(account_free=1, source_free=1000)
    fail_until_wait(throttle, ACCOUNT, "198.51.100.1", 0.0)
    first = throttle.wait(ACCOUNT, "198.51.100.1", 0.0)
    for _ in range(100):
        throttle.failure(ACCOUNT, "198.51.100.1", 0.5)
    assert throttle.wait(ACCOUNT, "198.51.100.1", 0.5) == first - 0.5


def test_a_known_device_is_not_held_by_a_strangers_guesses() -> None:
    throttle = GuessThrottle(account_free=3, source_free=1000)
    throttle.success(ACCOUNT, "203.0.113.5", 0.0)
    fail_until_wait(throttle, ACCOUNT, "198.51.100.1", 1.0)
    assert throttle.wait(ACCOUNT, "198.51.100.9", 1.0) > 0
    assert throttle.wait(ACCOUNT, "203.0.113.5", 1.0) == 0


def test_a_known_device_is_forgotten_when_the_password_changes() -> None:
    throttle = GuessThrottle(account_free=3, source_free=1000)
    throttle.success(ACCOUNT, "203.0.113.5", 0.0)
    throttle.forget_account(ACCOUNT)
    fail_until_wait(throttle, ACCOUNT, "198.51.100.1", 1.0)
    assert throttle.wait(ACCOUNT, "203.0.113.5", 1.0) > 0


def test_a_known_device_still_waits_for_its_own_guesses() -> None:
    throttle = GuessThrottle(account_free=1000, source_free=3)
    throttle.success(ACCOUNT, "203.0.113.5", 0.0)
    fail_until_wait(throttle, "other@falcot.com", "203.0.113.5", 0.0)
    assert throttle.wait(ACCOUNT, "203.0.113.5", 0.0) > 0


def test_a_success_does_not_clear_the_sources_count() -> None:
    throttle = GuessThrottle(account_free=1000, source_free=2)
    for _ in range(2):
        throttle.failure("victim@falcot.com", "198.51.100.1", 0.0)
    throttle.success("mallory@falcot.com", "198.51.100.1", 0.0)
    throttle.failure("victim@falcot.com", "198.51.100.1", 0.0)
    assert throttle.wait(None, "198.51.100.1", 0.0) > 0


def test_counts_are_forgotten_after_a_quiet_time() -> None:
    throttle = GuessThrottle(account_free=2, source_free=1000, forget=900.0)
    fail_until_wait(throttle, ACCOUNT, "198.51.100.1", 0.0)
    assert fail_until_wait(throttle, ACCOUNT, "198.51.100.1", 2000.0) == 3


def test_ipv6_neighbours_share_one_source_count() -> None:
    throttle = GuessThrottle(account_free=1000, source_free=3)
    for host in range(1, 5):
        throttle.failure(f"user{host}@falcot.com", f"2001:db8:0:1::{host}", 0.0)
    assert throttle.wait(None, "2001:db8:0:1::ffff", 0.0) > 0
    assert throttle.wait(None, "2001:db8:0:2::1", 0.0) == 0


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=300))
def test_memory_stays_within_capacity(guesses: list[tuple[int, int]]) -> None:
    throttle = GuessThrottle(capacity=20)
    for step, (user, host) in enumerate(guesses):
        throttle.failure(f"u{user}@x", f"10.0.0.{host}", float(step))
        throttle.success(f"u{user}@x", f"10.0.1.{host}", float(step))
    assert len(throttle) <= 60
