"""Issue 10 item 3: TURN allowed unlimited password guessing.

72 wrong passwords for one account from 6 source addresses, then the right one
from a seventh, was accepted. TURN keys come from the same password as SIP, XMPP
and the web, so TURN guesses now count in the throttle every protocol shares, per
account and per source network: while the account must wait, a new place is
refused unchecked, and a device that logged in before keeps working.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.security.support import USERS, Target
from tests.security.turn_wire import (
    ALLOCATE_REQUEST,
    REFRESH_REQUEST,
    SUCCESS,
    RawTurnClient,
    allocate,
    answer_to,
    prime,
    send_signed,
    turn_udp,
    with_turn_workers,
)

GUESSERS = [f"127.0.0.{host}" for host in range(2, 8)]
NEWCOMER = "127.0.0.8"
DEVICE = "127.0.0.1"


def test_guesses_from_six_addresses_then_the_password_from_a_seventh(heron: Target) -> None:
    server, password = turn_udp(heron), USERS["roland"]
    with RawTurnClient(server, "roland", password, local=DEVICE) as device:
        assert allocate(device).kind == ALLOCATE_REQUEST | SUCCESS

        guessers = [
            RawTurnClient(server, "roland", f"guess-{n}", local=ip) for n, ip in enumerate(GUESSERS)
        ]
        try:
            for guesser in guessers:
                for _ in range(12):
                    refused = allocate(guesser)
                    assert refused.error == 401, refused
            with RawTurnClient(server, "roland", password, local=NEWCOMER) as newcomer:
                prime(newcomer)
                # One more guess, and the right password right behind it: whether the
                # account's wait was still running or this guess started a new one,
                # the password must not be checked.
                send_signed(guessers[-1])
                answer = answer_to(newcomer, send_signed(newcomer))
                assert answer.kind == ALLOCATE_REQUEST | 0x0110, answer
                assert (answer.error, answer.reason) == (401, "Too many failed attempts")
        finally:
            for guesser in guessers:
                guesser.close()

        # The device that proved the password before is not slowed by strangers' guesses.
        refreshed = device.request(REFRESH_REQUEST)
        assert refreshed.kind == REFRESH_REQUEST | SUCCESS, refreshed
        with RawTurnClient(server, "roland", password, local=DEVICE) as second:
            assert allocate(second).kind == ALLOCATE_REQUEST | SUCCESS


@pytest.fixture
def with_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with with_turn_workers(tmp_path_factory.mktemp("heron")) as running:
        yield running


def test_guesses_spread_over_turn_workers_count_together(with_workers: Target) -> None:
    server, password = turn_udp(with_workers), USERS["roland"]
    with RawTurnClient(server, "roland", password, local=DEVICE) as device:
        assert allocate(device).kind == ALLOCATE_REQUEST | SUCCESS
        guessers = [
            RawTurnClient(server, "roland", f"guess-{n}", local=ip) for n, ip in enumerate(GUESSERS)
        ]
        try:
            # Guess until eight guesses were checked: five free, then waits of 1, 2 and 4 s
            # (guesses during a wait are refused unchecked). The last checked one starts a
            # 4 s wait, wherever each guess landed.
            checked = 0
            for attempt in range(1000):
                refused = allocate(guessers[attempt % len(guessers)])
                assert refused.error == 401, refused
                checked += refused.reason != "Too many failed attempts"
                if checked == 8:
                    break
                time.sleep(0.05)  # pacing, not synchronisation: the waits are the server's
            else:
                raise AssertionError("the guesses were never checked eight times")
            with RawTurnClient(server, "roland", password, local=NEWCOMER) as newcomer:
                answer = allocate(newcomer)
                assert (answer.error, answer.reason) == (401, "Too many failed attempts")
        finally:
            for guesser in guessers:
                guesser.close()
        refreshed = device.request(REFRESH_REQUEST)
        assert refreshed.kind == REFRESH_REQUEST | SUCCESS, refreshed
