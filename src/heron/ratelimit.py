"""Request floods per source, sans-IO: what Kamailio's pike module does.

Each source address gets a token bucket; a source that empties it is banned
for a while and its packets are dropped unanswered, so a flood costs the
server a dict lookup per packet and the flooder learns nothing. Password
guessing is :mod:`heron.guesses`' business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address

__all__ = ["FloodGuard"]


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
        on_ban: Callable[[str, float], None] | None = None,
    ) -> None:
        """``on_ban(source, until)`` hears of each ban this guard starts (to share it)."""
        self._rate = rate
        self._on_ban = on_ban
        self._burst = burst
        self._ban = ban
        self._exempt = tuple(exempt)
        self._capacity = capacity
        self._buckets: dict[str, _Bucket] = {}
        self._exempt_seen: set[str] = set()
        """Sources found exempt: they get no bucket, and an address parse per request
        would be most of what a trusted peer's request costs here."""
        self.banned_total = 0

    def exempt(self, networks: Iterable[IPv4Network | IPv6Network]) -> None:
        """New exempt networks (a reload); a source in them is let go at once."""
        self._exempt = tuple(networks)
        self._exempt_seen.clear()
        for source in [s for s in self._buckets if self._is_exempt(s)]:
            del self._buckets[source]

    def allow(self, source: str, now: float) -> bool:
        """True if a request from ``source`` may be processed now."""
        if not self._rate:
            return True
        bucket = self._buckets.get(source)
        if bucket is None:
            if source in self._exempt_seen:
                return True
            if self._is_exempt(source):
                if len(self._exempt_seen) >= self._capacity:
                    self._exempt_seen.clear()
                self._exempt_seen.add(source)
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
            if self._on_ban is not None:
                self._on_ban(source, bucket.banned_until)
            return False
        bucket.tokens -= 1
        return True

    def ban(self, source: str, until: float, now: float) -> None:
        """Drop ``source``'s requests until ``until``, as another process decided."""
        if until <= now or self._is_exempt(source):
            return
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self._capacity:
                self._forget(now)
            bucket = self._buckets[source] = _Bucket(0.0, now)
        bucket.banned_until = max(bucket.banned_until, until)

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
