"""heron's SIP server against Kamailio: the same sipp loads, one server after the other.

Run from the repository root::

    .venv/bin/python -m bench.sip            # default: 3½ to 5½ minutes (see bench/README.md)
    .venv/bin/python -m bench.sip --quick    # smoke check: about 90 s
    .venv/bin/python -m bench.sip --install  # apt-get kamailio, sqlite modules, sipp if missing
    .venv/bin/python -m bench.sip --help     # ramp, users, server order, heron workers

Each server gets the same accounts, then two loads, each against a freshly
started server: digest REGISTERs from one sipp UAC cycling through the users,
and authenticated calls from one sipp UAC through the server to registered
sipp UAS instances. Each load is a ramp of fixed-rate steps, then the peak
held for 35 s on a restarted server, or half of it, and so on (``measure``).
Last, both servers are held at one rate, the lower of their sustained rates,
so that the two are also compared on the same load. A server that does not
start or answer is skipped with the reason, and the other still runs.
Everything stays on 127.0.0.1 and every loop is bounded.

heron runs one SIP process per core by default, as Kamailio runs a UDP worker per
core and more: comparing one heron process with all of Kamailio's would measure the
process count, not the server. Its workers share state through Redis (``--redis``,
under a prefix of the run's own); ``--heron-workers 1`` runs the one process without
Redis, to compare the two.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.proc import free_port
from bench.report import common_options, emit, plan_from, run_directory, server_order
from bench.sip import servers
from bench.sip.measure import Load, LoadResult, Plan, Runner
from bench.sip.report import ServerFigures, matched_table, table
from bench.sip.servers import Heron, Kamailio, RunningServer, Server, ServerUnavailable
from bench.sip.sipp import SCENARIOS, Account, SippFailed, UasGroup, sipp_version, uas_group

CORES = os.cpu_count() or 1
QUICK = Plan(
    users=4,
    callees=1,
    start_rate=100,
    factor=4,
    max_rate=6400,
    step_seconds=1.5,
    refine=0,
    hold_seconds=0,
    holds=0,
    recv_timeout=2,
    match_seconds=5,
    uacs=CORES,
)
DEFAULT = Plan(
    users=10,
    callees=2,
    start_rate=100,
    factor=2,
    max_rate=25600,
    step_seconds=1.5,
    refine=0,
    hold_seconds=35,
    holds=3,
    recv_timeout=3,
    match_seconds=20,
    uacs=CORES,
)
REDIS = "redis://127.0.0.1:6379/0"
CALL_PAUSE = 0.2
"""uac.xml waits 200 ms between its ACK and its BYE."""
MATCH_SHARE = 0.8
"""The common rate is this share of the lower sustained rate: a margin for the slower server."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sip", description=__doc__.split("\n")[0])
    common_options(
        parser,
        quick="short ramp, no holds, 5 s at a common rate: about 90 s in all",
        reference="kamailio",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="apt-get install kamailio kamailio-sqlite-modules (and sip-tester) if missing; root",
    )
    parser.add_argument(
        "--kamailio-shm",
        type=int,
        default=256,
        help="Kamailio shared memory in MB, its -m (default 256; Debian's is 64, which runs out "
        "of memory for transactions at about 500 calls/s)",
    )
    parser.add_argument(
        "--heron-workers",
        type=int,
        default=CORES,
        help="heron [sip] workers (default: CPU count, sharing state through Redis; "
        "1: one process, no Redis)",
    )
    parser.add_argument(
        "--redis",
        default=REDIS,
        help=f"the Redis heron's workers share, under a prefix of the run's own (default {REDIS})",
    )
    parser.add_argument(
        "--uacs",
        type=int,
        help="sipp UACs sharing each load, each from its own port (default: CPU count, so "
        "that heron's workers, which take datagrams by source port, all get some)",
    )
    parser.add_argument("--users", type=int, help="accounts that register and call")
    parser.add_argument("--callees", type=int, help="accounts answering calls (one sipp UAS each)")
    parser.add_argument("--start-rate", type=int, help="first step, calls per second")
    parser.add_argument("--factor", type=float, help="rate multiplier between steps")
    parser.add_argument("--max-rate", type=int, help="the ramp stops above this rate")
    parser.add_argument("--step-seconds", type=float, help="length of each step")
    parser.add_argument("--refine", type=int, help="midpoint steps after the first failure")
    parser.add_argument(
        "--hold-seconds", type=float, help="hold the ramp's peak this long (0: no holds)"
    )
    parser.add_argument("--holds", type=int, help="holds to try until one passes (0: none)")
    parser.add_argument("--recv-timeout", type=float, help="sipp's wait per answer, seconds")
    parser.add_argument(
        "--match-seconds", type=float, help="both servers held at a common rate (0: no)"
    )
    parser.add_argument(
        "--loads", default="register,calls", help="which loads (default register,calls)"
    )
    return parser.parse_args(argv)


def _accounts(plan: Plan) -> tuple[list[Account], list[Account]]:
    """The same callers and callees, names and passwords, for both servers."""
    users = [Account(f"user{i}", f"bench-pass-{i}") for i in range(1, plan.users + 1)]
    callees = [Account(f"callee{j}", f"bench-callee-{j}") for j in range(1, plan.callees + 1)]
    return users, callees


def _loads(users: list[Account], callees: list[Account]) -> dict[str, Load]:
    register = Load(
        "registrations",
        SCENARIOS / "register.xml",
        [[user.name, user.auth()] for user in users],
        0.0,
    )
    calls = Load(
        "calls",
        SCENARIOS / "uac.xml",
        [[user.name, user.auth(), callees[i % len(callees)].name] for i, user in enumerate(users)],
        CALL_PAUSE,
    )
    return {"register": register, "calls": calls}


Callees = list[tuple[Account, tuple[int, int]]]
"""Each callee with the (SIP, media) ports its UAS always uses."""


@contextmanager
def _callees(
    kind: str, server: RunningServer, callees: Callees, workdir: Path
) -> Iterator[UasGroup | None]:
    """The registered sipp UAS instances a call load needs; nothing for registrations."""
    if kind != "calls":
        yield None
        return
    accounts, ports = [a for a, _ in callees], [p for _, p in callees]
    with uas_group(server.address, accounts, ports, workdir) as group:
        yield group


@contextmanager
def _started(
    server: Server, kind: str, callees: Callees, workdir: Path
) -> Iterator[tuple[RunningServer, UasGroup | None]]:
    """A freshly started server, with its registered callees for the call load."""
    with server.running() as running:
        with _callees(kind, running, callees, workdir) as uas:
            where = f"{running.address[0]}:{running.address[1]}"
            emit(f"    ({server.name} started on {where}, pid {running.pid})")
            yield running, uas


def _run_load(
    server: Server,
    kind: str,
    load: Load,
    plan: Plan,
    fixed: Callees,
    workdir: Path,
    taken: set[int],
) -> LoadResult:
    """The ramp on a freshly started server, then each hold on another fresh start.

    A hold gets a clean server so that what the ramp left behind (heron keeps
    finished transactions 32 s) is not charged to it, and it lasts long
    enough for such state to build up from its own load.
    """
    runner = Runner(load, plan, workdir / kind, taken, emit)
    with _started(server, kind, fixed, runner.workdir) as (running, uas):
        runner.ramp(running, uas)
    for rate in runner.hold_rates():
        with _started(server, kind, fixed, runner.workdir) as (running, uas):
            if runner.hold(running, uas, rate).passed:
                break
    result = runner.result()
    if result.uas_failed:
        result.notes.append(f"the UAS instances counted {result.uas_failed:,} failed calls")
    return result


def _run_server(
    server: Server,
    plan: Plan,
    loads: dict[str, Load],
    kinds: list[str],
    accounts: tuple[list[Account], Callees],
    workdir: Path,
    taken: set[int],
) -> ServerFigures:
    figures = ServerFigures()
    users, fixed = accounts
    callees = [account for account, _ in fixed]
    started = time.monotonic()
    try:
        server.prepare([*users, *callees])
    except ServerUnavailable as exc:
        emit(f"{server.name}: SKIPPED, {exc}")
        figures.notes.append(f"skipped: {exc}")
        return figures
    took = time.monotonic() - started
    emit(f"{server.name}: {len(users) + len(callees)} accounts set up in {took:.1f} s")
    cores = os.cpu_count() or 1
    for kind in kinds:
        load = loads[kind]
        try:
            result = _run_load(server, kind, load, plan, fixed, workdir, taken)
        except (ServerUnavailable, SippFailed) as exc:
            emit(f"  {load.name}: FAILED, {exc}")
            figures.notes.append(f"{load.name}: {exc}")
            continue
        processes = f"{result.processes} process{'es' if result.processes > 1 else ''}"
        emit(f"  {load.name} ({server.name}, {processes}):\n    {result.limits(cores)}")
        for note in result.notes:
            emit(f"  {load.name}: {note}")
            figures.notes.append(f"{load.name}: {note}")
        if kind == "register":
            figures.register = result
        else:
            figures.calls = result
    return figures


def _common_rate(kind: str, results: dict[str, ServerFigures]) -> int | None:
    """MATCH_SHARE of the lower rate the two servers reached on this load, if both did."""
    rates = []
    for figures in results.values():
        result = figures.register if kind == "register" else figures.calls
        if result is None or result.rate is None:
            return None
        rates.append(result.rate)
    return max(1, math.floor(min(rates) * MATCH_SHARE))


def _run_matched(
    servers_: dict[str, Server],
    plan: Plan,
    loads: dict[str, Load],
    kinds: list[str],
    fixed: Callees,
    results: dict[str, ServerFigures],
    workdir: Path,
    taken: set[int],
) -> None:
    """Each load held on each server, restarted, at the same rate (see MATCH_SHARE)."""
    for kind in kinds:
        rate = _common_rate(kind, results)
        if rate is None:
            continue
        emit(f"both servers, {loads[kind].name} at {rate:,}/s for {plan.match_seconds:g} s:")
        for name, server in servers_.items():
            runner = Runner(loads[kind], plan, workdir / name / f"{kind}-matched", taken, emit)
            try:
                with _started(server, kind, fixed, runner.workdir) as (running, uas):
                    step = runner.step(running, uas, rate, plan.match_seconds, hold=True)
            except (ServerUnavailable, SippFailed) as exc:
                emit(f"  {name}: FAILED, {exc}")
                results[name].notes.append(f"{loads[kind].name} at a common rate: {exc}")
                continue
            results[name].matched[kind] = step


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = plan_from(args, QUICK, DEFAULT)
    order = server_order(args, "kamailio")
    kinds = [name.strip() for name in args.loads.split(",") if name.strip()]
    if not set(kinds) <= {"register", "calls"}:
        raise SystemExit("--loads takes register and/or calls")
    if plan.users < 1 or plan.callees < 1:
        raise SystemExit("--users and --callees must be at least 1")
    missing = servers.missing_packages()
    if missing and args.install:
        emit(f"installing {' '.join(missing)}")
        if (why := servers.install(missing)) is not None:
            raise SystemExit(why)
    if shutil.which("sipp") is None:
        raise SystemExit("sipp not found: apt-get install sip-tester (or run with --install)")
    emit(f"loads: {plan.describe()}")
    emit(
        f"{sipp_version()}; Kamailio {servers.kamailio_version()} with {args.kamailio_shm} MB "
        f"shared memory; heron with {args.heron_workers} SIP process(es); {os.cpu_count()} cores"
    )
    users, callees = _accounts(plan)
    loads = _loads(users, callees)
    taken: set[int] = set()
    # The same ports for a callee all run long: both servers keep bindings across restarts.
    fixed = [(account, (free_port(taken), free_port(taken))) for account in callees]
    results = {"heron": ServerFigures(), "kamailio": ServerFigures()}
    with run_directory("bench-sip-", args.keep) as workdir:
        makers: dict[str, Callable[[], Server]] = {
            "kamailio": lambda: Kamailio(workdir / "kamailio", taken, args.kamailio_shm),
            "heron": lambda: Heron(workdir / "heron", taken, args.heron_workers, args.redis),
        }
        ran: dict[str, Server] = {}
        try:
            for name in order:
                emit(f"{name}: setting up")
                ran[name] = makers[name]()
                results[name] = _run_server(
                    ran[name], plan, loads, kinds, (users, fixed), workdir / name, taken
                )
            if plan.match_seconds > 0 and len(ran) == 2:
                _run_matched(ran, plan, loads, kinds, fixed, results, workdir, taken)
        finally:
            for server in ran.values():
                server.clean_up()
    emit()
    emit(table(results["heron"], results["kamailio"], plan.hold_seconds if plan.holds else 0))
    if (matched := matched_table(results["heron"], results["kamailio"])) is not None:
        emit()
        emit(matched)
    for name in ("heron", "kamailio"):
        for note in results[name].notes:
            emit(f"{name}: {note.splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
