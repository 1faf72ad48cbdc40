"""Running one load against one server and turning counts into figures.

The parent starts the load workers, waits until every one has set up, then
reads the server's CPU, says go, collects the counts and reads the CPU again:
only the load itself lands in the window, not the set-up. Alongside the
server it reads the echo peer, the workers' own CPU and the machine's busy
time, because on two shared cores any of them can be what limits the rate.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.proc import (
    Worker,
    busy_cores,
    cpu_seconds,
    dropped_between,
    ephemeral_range,
    machine_ticks,
    tree_cpu,
    udp_drops,
)
from bench.turn.burst import LIFE_TIMEOUT, BurstSettings
from bench.turn.relay import RelaySettings
from bench.turn.servers import PASSWORD, USERNAME, RunningServer

__all__ = ["BurstResult", "LoadFailed", "Plan", "RelayResult", "measure_burst", "measure_relay"]


class LoadFailed(Exception):
    """A load could not run against this server (workers could not set up, or died)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The loads, identical for both servers."""

    relay_workers: int
    relay_allocations: int
    """Allocations per relay worker, each with one channel to the echo peer."""
    relay_window: int
    """ChannelData packets kept in flight per allocation."""
    relay_size: int
    """Application bytes per ChannelData packet."""
    relay_seconds: float
    burst_workers: int
    burst_concurrency: int
    """Clients at once, over all burst workers."""
    burst_seconds: float
    """Rounds of concurrent allocations follow one another for this long."""

    def describe(self) -> str:
        return (
            f"relay: {self.relay_workers} processes x {self.relay_allocations} allocations, "
            f"{self.relay_window} in flight each, {self.relay_size}-byte payloads, "
            f"{self.relay_seconds:g} s; burst: {self.burst_concurrency} concurrent aioice clients "
            f"({self.burst_workers} processes), rounds for {self.burst_seconds:g} s"
        )


@dataclass(frozen=True, slots=True)
class _Window:
    """What a load window cost, besides the load's own counts."""

    results: list[dict[str, Any]]
    server_cpu: float
    others_cpu: float
    wall: float
    busy: float
    kernel_drops: tuple[int, int, int]
    """Datagrams the kernel dropped on the server's, the others' and the workers' UDP
    sockets during the window (/proc/net/udp: full receive buffers)."""


def _run_workers(
    module: str,
    settings: Sequence[Mapping[str, Any]],
    server: RunningServer,
    others: Sequence[int],
    ready_timeout: float,
    result_timeout: float,
) -> _Window:
    """Spawn, wait for every ``ready``, then measure from ``go`` to the last result."""
    workers = [Worker.spawn(module, item) for item in settings]
    try:
        for worker in workers:
            worker.wait_ready(ready_timeout)
        pids = [worker.process.pid for worker in workers]
        drops_before = [udp_drops([server.pid]), udp_drops(others), udp_drops(pids)]
        server_before, others_before = tree_cpu([server.pid]), tree_cpu(others)
        machine_before, started = machine_ticks(), time.monotonic()
        for worker in workers:
            worker.go()
        results = [worker.result(result_timeout) for worker in workers]
        wall = time.monotonic() - started
        server_after, others_after = tree_cpu([server.pid]), tree_cpu(others)
        machine_after = machine_ticks()
        drops_after = [udp_drops([server.pid]), udp_drops(others), udp_drops(pids)]
    except (RuntimeError, TimeoutError, ValueError) as exc:
        raise LoadFailed(str(exc)) from None
    finally:
        for worker in workers:
            worker.close()
    return _Window(
        results,
        cpu_seconds(server_before, server_after),
        cpu_seconds(others_before, others_after),
        wall,
        busy_cores(machine_before, machine_after, wall),
        (
            dropped_between(drops_before[0], drops_after[0]),
            dropped_between(drops_before[1], drops_after[1]),
            dropped_between(drops_before[2], drops_after[2]),
        ),
    )


@dataclass(frozen=True, slots=True)
class RelayResult:
    sent: int
    echoes: int
    """Echoes received, the late ones after the deadline included: all the server carried."""
    in_window: int
    seconds: float
    server_cpu: float
    peer_cpu: float
    client_cpu: float
    wall: float
    busy: float
    stalls: int
    kernel_drops: tuple[int, int, int] = (0, 0, 0)
    """Full receive buffers in the window: the server's sockets, the echo peer's, the clients'."""

    @property
    def packets_per_second(self) -> float:
        return self.in_window / self.seconds

    @property
    def cpu_ms_per_1000(self) -> float | None:
        return self.server_cpu * 1e6 / self.echoes if self.echoes else None

    def describe(self) -> str:
        lost = 1 - self.echoes / self.sent if self.sent else 0.0
        per = self.cpu_ms_per_1000
        return (
            f"relay: {self.packets_per_second:,.0f} echoes/s over {self.seconds:.1f} s "
            f"({self.echoes:,} echoes, {lost:.2%} lost, {self.stalls} stalled windows); "
            f"server CPU {self.server_cpu:.2f} s = {self.server_cpu / self.wall:.0%} of a core"
            f"{f' = {per:.3f} ms per 1,000' if per is not None else ''}; "
            f"echo peer {self.peer_cpu / self.wall:.0%}, clients {self.client_cpu / self.wall:.0%}"
            f" of a core; machine {self.busy:.2f} cores busy; kernel drops (/proc/net/udp): "
            "server {:,}, echo peer {:,}, clients {:,}".format(*self.kernel_drops)
        )


def measure_relay(
    server: RunningServer, peer: tuple[str, int], peer_pid: int, plan: Plan
) -> RelayResult:
    one = RelaySettings(
        server=server.address,
        peer=peer,
        username=USERNAME,
        password=PASSWORD,
        allocations=plan.relay_allocations,
        window=plan.relay_window,
        size=plan.relay_size,
        seconds=plan.relay_seconds,
    )
    window = _run_workers(
        "bench.turn.relay",
        [asdict(one)] * plan.relay_workers,
        server,
        [peer_pid],
        ready_timeout=30 + 2 * plan.relay_allocations,
        result_timeout=plan.relay_seconds + 30,
    )
    results = window.results
    return RelayResult(
        sent=sum(r["sent"] for r in results),
        echoes=sum(r["received"] for r in results),
        in_window=sum(r["in_window"] for r in results),
        seconds=max(r["seconds"] for r in results),
        server_cpu=window.server_cpu,
        peer_cpu=window.others_cpu,
        client_cpu=sum(r["cpu"] for r in results),
        wall=window.wall,
        busy=window.busy,
        stalls=sum(r["stalls"] for r in results),
        kernel_drops=window.kernel_drops,
    )


@dataclass(frozen=True, slots=True)
class BurstResult:
    ok: int
    failed: int
    rounds: int
    seconds: float
    server_cpu: float
    client_cpu: float
    wall: float
    busy: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def allocations_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_100(self) -> float | None:
        return self.server_cpu * 1e5 / self.ok if self.ok else None

    def describe(self) -> str:
        per = self.cpu_ms_per_100
        text = (
            f"burst: {self.allocations_per_second:,.0f} allocations/s "
            f"({self.ok:,} made and released in {self.seconds:.1f} s, "
            f"{self.rounds}+ rounds per process, {self.failed} failed); "
            f"server CPU {self.server_cpu:.2f} s = {self.server_cpu / self.wall:.0%} of a core"
            f"{f' = {per:.2f} ms per 100' if per is not None else ''}; "
            f"clients {self.client_cpu / self.wall:.0%} of a core; "
            f"machine {self.busy:.2f} cores busy"
        )
        if self.errors:
            worst = ", ".join(f"{n} x {kind}" for kind, n in Counter(self.errors).most_common(3))
            text += f"\n    failures: {worst}"
        return text


def _shares(total: int, parts: int) -> list[int]:
    """Split ``total`` clients over ``parts`` workers as evenly as whole numbers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _port_slices(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """Disjoint client-port slices, one per burst worker."""
    size = (high - low + 1) // parts
    return [(low + i * size, low + (i + 1) * size - 1) for i in range(parts)]


RELEASE_PAUSE = 2.0
"""Seconds between loads: coturn holds a released allocation's 5-tuple for about one
second, and the burst's client ports must not meet the relay clients' old ones there."""


def measure_burst(server: RunningServer, plan: Plan) -> BurstResult:
    time.sleep(RELEASE_PAUSE)
    shares = [share for share in _shares(plan.burst_concurrency, plan.burst_workers) if share]
    eph_low, eph_high = ephemeral_range()
    settings = [
        asdict(
            BurstSettings(
                server=server.address,
                username=USERNAME,
                password=PASSWORD,
                concurrency=share,
                seconds=plan.burst_seconds,
                ports=ports,
            )
        )
        for share, ports in zip(shares, _port_slices(eph_low, eph_high, len(shares)), strict=True)
    ]
    window = _run_workers(
        "bench.turn.burst",
        settings,
        server,
        [],
        ready_timeout=30,
        # the last round can take two timeouts (allocate, then release) if the server stalls
        result_timeout=plan.burst_seconds + 2 * LIFE_TIMEOUT + 30,
    )
    results = window.results
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    return BurstResult(
        ok=sum(r["ok"] for r in results),
        failed=sum(r["failed"] for r in results),
        rounds=min(r["rounds"] for r in results),
        seconds=max(r["seconds"] for r in results),
        server_cpu=window.server_cpu,
        client_cpu=sum(r["cpu"] for r in results),
        wall=window.wall,
        busy=window.busy,
        errors=dict(errors),
    )
