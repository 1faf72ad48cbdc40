"""Extra worker processes (``turn.workers``, ``sip.workers``): started together,
restarted one by one.

Each worker serves the UDP sockets the main process bound for it (:mod:`heron.inherit`).
The main process keeps its copies of them for as long as it serves: a worker that
dies then leaves its sockets in their SO_REUSEPORT groups, so the kernel keeps hashing
every other client to the process that holds its allocations, and the worker started
in its place reads the same sockets. Closing them instead would shrink each group and
rehash most clients of the living processes onto members without their allocations.
The clients of the dead worker lose their allocations (they lived in its memory) and
allocate again with the new one, as they would after a coturn restart; a SIP worker's
lose their transactions and connections, and its bindings stay in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from asyncio.subprocess import Process
from collections.abc import Sequence

from heron.inherit import WORKER_ENV, wait_ready, worker_environment

__all__ = ["START_TIMEOUT", "Workers"]

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
"""Seconds the main process waits for its workers to serve before it says it does."""
QUICK_DEATH = 10.0
"""A worker that dies sooner than this after its start is restarted after a growing delay."""
MAX_DELAY = 60.0


class Workers:
    """Worker ``index`` runs ``command`` with ``sockets[index]`` and its number (from 1,
    the main process being 0) in ``HERON_WORKER_INDEX``; :meth:`start` returns once every
    worker serves (or :data:`START_TIMEOUT` passed), and from then on a worker that exits
    is started again until :meth:`stop`."""

    def __init__(
        self,
        service: str,
        command: Sequence[str],
        count: int,
        sockets: list[dict[str, socket.socket]],
    ) -> None:
        """``count`` workers of ``service``; ``sockets`` (taken over: closed by :meth:`stop`)
        may name fewer (a TURN without UDP listeners shares none)."""
        self._service = service
        self._command = tuple(command)
        sockets.extend({} for _ in range(count - len(sockets)))
        self._sockets = sockets
        self._processes: list[Process | None] = [None] * len(sockets)
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if not self._sockets:
            return
        started = await self._launch(range(len(self._sockets)))
        log.info("%s: %d worker process(es) started", self._service, started)
        self._watchers = [
            asyncio.get_running_loop().create_task(self._watch(index))
            for index in range(len(self._sockets))
        ]

    async def stop(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for process in self._processes:
            if process is not None and process.returncode is None:
                process.terminate()
        for process in self._processes:
            if process is not None:
                await process.wait()
        for own in self._sockets:
            for sock in own.values():
                sock.close()
        self._sockets.clear()

    def reload(self) -> None:
        """Pass a reload on: each worker reads the configuration and certificates again
        itself (SIGHUP), keeping its allocations. A worker being restarted at that moment
        reads the new files anyway; if the signal comes before its handler, it dies
        with no allocation yet and is started again."""
        for process in self._processes:
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGHUP)

    async def _launch(self, indexes: Sequence[int]) -> int:
        """Start the workers ``indexes``; how many said they serve in time."""
        read_end, write_end = os.pipe()
        try:
            for index in indexes:
                env, fds = worker_environment(self._sockets[index], write_end)
                env[WORKER_ENV] = str(index + 1)
                self._processes[index] = await asyncio.create_subprocess_exec(
                    *self._command, env=env, pass_fds=fds
                )
        finally:
            os.close(write_end)
        ready = await wait_ready(read_end, len(indexes), START_TIMEOUT)
        if ready < len(indexes):
            log.warning(
                "%s: %d of %d worker process(es) did not start",
                self._service,
                len(indexes) - ready,
                len(indexes),
            )
        return ready

    async def _watch(self, index: int) -> None:
        """Start worker ``index`` again each time it exits, sooner if it lived long."""
        loop = asyncio.get_running_loop()
        delay = 1.0
        while True:
            process = self._processes[index]
            if process is None:
                return
            started = loop.time()
            status = await process.wait()
            lived = loop.time() - started
            delay = 1.0 if lived >= QUICK_DEATH else min(delay * 2, MAX_DELAY)
            log.error(
                "%s: worker process %d exited with status %d after %.0f s; "
                "its clients' state is lost; starting another in %.0f s",
                self._service,
                process.pid,
                status,
                lived,
                delay,
            )
            await asyncio.sleep(delay)
            with contextlib.suppress(OSError):  # no process: the next round tries again
                await self._launch([index])
