"""Argon2 password checks with bounded memory and no stall of the event loop.

An Argon2id verification takes tens of milliseconds and 64 MiB. Run on the
event loop, it stalls every call and chat for that long; run unbounded, eight
concurrent wrong-password logins took 400 MB. So web logins and SASL PLAIN
verify through one :class:`PasswordVerifier`: a few threads (argon2-cffi
releases the GIL), a bounded queue behind them, and an answer of "wrong" for
a check that finds the queue full, which the caller counts as a failure.
Unknown accounts, and accounts imported without an Argon2 hash, are checked
against a dummy hash of the same cost too, so the time taken does not tell
which accounts exist or were imported.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from secrets import token_urlsafe

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from heron.accounts.saslprep import saslprep
from heron.accounts.secrets import Secret, Secrets, verify_password

__all__ = ["PasswordVerifier"]

log = logging.getLogger(__name__)


@cache
def _dummy_hash() -> str:
    """An Argon2id hash with the parameters real accounts get, of nothing anyone knows."""
    return PasswordHasher().hash(token_urlsafe(16))


def _verify_unknown(password: str) -> bool:
    try:
        PasswordHasher().verify(_dummy_hash(), saslprep(password))
    except (VerificationError, InvalidHashError, ValueError):
        pass
    return False


def _verify_imported(secrets: Secrets, password: str) -> bool:
    """An account imported without an Argon2 hash is checked against its SCRAM-SHA-1 keys
    (milliseconds); the dummy Argon2 check first makes it cost what every other does."""
    _verify_unknown(password)
    return verify_password(secrets, password)


class PasswordVerifier:
    """At most ``concurrency`` Argon2 checks at once, ``queue`` more waiting."""

    def __init__(self, concurrency: int = 2, queue: int = 32) -> None:
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2")
        self._limit = concurrency + queue
        self._pending = 0
        self.overflowed = 0

    async def verify(self, secrets: Secrets | None, password: str) -> bool:
        """True if ``password`` is the account's; ``secrets`` None for an unknown account.

        False at once, without hashing, when the queue is full.
        """
        if self._pending >= self._limit:
            self.overflowed += 1
            if self.overflowed == 1 or self.overflowed % 100 == 0:
                log.warning(
                    "password checks queue full: %d login(s) refused unchecked so far",
                    self.overflowed,
                )
            return False
        self._pending += 1
        loop = asyncio.get_running_loop()
        try:
            if secrets is None:
                return await loop.run_in_executor(self._executor, _verify_unknown, password)
            if Secret.PASSWORD in secrets.missing:
                return await loop.run_in_executor(
                    self._executor, _verify_imported, secrets, password
                )
            return await loop.run_in_executor(self._executor, verify_password, secrets, password)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
