"""The one cache of accounts every protocol checks secrets against.

A login, a REGISTER or a TURN Allocate needs the account's derived secrets,
and a database query per request is what an attacker would make us pay. So
accounts looked up are kept for a while, unknown names too (shorter, so a new
account works soon), at most ``capacity`` of them. Concurrent lookups of one
account share one store query. Every change :meth:`AccountService.announce`
tells (a password, a removal, the admin flag) drops the account at once, and a
lookup that overlapped a change is not kept, since what it read may predate it.

Processes without the announcements (TURN workers) call :meth:`invalidate`
for the changes they hear of.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from heron.accounts.model import Account
from heron.accounts.service import AccountChange, AccountService
from heron.errors import AccountNotFound

__all__ = ["FOUND_SECONDS", "MISSING", "UNKNOWN_SECONDS", "AccountCache", "Missing"]

FOUND_SECONDS = 30.0
"""How long a looked-up account is trusted before asking the store again (a change
announced drops it at once)."""
UNKNOWN_SECONDS = 10.0
"""How long "no such account" is remembered: short, so a new account works soon."""
CAPACITY = 10_000


class Missing:
    """Not in the cache: the store must be asked."""


MISSING = Missing()

_Key = tuple[str, str]


class AccountCache:
    """(local, domain) -> the account, or None for no such account; as the store has it."""

    def __init__(
        self,
        accounts: AccountService,
        *,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = CAPACITY,
    ) -> None:
        """Subscribes to ``accounts``: the changes it announces invalidate at once."""
        self._accounts = accounts
        self._clock = clock
        self._capacity = capacity
        self._entries: OrderedDict[_Key, tuple[Account | None, float]] = OrderedDict()
        self._inflight: dict[_Key, asyncio.Future[Account | None]] = {}
        self._changes = 0
        self.lookups = 0
        """Queries made to the account store."""
        accounts.subscribe(self._changed)

    def cached(self, local: str, domain: str) -> Account | None | Missing:
        """The account as last looked up, None if there is none, :data:`MISSING` if the
        store must be asked. ``local`` and ``domain`` as stored: lower case."""
        entry = self._entries.get((local, domain))
        if entry is not None and entry[1] > self._clock():
            return entry[0]
        return MISSING

    def starts_query(self, local: str, domain: str) -> bool:
        """Whether :meth:`get` would take a new store query (not cached, and no lookup of
        it under way)."""
        return (local, domain) not in self._inflight and self.cached(local, domain) is MISSING

    async def get(self, local: str, domain: str) -> Account | None:
        """The account, from the cache or the store; one query for any number of callers
        at a time. Store errors other than "not found" are raised, and not cached."""
        found = self.cached(local, domain)
        if not isinstance(found, Missing):
            return found
        key = (local, domain)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._query(key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(task)

    def invalidate(self, local: str, domain: str) -> None:
        """The account changed: forget it, and let the next caller query afresh rather
        than share a lookup that may have read the old secrets."""
        self._changes += 1
        key = (local, domain)
        self._entries.pop(key, None)
        self._inflight.pop(key, None)

    def _changed(self, local: str, domain: str, change: AccountChange) -> None:
        self.invalidate(local, domain)

    def _settled(self, key: _Key, task: asyncio.Future[Account | None]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _query(self, key: _Key) -> Account | None:
        self.lookups += 1
        changes = self._changes
        try:
            found: Account | None = await self._accounts.get(*key)
        except AccountNotFound:
            found = None
        if changes == self._changes:
            seconds = FOUND_SECONDS if found is not None else UNKNOWN_SECONDS
            self._entries.pop(key, None)
            self._entries[key] = (found, self._clock() + seconds)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return found
