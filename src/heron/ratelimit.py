"""Abuse limits every protocol shares, sans-IO.

- :class:`FloodGuard`, what Kamailio's pike module does: each source address
  gets a token bucket; a source that empties it is banned for a while and its
  packets are dropped unanswered, so a flood costs the server a dict lookup per
  packet and the flooder learns nothing.
- :class:`Lockout`: failed logins counted per user and per address (SIP
  digest, XMPP SASL, web logins), so slow guessing ends in a lock.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from math import inf

__all__ = ["FloodGuard", "Lockout"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    banned_until: float = 0.0


class FloodGuard:
    """Allows ``rate`` requests per second per source, bursts of ``burst``, then bans."""

    def __init__(
        self,
        rate: float,
        burst: float,
        ban: float = 60.0,
        exempt: Iterable[IPv4Network | IPv6Network] = (),
        capacity: int = 100_000,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._ban = ban
        self._exempt = tuple(exempt)
        self._capacity = capacity
        self._buckets: dict[str, _Bucket] = {}
        self.banned_total = 0

    def allow(self, source: str, now: float) -> bool:
        """True if a request from ``source`` may be processed now."""
        if not self._rate:
            return True
        bucket = self._buckets.get(source)
        if bucket is None:
            if self._is_exempt(source):
                return True
            if len(self._buckets) >= self._capacity:
                self._forget(now)
            bucket = self._buckets[source] = _Bucket(self._burst, now)
        if bucket.banned_until > now:
            return False
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens < 1:
            bucket.banned_until = now + self._ban
            self.banned_total += 1
            return False
        bucket.tokens -= 1
        return True

    def banned(self, now: float) -> list[str]:
        return [s for s, b in self._buckets.items() if b.banned_until > now]

    def _is_exempt(self, source: str) -> bool:
        try:
            address = ip_address(source)
        except ValueError:
            return False
        return any(address in net for net in self._exempt if net.version == address.version)

    def _forget(self, now: float) -> None:
        """Drop sources that are full again and not banned, oldest first, to make room."""
        idle = [
            s
            for s, b in self._buckets.items()
            if b.banned_until <= now and b.tokens + (now - b.at) * self._rate >= self._burst
        ]
        for source in idle or list(self._buckets)[: self._capacity // 10]:
            del self._buckets[source]


class _Window:
    """Per key: (locked until, failure times in the window). Least recently
    failed first, so the front is what to forget first.
    """

    __slots__ = ("_capacity", "_duration", "_entries", "_limit", "_window")

    def __init__(self, limit: int, window: float, duration: float, capacity: int) -> None:
        self._limit, self._window, self._duration = limit, window, duration
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[float, deque[float]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def locked(self, key: str, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and now < entry[0]

    def fail(self, key: str, now: float) -> None:
        horizon = max(self._window, self._duration)
        while self._entries and now - _changed(next(iter(self._entries.values()))) >= horizon:
            self._entries.popitem(last=False)
        until, times = self._entries.pop(key) if key in self._entries else (-inf, deque())
        if now >= until:  # failures while locked neither count nor extend the lock
            while times and times[0] <= now - self._window:
                times.popleft()
            times.append(now)
            if len(times) >= self._limit:
                until, times = now + self._duration, deque()
        self._entries[key] = (until, times)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self, key: str) -> None:
        if (entry := self._entries.get(key)) is not None:
            entry[1].clear()


def _changed(entry: tuple[float, deque[float]]) -> float:
    until, times = entry
    return times[-1] if times else until  # the last failure, or the lock's end


class Lockout:
    """Failed logins per username and per source address in a sliding
    ``window``; reaching a limit locks that name or address for ``duration``,
    which stops slow guessing, not only floods.

    Locked-out requests get the answer a wrong password gets, so neither
    locks nor accounts show. Anyone can lock a name with ``user_limit`` bad
    guesses: the price of stopping guessing, bounded by ``duration``. IPv6
    sources count per ``ipv6_prefix`` network: one host often holds a /64.
    Past ``capacity`` keys per table the least recently failed go, locks too.
    """

    __slots__ = ("_ips", "_prefix", "_users")

    def __init__(
        self,
        *,
        user_limit: int = 10,
        ip_limit: int = 30,
        window: float = 900.0,
        duration: float = 900.0,
        capacity: int = 100_000,
        ipv6_prefix: int = 64,
    ) -> None:
        self._users = _Window(user_limit, window, duration, capacity)
        self._ips = _Window(ip_limit, window, duration, capacity)
        self._prefix = ipv6_prefix

    def __len__(self) -> int:
        return len(self._users) + len(self._ips)

    def _ip(self, ip: str) -> str:
        try:
            address = ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            return ip
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
            return str(ipaddress.IPv6Network((address, self._prefix), strict=False))
        return str(getattr(address, "ipv4_mapped", None) or address)

    def is_locked(self, user: str | None, ip: str | None, now: float) -> bool:
        return (user is not None and self._users.locked(user, now)) or (
            ip is not None and self._ips.locked(self._ip(ip), now)
        )

    def failure(self, user: str | None, ip: str | None, now: float) -> None:
        if user is not None:
            self._users.fail(user, now)
        if ip is not None:
            self._ips.fail(self._ip(ip), now)

    def success(self, user: str | None, ip: str | None = None) -> None:
        """Clear the user's failures. The address keeps its count, or an
        attacker could reset it by logging into an account of their own.
        """
        if user is not None:
            self._users.clear(user)
