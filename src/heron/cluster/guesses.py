"""The guess throttle in Redis, for SIP over workers and nodes.

:class:`heron.guesses.GuessThrottle` counts in one process; a guesser spreading its
tries over source ports (SO_REUSEPORT hands them to different workers) or over nodes
would meet a fresh count at each. Here the same rules run as Lua scripts on keys every
process shares: a failure counts once wherever it lands, and a wait holds whichever
process answers. Nonce counts need no Redis: only the process that issued a nonce
checks it (:mod:`heron.sip.digest`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from redis.exceptions import RedisError

from heron.cluster.redis import Shared
from heron.config import LimitsSettings
from heron.guards import SOURCE_CEILING_FACTOR
from heron.guesses import BASE_WAIT, FORGET, REMEMBER, network_key

__all__ = ["SharedGuesses", "Standing"]

log = logging.getLogger(__name__)

_FAIL = """
local now, free, base, ceiling, forget = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local got = redis.call('HMGET', KEYS[1], 'n', 'last', 'until')
local n, last, wait_until = tonumber(got[1]), tonumber(got[2]), tonumber(got[3])
if n == nil or (now - last >= forget and wait_until <= now) then
  n, wait_until = 0, now
end
if wait_until <= now then
  n = n + 1
  local over = n - free
  if over > 0 then
    wait_until = now + math.min(ceiling, base * 2 ^ math.min(over - 1, 32))
  end
end
redis.call('HSET', KEYS[1], 'n', n, 'last', string.format('%.6f', now),
  'until', string.format('%.6f', wait_until))
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(forget, wait_until - now)))
return tostring(wait_until)
"""
"""One failure for a key: ``heron.guesses._Table.fail``'s rule, atomically."""

KNOWN_REFRESH = 86_400.0
"""A known device's mark is rewritten by a login only when it has aged this long: a
phone re-registering every minute proves nothing new, and each write is a round trip."""

CLEAN_REUSE = 1.0
"""Seconds a clean :class:`Standing` is reused without reading Redis again."""


@dataclass(frozen=True, slots=True)
class Standing:
    """What Redis holds for one login attempt, read once before checking it."""

    wait: float
    """Seconds the attempt must wait (0: check it now)."""
    outage: bool = False
    """Redis could not be read: the attempt can be neither checked nor counted."""
    counted: bool = True
    """The account has failures recorded, which a login must clear."""
    known_until: float | None = None
    """Until when the source network is a known device of the account."""


class SharedGuesses:
    """Waits per account and per source network, known devices.

    Redis failing refuses the attempt (an :attr:`Standing.outage`): a throttle that
    lets everything through while its store is down would be no throttle. Nor is the
    attempt counted: a phone with the right password that met an overloaded Redis is
    no guesser. What cannot be recorded is logged.

    A clean standing (no wait, no failure counted for the account, the source a known
    device not due for a refresh) is reused for :data:`CLEAN_REUSE` seconds without
    reading Redis: a lockout another process sets reaches this one within that window
    (known devices are exempt from the account's wait anyway), and a failure here for
    the account and source network drops it at once. Failures always go to Redis.
    """

    def __init__(self, shared: Shared, limits: LimitsSettings) -> None:
        self._shared = shared
        self._account = (limits.account_guesses, limits.guess_wait_max)
        self._source = (limits.source_guesses, limits.guess_wait_max * SOURCE_CEILING_FACTOR)
        client = shared.client
        self._fail = client.register_script(_FAIL)
        self._clean: OrderedDict[tuple[str, str], tuple[float, Standing]] = OrderedDict()
        """(account, source network): when a clean standing was read, and it; oldest first."""
        self.outages = 0

    def _keys(self, account: str | None, source: str | None) -> tuple[str | None, str | None]:
        key = self._shared.key
        return (
            None if account is None else key("guess", "account", account),
            None if source is None else key("guess", "source", network_key(source)),
        )

    def _known_key(self, account: str) -> str:
        return self._shared.key("guess", "known", account)

    async def wait(self, account: str | None, source: str | None, now: float) -> float:
        """As :meth:`heron.guesses.GuessThrottle.wait`, over every process."""
        return (await self.standing(account, source, now)).wait

    async def standing(self, account: str | None, source: str | None, now: float) -> Standing:
        """The wait for an attempt, and what :meth:`success` needs to skip its writes."""
        clean = self._clean
        while clean and not 0 <= now - next(iter(clean.values()))[0] < CLEAN_REUSE:
            clean.popitem(last=False)
        cache_key = None if account is None or source is None else (account, network_key(source))
        if cache_key is not None and (cached := clean.get(cache_key)) is not None:
            read_at, standing = cached
            if 0 <= now - read_at < CLEAN_REUSE:
                return standing
        account_key, source_key = self._keys(account, source)
        try:
            async with self._shared.client.pipeline(transaction=False) as pipe:
                pipe.hget(source_key or "", "until")
                pipe.hget(account_key or "", "until")
                pipe.hget(self._known_key(account or ""), network_key(source or ""))
                source_until, account_until, known = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return Standing(0.0, outage=True)
        known_until = None if known is None or source is None else float(known)
        waits = [0.0]
        if source_key is not None and source_until is not None:
            waits.append(float(source_until) - now)
        if account_key is not None and account_until is not None:
            if known_until is None or known_until <= now:
                waits.append(float(account_until) - now)
        standing = Standing(max(waits), counted=account_until is not None, known_until=known_until)
        if (
            cache_key is not None
            and source_until is None
            and account_until is None
            and known_until is not None
            and known_until - now >= REMEMBER - KNOWN_REFRESH
        ):
            clean.pop(cache_key, None)  # re-entered last: the oldest stay first
            clean[cache_key] = (now, standing)
        return standing

    async def failure(self, account: str | None, source: str | None, now: float) -> None:
        if account is not None and source is not None:
            self._clean.pop((account, network_key(source)), None)
        account_key, source_key = self._keys(account, source)
        try:
            for key, (free, ceiling) in ((account_key, self._account), (source_key, self._source)):
                if key is not None:
                    await self._fail(keys=[key], args=[now, free, BASE_WAIT, ceiling, FORGET])
        except (RedisError, OSError) as exc:
            log.warning("redis: cannot count a failed guess for %s: %s", account, exc)

    async def success(
        self, account: str, source: str | None, now: float, standing: Standing | None = None
    ) -> None:
        """The account's count ends and the source becomes a known device of it; with
        the ``standing`` read before the check, only what that changes is written (a
        re-registering phone, in the main, writes nothing)."""
        account_key, _ = self._keys(account, None)
        assert account_key is not None
        known = self._known_key(account)
        counted = standing is None or standing.counted
        remember = source is not None and (
            standing is None
            or standing.known_until is None
            or standing.known_until - now < REMEMBER - KNOWN_REFRESH
        )
        if not counted and not remember:
            return
        try:
            async with self._shared.client.pipeline(transaction=False) as pipe:
                if counted:
                    pipe.delete(account_key)
                if remember and source is not None:
                    pipe.hset(known, network_key(source), f"{now + REMEMBER:.6f}")
                    pipe.expire(known, int(REMEMBER))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("redis: cannot record a login of %s: %s", account, exc)

    async def forget_account(self, account: str) -> None:
        """The password changed or the account went: its known devices proved the old one."""
        account_key, _ = self._keys(account, None)
        assert account_key is not None
        for cached in [k for k in self._clean if k[0] == account]:
            del self._clean[cached]
        await self._shared.client.delete(account_key, self._known_key(account))

    def _outage(self, exc: Exception) -> None:
        """Logged the first time, the hundredth, then every ten thousandth."""
        self.outages += 1
        if self.outages in (1, 100) or self.outages % 10_000 == 0:
            log.warning(
                "redis: logins answered with a fresh challenge, unchecked: %s; %d so far",
                exc,
                self.outages,
            )
