"""State in Redis (``redis.url``): bindings round-trip, guesses follow the rules of
their in-memory counterparts over every process that shares the prefix.

Times are arguments, as in every sans-IO rule of heron: nothing here waits on a clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from heron.cluster import SetWriter, Shared, SharedGuesses, SharedLocation
from heron.cluster.guesses import Standing
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
REDIS = "redis://127.0.0.1:6379/0"


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


async def test_sets_put_in_one_turn_share_a_batch_and_a_refresh_waits_for_one(
    shared: Shared,
) -> None:
    """Two REGISTERs' sets in one turn of the loop are one pipeline, written before
    either put returns; a refresh returns at once and is written with the next batch
    (here the one :meth:`SetWriter.stop` writes)."""
    location = SharedLocation(shared)
    writer = SetWriter(shared, location, lambda aor, bindings: aor.encode())
    other = binding("sip:jacques@192.0.2.9", aor="jacques@falcot.com")
    try:
        await asyncio.gather(
            writer.put(FULL.aor, [FULL], due=True), writer.put(other.aor, [other], due=True)
        )
        assert writer.batches == 1
        assert await location.get(FULL.aor) == [FULL]
        assert await location.get(other.aor) == [other]

        refreshed = replace(FULL, expires_at=FULL.expires_at + 60)
        await writer.put(FULL.aor, [refreshed], due=False)
        assert await location.get(FULL.aor) == [FULL]
    finally:
        await writer.stop()
    assert await location.get(FULL.aor) == [refreshed]
    assert writer.batches == 2


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


async def test_a_login_writes_only_what_it_changes(shared: Shared) -> None:
    """A phone re-registering from a known network with no failures on its account
    leaves Redis as it was; one with failures recorded still clears them."""
    guesses = SharedGuesses(shared, LimitsSettings(account_guesses=5))
    known = shared.key("guess", "known", ACCOUNT)
    await guesses.success(ACCOUNT, "203.0.113.4", NOW)
    marked = await shared.client.hgetall(known)

    again = await guesses.standing(ACCOUNT, "203.0.113.4", NOW + 60)
    await guesses.success(ACCOUNT, "203.0.113.4", NOW + 60, again)
    assert not again.counted
    assert await shared.client.hgetall(known) == marked

    await guesses.failure(ACCOUNT, "192.0.2.1", NOW + 61)
    counted = await guesses.standing(ACCOUNT, "203.0.113.4", NOW + 62)
    assert counted.counted
    await guesses.success(ACCOUNT, "203.0.113.4", NOW + 62, counted)
    assert not await shared.client.exists(shared.key("guess", "account", ACCOUNT))


async def test_a_redis_that_does_not_answer_is_an_outage_not_a_guess() -> None:
    """Redis gone or overloaded: the attempt is neither checked nor counted (the caller
    answers with a fresh challenge)."""
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    guesses = SharedGuesses(Shared(client, "heron-test-unreachable:"), LimitsSettings())
    try:
        standing = await guesses.standing(ACCOUNT, "192.0.2.1", NOW)
    finally:
        await client.aclose()

    assert standing.outage and standing.wait == 0.0
    assert guesses.outages == 1


async def commands_of(shared: Shared, action: Awaitable[Standing]) -> tuple[Standing, int]:
    """What ``action`` gives, and how many commands on this test's keys Redis ran for it:
    MONITOR reports them in the order Redis runs them, up to a marker sent after it."""
    marker = shared.key("marker", uuid.uuid4().hex)
    watcher = Redis.from_url(REDIS, decode_responses=True)
    try:
        async with watcher.monitor() as monitor:
            result = await action
            await shared.client.get(marker)
            count = 0
            while marker not in (command := await monitor.next_command())["command"]:
                count += shared.prefix in command["command"]
    finally:
        await watcher.aclose()
    return result, count


async def test_a_clean_standing_is_reused_for_a_second_and_a_failure_drops_it(
    shared: Shared,
) -> None:
    guesses = SharedGuesses(shared, LimitsSettings(account_guesses=5))
    phone = "203.0.113.4"
    await guesses.success(ACCOUNT, phone, NOW)

    read, commands = await commands_of(shared, guesses.standing(ACCOUNT, phone, NOW + 60))
    assert (read.wait, read.counted, commands) == (0.0, False, 3)
    reused, commands = await commands_of(shared, guesses.standing(ACCOUNT, phone, NOW + 60.9))
    assert (reused, commands) == (read, 0)
    _, commands = await commands_of(shared, guesses.standing(ACCOUNT, phone, NOW + 61))
    assert commands == 3  # the window is over

    await guesses.failure(ACCOUNT, phone, NOW + 61.5)
    after, commands = await commands_of(shared, guesses.standing(ACCOUNT, phone, NOW + 61.6))
    assert (after.counted, commands) == (True, 3)
    again, commands = await commands_of(shared, guesses.standing(ACCOUNT, phone, NOW + 61.7))
    assert (again.counted, commands) == (True, 3)  # a counted standing is never reused


async def test_only_a_known_device_s_standing_is_reused(shared: Shared) -> None:
    guesses = SharedGuesses(shared, LimitsSettings())
    await guesses.standing(ACCOUNT, "192.0.2.1", NOW)
    _, commands = await commands_of(shared, guesses.standing(ACCOUNT, "192.0.2.1", NOW + 0.1))
    assert commands == 3


async def test_a_lockout_elsewhere_reaches_a_reused_standing_within_the_window(
    shared: Shared,
) -> None:
    """Another process's failures are not seen while the clean standing is reused, and
    are once the window is over (a known device is exempt from the account's wait, but
    not from its source's)."""
    limits = LimitsSettings(account_guesses=1, source_guesses=1)
    here, elsewhere = SharedGuesses(shared, limits), SharedGuesses(shared, limits)
    phone = "203.0.113.4"
    await here.success(ACCOUNT, phone, NOW)
    assert not (await here.standing(ACCOUNT, phone, NOW + 60)).counted
    for attempt in range(3):
        await elsewhere.failure(ACCOUNT, phone, NOW + 60 + attempt / 10)

    assert not (await here.standing(ACCOUNT, phone, NOW + 60.5)).counted
    late = await here.standing(ACCOUNT, phone, NOW + 61)
    assert late.counted and late.wait > 0


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
        await theirs.stop()  # its writer, which its put started
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
