"""State in Redis (``redis.url``): bindings round-trip, guesses and nonce counts follow
the rules of their in-memory counterparts over every process that shares the prefix.

Times are arguments, as in every sans-IO rule of heron: nothing here waits on a clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from heron.cluster import Shared, SharedGuesses, SharedLocation
from heron.config import Config, LimitsSettings, RedisSettings
from heron.errors import StoreError
from heron.sip.bindings import BindingCache
from heron.sip.transports.flows import FlowTable
from heron.sip.transports.sharing import Sharing
from heron.store.memory import MemoryLocationStore
from tests.store.test_location_store import FULL, TLS, binding

pytestmark = pytest.mark.database

NOW = 1_767_323_045.25
ACCOUNT = "roland@falcot.com"


@pytest.fixture
async def shared() -> AsyncIterator[Shared]:
    """Redis under a prefix of this test's own, emptied after."""
    prefix = f"heron-test-{uuid.uuid4().hex}:"
    shared = await Shared.open(RedisSettings(url="redis://127.0.0.1:6379/0", prefix=prefix))
    try:
        yield shared
    finally:
        keys = [key async for key in shared.client.scan_iter(match=f"{prefix}*")]
        if keys:
            await shared.client.delete(*keys)
        await shared.close()


async def test_a_binding_set_round_trips_through_redis(shared: Shared) -> None:
    location = SharedLocation(shared)
    tls = binding("sips:roland@[2001:db8::7]:51234", received=TLS)
    await location.put(FULL.aor, [FULL, tls])

    assert await location.get(FULL.aor) == [FULL, tls]
    assert location.changed(location.change(FULL.aor, [FULL])) == (FULL.aor, [FULL])
    await location.put(FULL.aor, [])
    assert await location.all() == []


async def test_fill_keeps_the_sets_another_node_wrote(shared: Shared) -> None:
    location = SharedLocation(shared)
    newer = binding("sip:roland@192.0.2.9", cseq=7)
    await location.put(FULL.aor, [newer])
    await location.fill([FULL, binding("sip:jean@192.0.2.5", aor="jean@falcot.com")])

    assert await location.get(FULL.aor) == [newer]
    assert len(await location.get("jean@falcot.com")) == 1


async def test_an_announced_change_that_is_not_heron_s_is_refused(shared: Shared) -> None:
    with pytest.raises(StoreError):
        SharedLocation.changed(b'{"aor": "x", "set": "[{\\"aor\\": 1}]"}')
    with pytest.raises(StoreError):
        SharedLocation.changed(b"\xff" * 10)


async def test_wrong_passwords_start_a_wait_after_the_free_ones(shared: Shared) -> None:
    limits = LimitsSettings(account_guesses=10, source_guesses=100)
    first, second = SharedGuesses(shared, limits), SharedGuesses(shared, limits)
    for attempt in range(10):
        await (first if attempt % 2 else second).failure(ACCOUNT, "192.0.2.1", NOW + attempt)
        assert await first.wait(ACCOUNT, "192.0.2.77", NOW + attempt) == 0.0

    await second.failure(ACCOUNT, "192.0.2.1", NOW + 10)

    assert await first.wait(ACCOUNT, "192.0.2.77", NOW + 10) == 1.0
    assert await second.wait(ACCOUNT, "198.51.100.3", NOW + 10.5) == 0.5
    assert await first.wait(ACCOUNT, "198.51.100.3", NOW + 11) == 0.0


async def test_a_known_device_is_exempt_from_the_account_s_wait(shared: Shared) -> None:
    guesses = SharedGuesses(shared, LimitsSettings(account_guesses=1))
    await guesses.success(ACCOUNT, "203.0.113.4", NOW)
    for attempt in range(3):
        await guesses.failure(ACCOUNT, "192.0.2.1", NOW + attempt)

    assert await guesses.wait(ACCOUNT, "203.0.113.4", NOW + 2) == 0.0
    assert await guesses.wait(ACCOUNT, "192.0.2.99", NOW + 2) > 0
    await guesses.forget_account(ACCOUNT)
    assert await guesses.wait(ACCOUNT, "203.0.113.4", NOW + 2) == 0.0


async def test_rfc7616_a_nonce_count_is_accepted_once_over_every_process(
    shared: Shared,
) -> None:
    limits = LimitsSettings()
    first, second = SharedGuesses(shared, limits), SharedGuesses(shared, limits)

    assert await first.advance("nonce-1", 1, 600)
    assert not await second.advance("nonce-1", 1, 600)
    assert await second.advance("nonce-1", 2, 600)
    assert await first.advance("nonce-2", 1, 600)


async def test_an_unreachable_redis_is_one_line_naming_it() -> None:
    with pytest.raises(StoreError, match=r"^redis.url redis://127.0.0.1:1/0: "):
        await Shared.open(RedisSettings(url="redis://127.0.0.1:1/0"))


async def test_junk_on_the_bus_is_ignored_and_a_change_after_it_applied(
    shared: Shared, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever publishes on heron's channels is trusted (Redis is), but a malformed message
    (a bad header, a bad set, SIP that does not parse) is dropped, never a crash."""
    config = Config(redis={"url": "redis://127.0.0.1:6379/0", "prefix": shared.prefix})
    ours, theirs = Sharing(shared, config, "n1", 0), Sharing(shared, config, "n2", 0)
    cache = BindingCache(MemoryLocationStore())
    await ours.start(lambda event, source: None, FlowTable(), cache, lambda source, until: None)
    everyone, direct = shared.key("sip", "everyone"), ours.bus.channel(ours.me)
    try:
        for junk in (b"", b"\xff\n", b'{"k": "set", "from": "x"}\n{', b"[1]\nSIP", b"{}\n"):
            await shared.client.publish(everyone, junk)
            await shared.client.publish(direct, junk)
        await shared.client.publish(direct, b'{"k": "in"}\nSIP/2.0 200 OK\r\n\r\n')
        await shared.client.publish(direct, b'{"k": "out", "t": "tcp"}\nINVITE x SIP/2.0\r\n')
        await shared.client.publish(direct, b'{"k":"in","t":1,"h":2,"p":"x"}\nSIP/2.0 200 OK')
        await theirs.put(FULL.aor, [FULL])  # announced, as the other process's change
        async with asyncio.timeout(10):
            while cache.get(FULL.aor) != [FULL]:
                await asyncio.sleep(0.01)
    finally:
        await ours.stop()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
