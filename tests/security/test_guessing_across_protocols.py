"""One password opens every service, so guesses count for the account over every protocol
together (issue 10, item 3: each protocol used to count alone, so a guesser moved on to the
next one when a protocol's lockout came).

Guesses are made over the web, where the answer says how long the account must wait;
within that wait the right password, from addresses that never used the account, is
refused over XMPP, TURN and SIP alike.
"""

from __future__ import annotations

import asyncio
import time

from tests.interop.turn.stun_wire import RawTurnClient
from tests.security.support import DOMAIN, USERS, Target
from tests.security.turn_wire import ALLOCATE_REQUEST, answer_to, prime, send_signed, turn_udp
from tests.security.web_support import Browser, sip_register
from tests.security.xmpp_client import plain_login

GUESSER = "127.0.0.2"
WANTED_WAIT = 8


def guess_over_the_web_until_the_account_waits(heron: Target) -> float:
    """Wrong passwords for roland until a guess leaves a wait of WANTED_WAIT seconds or
    more; the monotonic time that wait ends. A guess made while a wait runs is refused
    unchecked (429 with Retry-After), so the guesser waits it out, as a patient one would."""
    browser = Browser(heron, source=GUESSER)
    for attempt in range(40):
        answer = browser.login(f"roland@{DOMAIN}", f"wrong-{attempt}")
        if answer.status == 403:
            continue
        assert answer.status == 429, (answer.status, answer.text)
        wait = int(answer.headers["Retry-After"])
        if wait >= WANTED_WAIT:
            return time.monotonic() + wait
        time.sleep(wait)
    raise AssertionError("the web never made the account wait")


def test_guesses_over_the_web_hold_the_account_over_xmpp_turn_and_sip(heron: Target) -> None:
    password = USERS["roland"]
    ends = guess_over_the_web_until_the_account_waits(heron)

    xmpp = asyncio.run(plain_login(heron, "roland", password, source="127.0.0.3"))
    assert b"temporary-auth-failure" in xmpp, xmpp

    with RawTurnClient(turn_udp(heron), "roland", password, local="127.0.0.4") as turn:
        prime(turn)
        answer = answer_to(turn, send_signed(turn))
        assert answer.kind == ALLOCATE_REQUEST | 0x0110, answer
        assert (answer.error, answer.reason) == (401, "Too many failed attempts")

    assert sip_register(heron, "roland", "roland", password) != 200

    assert time.monotonic() < ends, "too slow: the wait was over before the last check"
    # The refusals were the throttle's: the password itself is right.
    time.sleep(max(0.0, ends - time.monotonic()))
    assert b"<success" in asyncio.run(plain_login(heron, "roland", password, source="127.0.0.3"))
