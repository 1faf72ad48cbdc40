"""Guessing an account's password over XMPP SASL (issue 10, items 3 and 11).

An attacker spreads wrong passwords for one account over several source
addresses. The shared guess throttle makes each further guess wait, whatever
address it comes from, so the right password found from yet another address is
refused while the wait lasts; the device that logged in before keeps logging
in. A burst of simultaneous wrong PLAIN logins goes through the bounded
Argon2 pool, so it cannot take heron's memory.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from itertools import cycle

from tests.security.support import USERS, Target
from tests.security.xmpp_client import connected, peak_memory, plain, plain_login

SOURCES = [f"127.0.0.{n}" for n in range(2, 8)]
"""The attacker's addresses; 127.0.0.1 is the account owner's known device."""
COUNTED = 9
"""Wrong guesses that count: 5 free (limits.account_guesses), then each sets a wait of 1, 2,
4, 8 s; the ninth leaves 8 s for the next attempts."""


async def test_guesses_from_many_addresses_wait_but_the_known_device_logs_in(
    heron: Target,
) -> None:
    right = USERS["roland"]
    assert b"<success" in await plain_login(heron, "roland", right, source="127.0.0.1")

    counted = refused = 0
    for attempt, source in enumerate(cycle(SOURCES)):
        if counted == COUNTED:
            break
        answer = await plain_login(heron, "roland", f"guess-{attempt}", source=source)
        if b"<not-authorized/>" in answer:
            counted += 1
        else:
            # Refused unchecked while a wait is due: the attacker learns nothing of the guess.
            assert b"<temporary-auth-failure/>" in answer, answer
            refused += 1
            await asyncio.sleep(0.2)  # the attacker's own pace while the wait lasts
    assert refused > 0

    # The right password, from an address that never failed: still refused during the wait.
    answer = await plain_login(heron, "roland", right, source="127.0.0.9")
    assert b"<temporary-auth-failure/>" in answer, answer
    # So is SCRAM: the wait is per account, over every mechanism.
    async with connected(heron, "127.0.0.10") as connection:
        await connection.open_stream()
        name, answer = await connection.sasl(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
            "biwsbj1yb2xhbmQscj1hYmNkZWY=</auth>"  # n,,n=roland,r=abcdef
        )
        assert name == "failure" and b"<temporary-auth-failure/>" in answer, answer

    # The owner's device, on the network that proved the password before, is not slowed.
    assert b"<success" in await plain_login(heron, "roland", right, source="127.0.0.1")
    assert "refused unchecked: guesses must wait" in heron.log()


async def test_a_burst_of_wrong_plain_logins_does_not_take_the_memory(heron: Target) -> None:
    pid = heron.heron.process.pid
    # One wrong login first, so the peak already holds one Argon2 check (64 MiB).
    assert b"<not-authorized/>" in await plain_login(heron, "roland", "warm-up")
    before = peak_memory(pid)

    # Twelve wrong PLAIN logins at once, over three accounts and several addresses so that
    # no guess waits: each one reaches the password check.
    users = ["roland", "admin", "mallory"] * 4
    sources = cycle(SOURCES)
    async with AsyncExitStack() as stack:
        connections = await asyncio.gather(
            *(stack.enter_async_context(connected(heron, next(sources))) for _ in users)
        )
        await asyncio.gather(*(c.open_stream() for c in connections))
        answers = await asyncio.gather(
            *(c.sasl(plain(user, "wrong")) for c, user in zip(connections, users, strict=True))
        )
    assert all(name == "failure" for name, _ in answers), answers

    grown = peak_memory(pid) - before
    # Unbounded, the checks ran side by side (about 64 MiB each): six at once took 380 MB.
    assert grown < 3 * 64 * 2**20, f"peak memory grew by {grown / 2**20:.0f} MiB"
