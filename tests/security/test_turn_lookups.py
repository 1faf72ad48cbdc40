"""Issue 10 item 8: unauthenticated STUN must not cost a database query each.

A stranger takes one nonce, then floods Allocate requests signed for random
names that do not exist, from one address. Each used to make heron query the
account store; now only a bounded number do (the guess throttle stops the source
after its free failures, and few may wait for a lookup at a time), and a real user
is still served.
"""

from __future__ import annotations

import secrets

from tests.security.support import USERS, Target
from tests.security.turn_wire import (
    ALLOCATE_REQUEST,
    SUCCESS,
    RawTurnClient,
    allocate,
    counters,
    prime,
    send_signed,
    turn_udp,
)

FLOOD = 1000
ATTACKER = "127.0.0.66"
LOOKUP_BOUND = 60
"""20 free failures for a source, 16 requests waiting at a time, a few more as waits lapse."""


def test_a_flood_of_unknown_usernames_makes_few_lookups(heron: Target) -> None:
    before = counters(heron)["key_lookups"]
    with RawTurnClient(turn_udp(heron), "nobody", "guess", local=ATTACKER) as attacker:
        prime(attacker)
        for _ in range(FLOOD):
            attacker.username = "u" + secrets.token_hex(8)
            send_signed(attacker)
        with RawTurnClient(turn_udp(heron), "roland", USERS["roland"]) as user:
            answer = allocate(user)
            assert answer.kind == ALLOCATE_REQUEST | SUCCESS, answer
        # The attacker's last request is answered once everything before it was handled.
        attacker.username = "u" + secrets.token_hex(8)
        last = attacker.request(ALLOCATE_REQUEST)
        assert last.error == 401, last

    lookups = counters(heron)["key_lookups"] - before
    assert lookups <= LOOKUP_BOUND, f"{lookups} account lookups for {FLOOD} strangers' requests"
