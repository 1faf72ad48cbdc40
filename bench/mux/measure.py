"""Running one load over every route, round after round, and summing what each route cost.

A load's worker processes get every phase up front: for each round, each
route (rotated by one every round, so that no route always runs first or
last), for a fixed time. Before each phase every worker sets up (for
``requests``, opens its kept-alive connections) and says ``ready``; the
parent then reads the CPU of heron's process tree and of sslh's, says go,
collects the counts and reads them again. sslh's CPU counts only on its own
route: on the others it has nothing to do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.mux import Route
from bench.mux.client import TIMEOUT
from bench.proc import Address, Worker, busy_cores, cpu_seconds, machine_ticks, tree_cpu
from bench.report import emit

__all__ = ["LoadFailed", "Mode", "Plan", "RouteLoad", "percentile", "run_load"]

Mode = Literal["connect", "requests"]


class LoadFailed(Exception):
    """The load's workers could not set up or died."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The loads, the same for every route."""

    rounds: int
    """Every route gets each load this many times, interleaved with the others."""
    connect_workers: int
    connect_loops: int
    """Concurrent connection loops per connect worker."""
    connect_seconds: float
    """Per route and round."""
    request_workers: int
    request_loops: int
    """Kept-alive connections per request worker, each with one request in flight."""
    request_seconds: float
    latency_seconds: float
    """One connection at a time, per route and round: latency without queueing."""

    def describe(self) -> str:
        return (
            f"{self.rounds} round(s); connect: {self.connect_workers} processes x "
            f"{self.connect_loops} loops, {self.connect_seconds:g} s; alone: 1 loop, "
            f"{self.latency_seconds:g} s; requests: {self.request_workers} processes x "
            f"{self.request_loops} kept-alive connections, {self.request_seconds:g} s "
            "(per route and round)"
        )


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (sorted or not), None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(slots=True)
class RouteLoad:
    """One load on one route, summed over its rounds."""

    done: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    heron_cpu: float = 0.0
    sslh_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    per_round: list[float] = field(default_factory=list)
    """Server CPU seconds per unit of work in each round: how much it moves between rounds."""

    @property
    def rate(self) -> float | None:
        return self.done / self.seconds if self.seconds > 0 and self.done else None

    @property
    def server_cpu(self) -> float:
        return self.heron_cpu + self.sslh_cpu

    def cpu_per(self, units: int) -> float | None:
        """Server CPU seconds per ``units`` connections or requests."""
        return self.server_cpu / self.done * units if self.done else None

    def latency(self, fraction: float) -> float | None:
        return percentile(self.latencies, fraction)


def _rounds(routes: Sequence[Route], rounds: int) -> list[Route]:
    order: list[Route] = []
    for index in range(rounds):
        shift = index % len(routes)
        order.extend([*routes[shift:], *routes[:shift]])
    return order


def run_load(
    mode: Mode,
    workers: int,
    loops: int,
    seconds: float,
    rounds: int,
    routes: Mapping[Route, Address],
    heron_pid: int,
    sslh_pid: int | None,
) -> dict[Route, RouteLoad]:
    """Run one load over ``routes``; a detail line per phase, the totals per route."""
    order = _rounds(list(routes), rounds)
    phases = [[*routes[route], seconds] for route in order]
    totals: dict[Route, RouteLoad] = {route: RouteLoad() for route in routes}
    spawned = [
        Worker.spawn(
            "bench.mux.client",
            {"mode": mode, "loops": loops, "worker": index, "phases": phases},
        )
        for index in range(workers)
    ]
    try:
        for route in order:
            _phase(route, mode, spawned, seconds, totals[route], heron_pid, sslh_pid)
    except (TimeoutError, RuntimeError, ValueError) as exc:
        raise LoadFailed(str(exc)) from None
    finally:
        for worker in spawned:
            worker.close()
    return totals


def _phase(
    route: Route,
    mode: Mode,
    workers: Sequence[Worker],
    seconds: float,
    total: RouteLoad,
    heron_pid: int,
    sslh_pid: int | None,
) -> None:
    for worker in workers:
        worker.wait_ready(60.0)
    watched = sslh_pid if route == "sslh" else None
    heron_before = tree_cpu([heron_pid])
    sslh_before = tree_cpu([watched]) if watched else {}
    machine_before, start = machine_ticks(), time.monotonic()
    for worker in workers:
        worker.go()
    results: list[dict[str, Any]] = [
        worker.result(seconds + 2 * TIMEOUT + 30) for worker in workers
    ]
    elapsed = time.monotonic() - start
    heron_cpu = cpu_seconds(heron_before, tree_cpu([heron_pid]))
    sslh_cpu = cpu_seconds(sslh_before, tree_cpu([watched])) if watched else 0.0
    machine = busy_cores(machine_before, machine_ticks(), elapsed)
    for worker in workers:
        worker.go()  # CPU read: the workers may now close their connections
    done = sum(result["done"] for result in results)
    errors = sum(result["errors"] for result in results)
    clients = sum(result["client_cpu"] for result in results)
    total.done += done
    total.errors += errors
    total.first_error = total.first_error or next(
        (result["first_error"] for result in results if result["first_error"]), ""
    )
    total.seconds += elapsed
    total.heron_cpu += heron_cpu
    total.sslh_cpu += sslh_cpu
    for result in results:
        total.latencies.extend(result["latencies"])
    if done:
        total.per_round.append((heron_cpu + sslh_cpu) / done)
    unit = "connections" if mode == "connect" else "requests"
    sslh_part = f", sslh {sslh_cpu / elapsed:.2f}" if watched else ""
    failed = f", {errors} failed ({total.first_error})" if errors else ""
    emit(
        f"  {route:>6}: {done:,} {unit} in {elapsed:.1f} s ({done / elapsed:,.0f}/s){failed}; "
        f"cores busy: heron {heron_cpu / elapsed:.2f}{sslh_part}, clients "
        f"{clients / elapsed:.2f}, machine {machine:.2f}"
    )
