"""The one account cache SIP, XMPP and TURN share (issue 17): kept for a while, unknown
names for less, bounded, one store query per account at a time, and forgotten the moment
the account service announces a change."""

from __future__ import annotations

import asyncio

import pytest

from heron.accounts import (
    MISSING,
    Account,
    AccountCache,
    AccountChange,
    AccountPolicy,
    AccountService,
)
from heron.accounts.cache import FOUND_SECONDS, UNKNOWN_SECONDS
from heron.errors import HeronError
from heron.store.memory import MemoryAccountStore

DOMAIN = "falcot.com"
POLICY = AccountPolicy(DOMAIN, DOMAIN, DOMAIN, (DOMAIN,), frozenset())


class GatedStore(MemoryAccountStore):
    """Counts reads; each waits for ``release`` so that overlapping lookups can be seen."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.broken = False

    async def get(self, local: str, domain: str) -> Account | None:
        self.reads.append((local, domain))
        await self.release.wait()
        if self.broken:
            raise HeronError("database unavailable")
        return await super().get(local, domain)


async def setup(
    capacity: int = 100,
) -> tuple[AccountCache, AccountService, GatedStore, list[float]]:
    store, now = GatedStore(), [1000.0]
    accounts = AccountService(store, POLICY, iterations=4096)
    await accounts.add("roland", DOMAIN, "falcot-roland")
    store.reads.clear()
    cache = AccountCache(accounts, clock=lambda: now[0], capacity=capacity)
    return cache, accounts, store, now


async def test_a_found_account_is_kept_for_its_ttl() -> None:
    cache, _, store, now = await setup()
    assert cache.cached("roland", DOMAIN) is MISSING
    found = await cache.get("roland", DOMAIN)
    assert found is not None and found.local == "roland"

    now[0] += FOUND_SECONDS - 1
    assert cache.cached("roland", DOMAIN) is found
    assert await cache.get("roland", DOMAIN) is found
    now[0] += 1
    assert cache.cached("roland", DOMAIN) is MISSING
    assert store.reads == [("roland", DOMAIN)]
    assert cache.lookups == 1


async def test_an_unknown_name_is_remembered_for_less() -> None:
    cache, _, store, now = await setup()
    assert await cache.get("nobody", DOMAIN) is None
    assert cache.cached("nobody", DOMAIN) is None
    assert not cache.starts_query("nobody", DOMAIN)

    now[0] += UNKNOWN_SECONDS
    assert cache.cached("nobody", DOMAIN) is MISSING
    assert UNKNOWN_SECONDS < FOUND_SECONDS


async def test_the_cache_is_bounded_the_oldest_going_first() -> None:
    cache, _, _, _ = await setup(capacity=3)
    for n in range(10):
        await cache.get(f"user{n}", DOMAIN)
    assert [cache.cached(f"user{n}", DOMAIN) is MISSING for n in range(10)] == [True] * 7 + [
        False
    ] * 3


async def test_concurrent_lookups_of_one_account_share_one_store_query() -> None:
    cache, _, store, _ = await setup()
    store.release.clear()
    assert cache.starts_query("roland", DOMAIN)
    waiting = [asyncio.ensure_future(cache.get("roland", DOMAIN)) for _ in range(5)]
    await asyncio.sleep(0)
    assert not cache.starts_query("roland", DOMAIN)
    store.release.set()

    found = await asyncio.gather(*waiting)

    assert store.reads == [("roland", DOMAIN)]
    assert cache.lookups == 1
    assert all(account is found[0] for account in found) and found[0] is not None


@pytest.mark.parametrize("change", ["passwd", "remove", "admin"])
async def test_an_announced_change_drops_the_account_at_once(change: str) -> None:
    cache, accounts, _, _ = await setup()
    before = await cache.get("roland", DOMAIN)
    assert before is not None

    if change == "passwd":
        await accounts.change_password("roland", DOMAIN, "new-one")
    elif change == "remove":
        await accounts.remove("roland", DOMAIN)
    else:
        await accounts.set_admin("roland", DOMAIN, True)

    assert cache.cached("roland", DOMAIN) is MISSING
    after = await cache.get("roland", DOMAIN)
    if change == "remove":
        assert after is None
    else:
        assert after is not None and after != before


async def test_a_lookup_that_overlapped_a_change_is_not_kept_nor_shared() -> None:
    cache, accounts, store, _ = await setup()
    store.release.clear()
    old = asyncio.ensure_future(cache.get("roland", DOMAIN))
    await asyncio.sleep(0)
    accounts.announce("roland", DOMAIN, AccountChange.PASSWORD)  # another process changed it

    assert cache.starts_query("roland", DOMAIN)  # the next caller asks afresh
    new = asyncio.ensure_future(cache.get("roland", DOMAIN))
    await asyncio.sleep(0)
    store.release.set()
    await asyncio.gather(old, new)

    assert store.reads == [("roland", DOMAIN)] * 2
    assert cache.cached("roland", DOMAIN) is not MISSING  # the fresh lookup is kept


async def test_store_errors_reach_every_caller_and_are_not_cached() -> None:
    cache, _, store, _ = await setup()
    store.broken = True
    with pytest.raises(HeronError):
        await cache.get("roland", DOMAIN)
    assert cache.cached("roland", DOMAIN) is MISSING
    store.broken = False
    assert await cache.get("roland", DOMAIN) is not None
