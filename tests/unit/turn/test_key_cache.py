"""TURN's keys from the shared account cache: one store query per name at a time, unknown
names remembered briefly, an account change forgets the account (issue 10 item 8)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from heron.accounts import MISSING, AccountCache, AccountListener
from heron.accounts.cache import CAPACITY
from heron.accounts.cache import FOUND_SECONDS as KEY_CACHE_SECONDS
from heron.accounts.cache import UNKNOWN_SECONDS as UNKNOWN_CACHE_SECONDS
from heron.credentials import TurnSecret
from heron.errors import AccountNotFound
from heron.turn.adapters.keys import TurnKeys

REALM = "falcot.com"


class FakeAccounts:
    """The account service as the cache sees it: roland exists; every query is counted,
    and answers wait for ``release`` so concurrent lookups can be seen."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str]] = []
        self.release = asyncio.Event()

    def subscribe(self, listener: AccountListener) -> None:
        pass

    async def get(self, local: str, domain: str) -> Any:
        self.queries.append((local, domain))
        await self.release.wait()
        if local != "roland":
            raise AccountNotFound(local)
        keys = SimpleNamespace(turn_realm=REALM, turn_key_md5=b"m" * 16, turn_key_sha256=b"s" * 32)
        return SimpleNamespace(secrets=keys)


def keys_with_clock(capacity: int = CAPACITY) -> tuple[TurnKeys, FakeAccounts, list[float]]:
    accounts, now = FakeAccounts(), [1_700_000_000.0]
    cache = AccountCache(accounts, clock=lambda: now[0], capacity=capacity)  # type: ignore[arg-type]
    keys = TurnKeys(cache, "falcot.com", REALM, TurnSecret(b"0123456789abcdef0123"))
    return keys, accounts, now


async def test_concurrent_lookups_of_one_name_make_one_query() -> None:
    keys, accounts, _ = keys_with_clock()
    waiting = [asyncio.ensure_future(keys.fetch("roland")) for _ in range(5)]
    await asyncio.sleep(0)
    accounts.release.set()

    found = await asyncio.gather(*waiting)

    assert accounts.queries == [("roland", "falcot.com")]
    assert keys.lookups == 1
    assert all(f is not None and f.key_md5 == b"m" * 16 for f in found)


async def test_unknown_names_are_remembered_briefly() -> None:
    keys, accounts, now = keys_with_clock()
    accounts.release.set()
    assert await keys.fetch("nobody") is None

    assert keys.cached("nobody") is None
    now[0] += UNKNOWN_CACHE_SECONDS + 1
    assert keys.cached("nobody") is MISSING


async def test_known_names_are_kept_longer_and_forgotten_when_the_account_changes() -> None:
    keys, accounts, now = keys_with_clock()
    accounts.release.set()
    await keys.fetch("roland")
    await keys.fetch("Roland@falcot.com")
    now[0] += UNKNOWN_CACHE_SECONDS + 1
    assert keys.cached("roland") is not MISSING
    now[0] += KEY_CACHE_SECONDS
    assert keys.cached("roland") is MISSING
    await keys.fetch("roland")

    keys._accounts.invalidate("roland", "falcot.com")  # noqa: SLF001 (as a worker hears it)

    assert keys.cached("roland") is MISSING
    assert keys.cached("Roland@falcot.com") is MISSING


def test_the_cache_is_bounded() -> None:
    async def fill() -> TurnKeys:
        keys, accounts, _ = keys_with_clock(capacity=3)
        accounts.release.set()
        for n in range(10):
            await keys.fetch(f"user{n}")
        return keys

    keys = asyncio.run(fill())
    assert [keys.cached(f"user{n}") is MISSING for n in range(10)] == [True] * 7 + [False] * 3


async def test_only_a_name_neither_cached_nor_being_looked_up_starts_a_query() -> None:
    keys, accounts, _ = keys_with_clock()
    assert keys.starts_query("roland")
    pending = asyncio.ensure_future(keys.fetch("roland"))
    await asyncio.sleep(0)
    assert not keys.starts_query("roland")  # shared with the lookup under way
    accounts.release.set()
    await pending
    assert not keys.starts_query("roland")  # cached
    assert not keys.starts_query("1700000000:roland")  # REST names need no query
