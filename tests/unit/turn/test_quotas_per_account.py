"""Quotas count the account behind a USERNAME, not the name (issue 10 item 4).

REST names (``expiry:user``) are new every time they are issued, so counting
by name let one account hold any number of allocations; anonymous credentials
count by the visitor's network; a reserved port counts until it is claimed or
lapses; a password change or removal ends what the old keys opened.
"""

from __future__ import annotations

import pytest

from heron.stun import ErrorCode, EvenPort, MessageClass, ReservationToken
from heron.turn.adapters.keys import turn_account
from heron.turn.allocation import RESERVATION_LIFETIME
from tests.unit.turn.harness import Turn, credentials, error_code


def ok_reply(reply: object) -> bool:
    return getattr(reply, "message_class", None) is MessageClass.SUCCESS_RESPONSE


def rest_turn(user_quota: int) -> Turn:
    """A core whose users log in with REST-style names ``N:alice``, any N."""
    turn = Turn(user_quota=user_quota)
    turn.lookup = lambda name: credentials(name, "rest-password")
    return turn


def test_fresh_rest_names_of_one_account_share_its_quota() -> None:
    turn = rest_turn(2)
    replies = [turn.client(f"{n}:alice", "rest-password").allocate() for n in range(3)]

    assert [ok_reply(r) for r in replies] == [True, True, False]
    assert error_code(replies[2]) == ErrorCode.ALLOCATION_QUOTA_REACHED
    assert ok_reply(turn.client("9:bob", "rest-password").allocate())


def test_anonymous_names_count_per_visitor_network() -> None:
    turn = rest_turn(2)
    turn.account = lambda name: None  # what turn_account says of click-to-call's names

    def visit(host: str, n: int) -> bool:
        return ok_reply(turn.client(f"{n}:x", "rest-password", address=(host, 4000 + n)).allocate())

    assert [visit("192.0.2.50", n) for n in range(3)] == [True, True, False]
    assert visit("192.0.2.51", 7)


def test_a_reserved_port_counts_until_it_is_claimed_or_lapses() -> None:
    turn = Turn(user_quota=2)
    reply = turn.client("alice").allocate(EvenPort(reserve=True))
    token = reply.find(ReservationToken)
    assert token is not None

    assert error_code(turn.client("alice").allocate()) == ErrorCode.ALLOCATION_QUOTA_REACHED
    assert ok_reply(turn.client("alice").allocate(token))  # the reserved port becomes this one
    assert error_code(turn.client("alice").allocate()) == ErrorCode.ALLOCATION_QUOTA_REACHED

    lapsing = Turn(user_quota=2)
    assert lapsing.client("alice").allocate(EvenPort(reserve=True)).find(ReservationToken)
    lapsing.advance(RESERVATION_LIFETIME + 1)
    lapsing.expire()
    assert ok_reply(lapsing.client("alice").allocate())


def test_ending_an_account_closes_its_allocations_and_frees_its_quota() -> None:
    turn = Turn(user_quota=1)
    alice, bob = turn.client("alice"), turn.client("bob")
    alice.allocate()
    bob.allocate()

    assert turn.core.end_account("alice") == 1

    assert [a.account for a in turn.core.allocations.values()] == ["bob"]
    assert turn.relays.opened[0].closed
    assert turn.core.counters.allocations_ended == 1
    assert error_code(alice.refresh(600)) == ErrorCode.ALLOCATION_MISMATCH
    assert ok_reply(turn.client("alice").allocate())


@pytest.mark.parametrize(
    ("username", "account"),
    [
        ("roland", "roland@falcot.com"),
        ("Roland", "roland@falcot.com"),
        ("roland@Example.ORG", "roland@example.org"),
        ("1700000000:roland", "roland@falcot.com"),
        ("1700000000:Roland@falcot.com.", "roland@falcot.com"),
        ("1700000000.ab12:roland", "roland@falcot.com"),
        ("1700000000:anonymous-0123456789ab", None),
    ],
)
def test_turn_account_names_the_account_behind_a_username(
    username: str, account: str | None
) -> None:
    assert turn_account(username, "falcot.com") == account
