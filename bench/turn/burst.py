"""Allocation burst: rounds of concurrent aioice TURN clients that allocate and release.

Run by ``bench.turn`` as child processes (``python -m bench.turn.burst
SETTINGS``). Each round starts ``concurrency`` aioice clients at once; each
makes an allocation (the 401 challenge, then the authenticated Allocate) and
then closes it, which aioice does with a Refresh of LIFETIME 0. Rounds follow
one another for ``seconds`` (the round under way finishes), so that a fast
server still gives a CPU window of many 10 ms ticks and a slow one cannot
stretch the run. One counted
allocation is that whole life, so the server's CPU per allocation includes
the release, as it would in real use. aioice is the client a WebRTC stack in
Python uses, which is why it drives this load rather than ``client.py``.

Client ports are handed out in turn from the worker's own slice of the
ephemeral range instead of by the kernel. The kernel picks at random, so at
thousands of allocations a second it soon gives a new client the port a
just-released one had; coturn keeps a deleted allocation's 5-tuple for about
a second and answers that Allocate with 437 Allocation Mismatch (20 % of
allocations failed at 7,000/s). Real clients do not reuse a 5-tuple that fast,
so the bench does not either.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aioice.turn import create_turn_endpoint

from bench.proc import read_settings, say, wait_go

__all__ = ["LIFE_TIMEOUT", "BurstSettings", "main"]

LIFE_TIMEOUT = 5.0
"""Seconds an allocation, and then its release, may take before it counts as failed."""


@dataclass(frozen=True, slots=True)
class BurstSettings:
    """One worker's share of the burst."""

    server: tuple[str, int]
    username: str
    password: str
    concurrency: int
    seconds: float
    ports: tuple[int, int]
    """This worker's client ports, LOW-HIGH inclusive, used in turn."""
    timeout: float = LIFE_TIMEOUT


class _Sink(asyncio.DatagramProtocol):
    """Receives nothing; tells when aioice has deleted the allocation and closed."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _one_life(settings: BurstSettings) -> None:
    """Allocate, then release and wait for the release's answer."""
    transport, sink = await asyncio.wait_for(
        create_turn_endpoint(
            _Sink,
            server_addr=settings.server,
            username=settings.username,
            password=settings.password,
            transport="udp",
        ),
        settings.timeout,
    )
    transport.close()
    await asyncio.wait_for(sink.closed, settings.timeout)


def _describe(failure: BaseException) -> str:
    """A short key to count failures by: the type, and the first words of the message."""
    text = str(failure)
    return f"{type(failure).__name__}: {text[:80]}" if text else type(failure).__name__


async def run_rounds(settings: BurstSettings) -> dict[str, Any]:
    """Rounds of ``concurrency`` lives at once until ``seconds`` pass; counts and timing."""
    errors: Counter[str] = Counter()
    ok = 0
    cpu_start = os.times()
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < settings.seconds:
        rounds += 1
        lives = [_one_life(settings) for _ in range(settings.concurrency)]
        for outcome in await asyncio.gather(*lives, return_exceptions=True):
            if isinstance(outcome, BaseException):
                errors[_describe(outcome)] += 1
            else:
                ok += 1
    seconds = time.monotonic() - started
    cpu_end = os.times()
    cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    return {
        "ok": ok,
        "failed": sum(errors.values()),
        "errors": dict(errors),
        "seconds": seconds,
        "rounds": rounds,
        "cpu": cpu,
    }


def _base_loop() -> type[asyncio.AbstractEventLoop]:
    """uvloop when present (a heron dependency): the clients share the server's two cores."""
    try:
        import uvloop
    except ImportError:
        return asyncio.SelectorEventLoop
    loop_class: type[asyncio.AbstractEventLoop] = uvloop.Loop
    return loop_class


_BaseLoop: Any = _base_loop()


class _PortCyclingLoop(_BaseLoop):  # type: ignore[misc]
    """An event loop that binds every unbound UDP endpoint to the next port of a slice."""

    def __init__(self, ports: Iterator[int]) -> None:
        super().__init__()
        self.ports = ports

    async def create_datagram_endpoint(  # type: ignore[no-untyped-def]
        self, protocol_factory, local_addr=None, remote_addr=None, **options
    ):
        if local_addr is not None or remote_addr is None:
            return await super().create_datagram_endpoint(
                protocol_factory, local_addr=local_addr, remote_addr=remote_addr, **options
            )
        for _ in range(1000):  # skip ports other programs hold
            try:
                return await super().create_datagram_endpoint(
                    protocol_factory,
                    local_addr=("127.0.0.1", next(self.ports)),
                    remote_addr=remote_addr,
                    **options,
                )
            except OSError as exc:
                cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc  # uvloop wraps
                if cause.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no free client port in this worker's slice")


def _run(settings: BurstSettings) -> dict[str, Any]:
    low, high = settings.ports
    ports = itertools.cycle(range(low, high + 1))
    with asyncio.Runner(loop_factory=lambda: _PortCyclingLoop(ports)) as runner:
        return runner.run(run_rounds(settings))


def main() -> None:
    raw = read_settings()
    settings = BurstSettings(
        **{**raw, "server": tuple(raw["server"]), "ports": tuple(raw["ports"])}
    )
    say("ready")
    wait_go()
    say(json.dumps(_run(settings)))


if __name__ == "__main__":
    main()
