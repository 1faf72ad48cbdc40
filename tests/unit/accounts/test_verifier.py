"""PasswordVerifier: Argon2 off the event loop, a bounded number at once."""

from __future__ import annotations

import asyncio

from heron.accounts import (
    Identity,
    ScramHash,
    derive_scram_keys,
    derive_secrets,
    imported_secrets,
    saslprep,
)
from heron.accounts.verifier import PasswordVerifier

SECRETS = derive_secrets(
    Identity("roland", "falcot.com", "roland", "falcot.com"),
    "right",
    salt=b"s" * 16,
    iterations=4096,
)


async def test_the_right_password_passes_and_a_wrong_one_fails() -> None:
    verifier = PasswordVerifier()
    try:
        assert await verifier.verify(SECRETS, "right")
        assert not await verifier.verify(SECRETS, "wrong")
        assert not await verifier.verify(None, "right")
    finally:
        verifier.close()


async def test_a_burst_beyond_the_queue_is_refused_unchecked() -> None:
    verifier = PasswordVerifier(concurrency=1, queue=2)
    try:
        results = await asyncio.gather(*(verifier.verify(SECRETS, "right") for _ in range(6)))
    finally:
        verifier.close()
    assert results.count(True) == 3
    assert verifier.overflowed == 3


async def test_the_event_loop_keeps_turning_during_a_check() -> None:
    verifier = PasswordVerifier()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    try:
        assert await verifier.verify(SECRETS, "right")
    finally:
        ticker.cancel()
        verifier.close()
    assert ticks > 1


async def test_an_account_imported_with_scram_keys_only_is_checked_against_them() -> None:
    identity = Identity("roland", "falcot.com", "roland", "falcot.com")
    keys = derive_scram_keys(saslprep("old"), b"prosody-salt", 4096, ScramHash.SHA1)
    imported = imported_secrets(identity, scram_sha1=keys, salt=b"s", iterations=1)
    verifier = PasswordVerifier()
    try:
        assert await verifier.verify(imported, "old")
        assert not await verifier.verify(imported, "wrong")
    finally:
        verifier.close()
