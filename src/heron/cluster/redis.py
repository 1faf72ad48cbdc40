"""The Redis every SIP process of a domain shares, under ``redis.prefix``."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from heron.config import RedisSettings
from heron.errors import StoreError

__all__ = ["Shared"]

TIMEOUT = 5.0
"""Seconds a command may take before it fails: Redis answers in microseconds, a longer
wait is an outage, and the SIP request waiting on it is better refused."""
CONNECTIONS = 16
"""Connections per process. Redis runs commands one at a time, so more in flight only
queue there; a request beyond them waits here for one (up to :data:`TIMEOUT`) rather
than fail. redis-py's own pool raises ``MaxConnectionsError`` past 100, which under
load turned every REGISTER past the hundredth in flight into a Redis "outage"."""


class Shared:
    """A client (its own connection pool) and the prefix that keeps heron's keys apart."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    async def open(cls, settings: RedisSettings) -> Shared:
        """Connect to ``redis.url``; :class:`StoreError` in one line when it cannot."""
        assert settings.url is not None
        pool = BlockingConnectionPool.from_url(
            settings.url,
            max_connections=CONNECTIONS,
            timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
        client = Redis.from_pool(pool)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"redis.url {settings.url}: {exc}") from None
        return cls(client, settings.prefix)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def close(self) -> None:
        await self.client.aclose()
