"""Telling XMPP accounts that exist from names that do not (issue 10, item 6).

A real account has one SCRAM salt for every hash, the same on every attempt
and for every spelling of its name. An unknown name must look the same: a
stable fake salt, one for all hashes, the same iteration count; PLAIN must
answer it as it answers a wrong password, after the same Argon2 work.
"""

from __future__ import annotations

import base64

from tests.security.support import Target
from tests.security.xmpp_client import peak_memory, plain_login, scram_server_first

MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512")


async def _offers(heron: Target, spellings: tuple[str, ...]) -> list[dict[str, str]]:
    """The server-first messages for each spelling of a name, each mechanism, twice."""
    return [
        await scram_server_first(heron, name, mechanism)
        for name in spellings
        for mechanism in MECHANISMS
        for _ in range(2)
    ]


def _shape(offers: list[dict[str, str]]) -> set[tuple[object, ...]]:
    """What an observer can compare between accounts: distinct salts, their length, the
    iteration counts, the attributes and the nonce length."""
    return {
        (
            len({offer["s"] for offer in offers}),
            len(base64.b64decode(offer["s"])),
            offer["i"],
            tuple(offer),
            len(offer["r"]),
        )
        for offer in offers
    }


async def test_scram_offers_for_known_and_unknown_names_look_alike(heron: Target) -> None:
    known = await _offers(heron, ("roland", "Roland"))
    unknown = await _offers(heron, ("nobody", "NoBody"))
    # A real account: one salt over hashes, attempts and spellings.
    assert len({offer["s"] for offer in known}) == 1
    # An unknown name behaves the same, and nothing else in the offer differs.
    assert len({offer["s"] for offer in unknown}) == 1
    assert _shape(known) == _shape(unknown)
    assert known[0]["s"] != unknown[0]["s"]


async def test_plain_answers_unknown_names_as_wrong_passwords_after_the_same_work(
    heron: Target,
) -> None:
    # The work shows in memory: an Argon2 check takes 64 MiB. heron has run none yet, so its
    # peak grows by that much only if the unknown name's password is checked too.
    pid = heron.heron.process.pid
    before = peak_memory(pid)
    unknown = await plain_login(heron, "nobody", "not-the-password")
    assert peak_memory(pid) - before > 48 * 2**20, "no password check for an unknown name"
    known = await plain_login(heron, "roland", "not-the-password")
    assert known == unknown
    assert b"<not-authorized/>" in known
