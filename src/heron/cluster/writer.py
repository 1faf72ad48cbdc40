"""Binding sets written to Redis and announced to every process, batched and in order.

Each write is a round trip through redis-py, which costs a SIP process more CPU than
the REGISTER it serves; so every set put in one turn of the event loop goes in one
pipeline (HSET or HDEL, then PUBLISH, per AOR), and its callers all wait for that
one. A change another process must see before the 200 (a new or moved contact, a
removal) is *due*: the batch goes at once and the REGISTER is answered after it. A
refresh that changes nothing but the expiry is *lazy*: it waits up to
:data:`LAZY_DELAY`, the AOR's latest set replacing any earlier one, since every other
process still finds the phone by the set it has, whose expiry lies ahead. One task
writes the batches, one after another, so Redis and the bus see an AOR's sets in the
order they were made, which separate connections would not guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from heron.cluster.location import SharedLocation
from heron.cluster.redis import Shared
from heron.sip.registrar import Binding

__all__ = ["LAZY_DELAY", "SetWriter"]

log = logging.getLogger(__name__)

LAZY_DELAY = 1.0
"""Seconds a refresh may wait for its batch: another process's copy of the binding
expires that much late at most, and a phone re-registering every few milliseconds
costs one write a second."""

Announce = Callable[[str, Sequence[Binding]], bytes]
"""The bus message telling every process an AOR's new set."""


class SetWriter:
    """Queues sets by AOR; :meth:`put` returns once its batch is in Redis (or failed).
    Its task starts with the first put and ends with :meth:`stop`."""

    def __init__(self, shared: Shared, location: SharedLocation, announce: Announce) -> None:
        self._shared, self._location, self._announce = shared, location, announce
        self._channel = shared.key("sip", "everyone")
        self._queued: dict[str, Sequence[Binding]] = {}
        self._due: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._lazy: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def put(self, aor: str, bindings: Sequence[Binding], *, due: bool) -> None:
        """Queue the AOR's set; when ``due``, return once it is written (failures logged)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        self._queued.pop(aor, None)  # re-queued at the end: the batch keeps put order
        self._queued[aor] = bindings
        if not due:
            if self._lazy is None:
                self._lazy = asyncio.get_running_loop().call_later(LAZY_DELAY, self._wake.set)
            return
        if self._due is None:
            self._due = asyncio.get_running_loop().create_future()
        waiter = self._due
        self._wake.set()
        await asyncio.shield(waiter)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            try:
                await self._flush()
            except Exception:  # the next batch must still go, or every REGISTER waits
                log.exception("sip: a batch of binding sets failed")

    async def _flush(self) -> None:
        self._wake.clear()
        if self._lazy is not None:
            self._lazy.cancel()
            self._lazy = None
        batch, self._queued = self._queued, {}
        waiter, self._due = self._due, None
        try:
            if batch:
                await self._write(batch)
        finally:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _write(self, batch: dict[str, Sequence[Binding]]) -> None:
        self.batches += 1
        try:
            async with self._shared.client.pipeline(transaction=False) as pipe:
                for aor, bindings in batch.items():
                    self._location.queue_put(pipe, aor, bindings)
                for aor, bindings in batch.items():
                    pipe.publish(self._channel, self._announce(aor, bindings))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("sip: cannot share the bindings of %s: %s", ", ".join(batch), exc)

    async def stop(self) -> None:
        """Write what is queued (a refresh among it), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(asyncio.CancelledError):
            await self._flush()
