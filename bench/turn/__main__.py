"""heron's TURN server against coturn, same user, same loads, one after the other.

Run from the repository root::

    .venv/bin/python -m bench.turn            # default: about 2 minutes
    .venv/bin/python -m bench.turn --quick    # smoke check: about 25 s
    .venv/bin/python -m bench.turn --help     # load sizes, server order, heron workers

Each server is started fresh (coturn from Debian's package, heron from this
repository), checked with one Allocate, given the relay load and then the
allocation burst, and stopped; ``turnutils_peer`` is the echo peer for both.
A server that does not start or answer is skipped with the reason, and the
other still runs. Everything stays on 127.0.0.1 and every loop is bounded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from bench.proc import ephemeral_range, free_port, stop_process, tree_cpu
from bench.report import common_options, emit, plan_from, run_directory, server_order
from bench.turn import servers
from bench.turn.client import answers_binding
from bench.turn.measure import LoadFailed, Plan, measure_burst, measure_relay
from bench.turn.report import ServerFigures, table
from bench.turn.servers import RelayPorts, RunningServer, ServerUnavailable

QUICK = Plan(
    relay_workers=2,
    relay_allocations=10,
    relay_window=4,
    relay_size=100,
    relay_seconds=4,
    burst_workers=2,
    burst_concurrency=50,
    burst_seconds=3,
)
DEFAULT = Plan(
    relay_workers=2,
    relay_allocations=25,
    relay_window=4,
    relay_size=100,
    relay_seconds=30,
    burst_workers=2,
    burst_concurrency=50,
    burst_seconds=20,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.turn", description=__doc__.split("\n")[0]
    )
    common_options(parser, quick="small loads, about 25 s in all", reference="coturn")
    parser.add_argument(
        "--heron-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="heron [turn] workers (default: CPU count, as coturn's relay threads)",
    )
    parser.add_argument("--relay-ports", default="24000-31999", help="relay port range LOW-HIGH")
    parser.add_argument("--relay-workers", type=int, help="relay load processes")
    parser.add_argument("--relay-allocations", type=int, help="allocations per relay process")
    parser.add_argument("--relay-window", type=int, help="packets in flight per allocation")
    parser.add_argument("--relay-size", type=int, help="payload bytes per packet")
    parser.add_argument("--relay-seconds", type=float, help="relay load duration")
    parser.add_argument("--burst-workers", type=int, help="burst client processes")
    parser.add_argument("--burst-concurrency", type=int, help="concurrent aioice clients")
    parser.add_argument("--burst-seconds", type=float, help="burst duration")
    return parser.parse_args(argv)


def _relay_ports(text: str) -> RelayPorts:
    """Parse LOW-HIGH and warn if it overlaps the kernel's ephemeral range.

    With relay ports inside that range coturn was seen spending seconds of CPU
    retrying binds that client sockets already held (reference-servers.md).
    """
    low, _, high = text.partition("-")
    ports = RelayPorts(int(low), int(high))
    eph_low, eph_high = ephemeral_range()
    if ports.low <= eph_high and eph_low <= ports.high:
        emit(f"warning: relay ports {text} overlap the ephemeral range {eph_low}-{eph_high}")
    return ports


@contextmanager
def echo_peer(workdir: Path, taken: set[int]) -> Iterator[tuple[tuple[str, int], int]]:
    """turnutils_peer, coturn's C echo server, for both servers: cheap on CPU, same for both."""
    port = free_port(taken)
    with (workdir / "peer.log").open("wb") as sink:
        process = subprocess.Popen(
            ["turnutils_peer", "-L", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(0.3)
        if process.poll() is not None:
            raise SystemExit(f"turnutils_peer exited with status {process.returncode}")
        yield ("127.0.0.1", port), process.pid
    finally:
        stop_process(process)


def _run_loads(
    server: RunningServer, peer: tuple[str, int], peer_pid: int, plan: Plan
) -> ServerFigures:
    figures = ServerFigures()
    processes = len(tree_cpu([server.pid]))  # heron's workers, if it forked any
    where = f"{server.address[0]}:{server.address[1]}"
    emit(f"{server.name}: answering on {where}, pid {server.pid}, {processes} process(es)")
    try:
        figures.relay = measure_relay(server, peer, peer_pid, plan)
        emit(f"  {figures.relay.describe()}")
        if server.counters is not None:
            emit(f"    {server.counters()}")
    except LoadFailed as exc:
        figures.notes.append(f"relay load failed: {exc}")
        emit(f"  relay load failed: {exc}")
    if not answers_binding(server.address, timeout=2.0):
        figures.notes.append("stopped answering after the relay load")
        emit(f"  {server.name} stopped answering after the relay load; burst skipped")
        return figures
    try:
        figures.burst = measure_burst(server, plan)
        emit(f"  {figures.burst.describe()}")
    except LoadFailed as exc:
        figures.notes.append(f"burst failed: {exc}")
        emit(f"  burst failed: {exc}")
    return figures


def _run_server(
    name: str,
    start: Callable[[], AbstractContextManager[RunningServer]],
    peer: tuple[str, int],
    peer_pid: int,
    plan: Plan,
) -> ServerFigures:
    emit(f"{name}: starting")
    try:
        with start() as server:
            return _run_loads(server, peer, peer_pid, plan)
    except ServerUnavailable as exc:
        emit(f"{name}: SKIPPED, {exc}")
        return ServerFigures(notes=[f"skipped: {exc}"])


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = plan_from(args, QUICK, DEFAULT)
    ports = _relay_ports(args.relay_ports)
    order = server_order(args, "coturn")
    emit(f"loads: {plan.describe()}")
    emit(f"coturn {servers.coturn_version()}; heron with {args.heron_workers} TURN worker(s)")
    taken: set[int] = set()
    results = {"heron": ServerFigures(), "coturn": ServerFigures()}
    with run_directory("bench-turn-", args.keep) as workdir:
        starters: dict[str, Callable[[], AbstractContextManager[RunningServer]]] = {
            "coturn": lambda: servers.coturn(workdir / "coturn", taken, ports),
            "heron": lambda: servers.heron(workdir / "heron", taken, ports, args.heron_workers),
        }
        with echo_peer(workdir, taken) as (peer, peer_pid):
            for name in order:
                results[name] = _run_server(name, starters[name], peer, peer_pid, plan)
    emit()
    emit(table(results["heron"], results["coturn"]))
    for name in ("heron", "coturn"):
        for note in results[name].notes:
            emit(f"{name}: {note.splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
