"""Issue 10 item 3: TURN allowed unlimited password guessing.

72 wrong passwords for one account from 6 source addresses, then the right one
from a seventh, was accepted. TURN keys come from the same password as SIP, XMPP
and the web, so TURN guesses now count in the throttle every protocol shares, per
account and per source network: while the account must wait, a new place is
refused unchecked, and a device that logged in before keeps working.
"""

from __future__ import annotations

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
