"""Messages between SIP processes over Redis pub/sub.

Each process has a channel of its own, named by its identity (``node.worker``): what
must reach the process that owns a connection or a client transaction goes there.
One channel all of them hear carries binding changes. Publishing never waits on the
caller's path: messages queue and one task sends them, in order. A process that is
gone loses what was sent to it, as its connections and transactions are gone too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from heron.cluster.redis import Shared

__all__ = ["Bus", "Handler"]

log = logging.getLogger(__name__)

Handler = Callable[[bytes], None]
"""Called with each message's bytes, on the loop."""

MAX_QUEUED = 10_000
"""Messages waiting to be published; past it they are dropped (Redis is gone or slow,
and SIP retransmits)."""


class Bus:
    """Publish to one process or to all; hand what arrives to ``direct`` or ``everyone``."""

    def __init__(self, shared: Shared, me: str) -> None:
        self._shared = shared
        self.me = me
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(MAX_QUEUED)
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self.dropped = 0

    def channel(self, process: str) -> str:
        return self._shared.key("sip", "process", process)

    async def start(self, direct: Handler, everyone: Handler) -> None:
        """Subscribed when this returns: a message published afterwards arrives."""
        self._pubsub = self._shared.client.pubsub(ignore_subscribe_messages=True)
        own, common = self.channel(self.me), self._shared.key("sip", "everyone")
        await self._pubsub.subscribe(**{own: None, common: None})
        self._tasks = [
            asyncio.create_task(self._listen(own.encode(), direct, everyone)),
            asyncio.create_task(self._send()),
        ]

    def send(self, process: str, payload: bytes) -> None:
        self._put(self.channel(process), payload)

    def broadcast(self, payload: bytes) -> None:
        self._put(self._shared.key("sip", "everyone"), payload)

    def _put(self, channel: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((channel, payload))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.warning(
                    "sip: %d message(s) to other processes dropped: Redis is behind", self.dropped
                )

    async def _send(self) -> None:
        client = self._shared.client
        while True:
            channel, payload = await self._queue.get()
            batch = [(channel, payload)]
            while not self._queue.empty() and len(batch) < 256:
                batch.append(self._queue.get_nowait())
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for name, data in batch:
                        pipe.publish(name, data)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                log.warning("sip: cannot publish to other processes: %s", exc)

    async def _listen(self, own: bytes, direct: Handler, everyone: Handler) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                log.warning("sip: lost the other processes' messages: %s", exc)
                await asyncio.sleep(1.0)  # Redis is down: try again, not in a tight loop
                continue
            if message is None:
                continue
            channel, data = message["channel"], message["data"]
            try:
                (direct if channel == own else everyone)(data)
            except Exception:
                log.exception("sip: a message from another process failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pubsub is not None:
            await self._pubsub.aclose()
