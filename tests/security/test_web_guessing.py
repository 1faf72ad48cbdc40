"""Password guessing over the web login, spread over source addresses and spellings.

Seen on the old code: the web counted failures per spelling of the address
(``roland@DOM.`` apart from ``roland@DOM``) and per source address, with its own
lockout apart from SIP's, XMPP's and TURN's; an attacker who spread guesses over
addresses and spellings was never held, and the right password from a fresh address
was accepted. Now every guess counts against the one account in the throttle all
protocols share, and while the account's wait is due even the right password is
refused, unchecked, with 429 and Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.support import DOMAIN, USERS, Target, target
from tests.security.web_support import Browser

SPELLINGS = (f"roland@{DOMAIN}", f"ROLAND@{DOMAIN}.", f"Roland@{DOMAIN.upper()}")


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Target]:
    """The defaults but one free guess per account, so that the test reaches a wait of
    several seconds after a few guesses (1 s, then doubling: honouring each Retry-After)."""
    with target(tmp_path / "heron", {"limits": {"account_guesses": 1}}) as running:
        yield running


def test_guesses_from_many_addresses_and_spellings_hold_even_the_right_password(
    guarded: Target,
) -> None:
    counted = 0
    sources = (f"127.0.0.{n}" for n in range(2, 200))
    while counted < 5:  # waits of 1, 2, 4 and then 8 seconds
        answer = Browser(guarded, next(sources)).login(SPELLINGS[counted % 3], "guess")
        if answer.status == 429:
            time.sleep(int(answer.headers["Retry-After"]))  # a patient attacker
            continue
        assert answer.status == 403, answer.text
        counted += 1
    right = Browser(guarded, next(sources)).login(SPELLINGS[0], USERS["roland"])
    assert right.status == 429, right.text
    assert 1 <= int(right.headers["Retry-After"]) <= 60
    assert "heron_session" not in (right.headers["Set-Cookie"] or "")
    assert "Too many attempts" in right.text
    assert "further guesses wait" in guarded.log()
    # The wait is the account's, not everyone's: another account logs in at once.
    assert Browser(guarded, next(sources)).login(f"admin@{DOMAIN}", USERS["admin"]).status == 302


def test_a_wrong_spelling_of_an_address_is_the_same_account(heron: Target) -> None:
    """The login itself takes any spelling (the account store's is one)."""
    for n, spelling in enumerate(SPELLINGS):
        answer = Browser(heron, f"127.0.1.{n + 1}").login(spelling, USERS["roland"])
        assert answer.status == 302, (spelling, answer.text)
