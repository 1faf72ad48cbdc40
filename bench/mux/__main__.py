"""heron's port-443 mux against direct TLS connections and sslh, in one run.

Run from the repository root::

    .venv/bin/python -m bench.mux            # default: about 2 min 15 s
    .venv/bin/python -m bench.mux --quick    # smoke check: about 40 s
    .venv/bin/python -m bench.mux --help     # load sizes, rounds, --loads, --sslh, --keep

One heron (web component only) serves ``web.listen`` (the direct route) and
``mux.listen`` (the mux route); sslh forwards a third port's TLS to
``web.listen`` (the sslh route). Three loads, each over every route, round
after round: concurrent connections, one connection at a time, and requests on
kept-alive connections. A route that cannot run (a heron without a mux, no
sslh installed) is reported as skipped with the reason, and the others still run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.mux import Route
from bench.mux.measure import LoadFailed, Mode, Plan, RouteLoad, run_load
from bench.mux.report import Results, table, verdict
from bench.mux.servers import running_heron_routes, running_sslh, sslh_version
from bench.proc import Address, RunningServer, ServerUnavailable
from bench.report import emit, plan_from, plan_options, run_directory
from heron import __version__

QUICK = Plan(
    rounds=1,
    connect_workers=2,
    connect_loops=16,
    connect_seconds=4.0,
    request_workers=2,
    request_loops=8,
    request_seconds=3.0,
    latency_seconds=1.5,
)
DEFAULT = Plan(
    rounds=6,
    connect_workers=2,
    connect_loops=16,
    connect_seconds=3.0,
    request_workers=2,
    request_loops=8,
    request_seconds=2.0,
    latency_seconds=1.0,
)


_LOADS: dict[str, Callable[[Plan], tuple[Mode, int, int, float]]] = {
    "connect": lambda plan: (
        "connect",
        plan.connect_workers,
        plan.connect_loops,
        plan.connect_seconds,
    ),
    "alone": lambda plan: ("connect", 1, 1, plan.latency_seconds),
    "requests": lambda plan: (
        "requests",
        plan.request_workers,
        plan.request_loops,
        plan.request_seconds,
    ),
}
"""Each load's client mode, worker processes, loops per process and seconds per phase."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mux", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round, about 40 s")
    parser.add_argument(
        "--sslh",
        default="sslh-select",
        help="sslh-select (default: one process, all its CPU counted) or sslh (sslh-fork)",
    )
    parser.add_argument(
        "--loads", default=",".join(_LOADS), help=f"which loads (default {','.join(_LOADS)})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    plan_options(parser, DEFAULT)
    return parser.parse_args(argv)


def _load(
    name: str,
    plan: Plan,
    routes: dict[Route, Address],
    heron_pid: int,
    sslh_pid: int | None,
) -> dict[Route, RouteLoad]:
    """One load over every route; on failure the line says why and its figures stay empty."""
    emit(f"{name}:")
    mode, workers, loops, seconds = _LOADS[name](plan)
    try:
        return run_load(mode, workers, loops, seconds, plan.rounds, routes, heron_pid, sslh_pid)
    except LoadFailed as exc:
        emit(f"  {name} load failed: {exc}")
        return {}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    loads = [name.strip() for name in args.loads.split(",") if name.strip()]
    if not loads or not set(loads) <= set(_LOADS):
        raise SystemExit(f"--loads takes {', '.join(_LOADS)}")
    plan = plan_from(args, QUICK, DEFAULT)
    emit(f"loads: {plan.describe()}")
    emit(f"heron {__version__}; {sslh_version(args.sslh)}")
    if Path(args.sslh).name == "sslh":
        emit(
            "warning: sslh-fork ignores SIGCHLD, so the CPU of each connection's process is "
            "lost when it exits: its CPU per connection is a lower bound"
        )
    skipped: dict[Route, str] = {}
    results = Results()
    taken: set[int] = set()
    with run_directory("bench-mux-", args.keep) as workdir, ExitStack() as stack:
        try:
            heron = stack.enter_context(running_heron_routes(workdir / "heron", taken))
        except ServerUnavailable as exc:
            emit(f"heron: cannot run, {exc}")
            return 1
        routes: dict[Route, Address] = {"direct": heron.direct}
        if heron.mux is not None:
            routes["mux"] = heron.mux
        else:
            skipped["mux"] = heron.mux_missing
        sslh: RunningServer | None = None
        if shutil.which(args.sslh) is None:
            skipped["sslh"] = f"{args.sslh} not installed (Debian package sslh)"
        else:
            try:
                sslh = stack.enter_context(
                    running_sslh(workdir / "sslh", taken, heron.direct, args.sslh)
                )
                routes["sslh"] = sslh.address
            except ServerUnavailable as exc:
                skipped["sslh"] = str(exc)
        for route, address in routes.items():
            emit(f"{route}: {address[0]}:{address[1]}")
        for route, why in skipped.items():
            emit(f"{route}: SKIPPED, {why}")
        sslh_pid = sslh.pid if sslh else None
        for name in loads:
            setattr(results, name, _load(name, plan, routes, heron.server.pid, sslh_pid))
    emit()
    emit(table(results, skipped))
    emit()
    for line in verdict(results):
        emit(line)
    for route, why in skipped.items():
        emit(f"{route}: skipped, {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
