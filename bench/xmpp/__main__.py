"""heron's XMPP server against Prosody: the same loads, one server after the other.

Run from the repository root::

    .venv/bin/python -m bench.xmpp                    # default, both servers
    .venv/bin/python -m bench.xmpp --servers prosody  # Prosody alone
    .venv/bin/python -m bench.xmpp --quick            # smoke check
    .venv/bin/python -m bench.xmpp --install          # apt-get install prosody if missing (root)

Each server gets the same accounts, then five loads, each against a freshly
started server: concurrent logins, one-to-one messages between pairs, fan-out
in one MUC room, idle authenticated connections (resident memory before and
after), and one-to-one messages between two domains, each served by its own
server of that kind, over server-to-server streams (``federation``); ``--loads
login-modern`` adds logins as Conversations does them (``client.modern_login``). The load
runs in worker processes (``client``); the servers' CPU comes from
``/proc/PID/stat`` over each measured window. Everything stays on 127.0.0.1
and every wait is bounded. See bench/README.md for what each figure
means.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from bench import report
from bench.proc import CLOCK_TICK, ServerUnavailable, Worker, cpu_seconds, machine_ticks, tree_cpu
from bench.report import emit
from bench.xmpp import DOMAIN, Account, Deployment, S2s, Served, Server, federation, prosody
from bench.xmpp.federation import Authority, Federation, NameServer
from bench.xmpp.heron import Heron
from bench.xmpp.prosody import Prosody

CLIENT = "bench.xmpp.client"
SETTLE = 2.0
"""Seconds between the last idle login and the second memory reading."""


@dataclass(frozen=True, slots=True)
class Plan:
    logins: int
    """Users logging in at once, in each round."""
    login_rounds: int
    pairs: int
    """Pairs of the one-to-one load, and of the federation load (one user in each domain)."""
    messages: int
    """Deliveries per pair, both ways together."""
    window: int
    """Messages in flight per pair."""
    occupants: int
    room_messages: int
    room_window: int
    """Room messages the sender keeps in flight (it sends the next on each echo)."""
    idle: int
    workers: int
    """Load processes: one Python process cannot keep up with the servers alone."""
    timeout: float
    """Longest wait for a load to finish, seconds."""

    def accounts(self) -> list[Account]:
        count = max(self.logins, 2 * self.pairs, self.occupants, self.idle)
        return [Account(f"user{i}", f"bench-pass-{i}") for i in range(1, count + 1)]

    def describe(self) -> str:
        return (
            f"{self.login_rounds} x {self.logins} concurrent logins; {self.pairs} pairs x "
            f"{self.messages} messages ({self.window} in flight each); room of "
            f"{self.occupants} x {self.room_messages} messages ({self.room_window} in flight); "
            f"{self.idle} idle connections; {self.workers} load processes"
        )


QUICK = Plan(
    logins=100,
    login_rounds=1,
    pairs=20,
    messages=250,
    window=4,
    occupants=20,
    room_messages=250,
    room_window=8,
    idle=200,
    workers=2,
    timeout=60.0,
)
DEFAULT = Plan(
    logins=200,
    login_rounds=3,
    pairs=50,
    messages=1000,
    window=4,
    occupants=50,
    room_messages=1000,
    room_window=8,
    idle=1000,
    workers=2,
    timeout=180.0,
)


# --- measuring --------------------------------------------------------------------------


@dataclass(slots=True)
class Measured:
    """One load on one server: work done, wall time, CPU, what went wrong."""

    work: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    each_server_cpu: list[float] = field(default_factory=list)
    """``server_cpu`` server by server, when a load has two (federation)."""
    client_cpu: float = 0.0
    machine_cpu: float = 0.0
    """All CPUs' busy time from /proc/stat: other work shares the cores too."""
    errors: int = 0
    first_error: str = ""
    slowest: float = 0.0
    overflows: int = 0
    """Listen queue overflows on the machine (any socket) during the windows."""
    kib_per_connection: float | None = None

    @property
    def rate(self) -> float | None:
        return self.work / self.seconds if self.seconds > 0 and self.work else None

    def cpu_per(self, unit: float) -> float | None:
        """Server CPU milliseconds per ``unit`` pieces of work."""
        return self.server_cpu * 1000 * unit / self.work if self.work else None

    def add(self, results: Sequence[dict[str, Any]]) -> None:
        for result in results:
            self.work += int(result["delivered"])
            self.errors += int(result["errors"])
            self.first_error = self.first_error or str(result["first_error"])
            self.slowest = max(self.slowest, float(result.get("slowest", 0.0)))

    def detail(self, unit: str) -> str:
        def cores(cpu: float) -> str:
            return f"{cpu / self.seconds:.2f}" if self.seconds else "-"

        servers = cores(self.server_cpu)
        if len(self.each_server_cpu) > 1:
            servers = f"{servers} ({' + '.join(cores(cpu) for cpu in self.each_server_cpu)})"
        text = (
            f"{self.work:,} {unit} in {self.seconds:.2f} s; cores busy: server {servers}, "
            f"load processes {cores(self.client_cpu)}, the machine {cores(self.machine_cpu)}"
        )
        if self.slowest:
            text += f"; slowest login {self.slowest:.2f} s"
        if self.overflows:
            text += f"; {self.overflows:,} SYNs dropped for a full listen queue"
        if self.errors:
            text += f"; {self.errors:,} errors, first: {self.first_error}"
        return text


def _split(accounts: Sequence[Account], parts: int, pairs: bool = False) -> list[list[Account]]:
    """Accounts dealt into ``parts`` contiguous slices (of whole pairs when ``pairs``)."""
    step = 2 if pairs else 1
    units = [list(accounts[i : i + step]) for i in range(0, len(accounts), step)]
    slices: list[list[Account]] = [[] for _ in range(max(1, min(parts, len(units))))]
    for index, unit in enumerate(units):
        slices[index * len(slices) // len(units)].extend(unit)
    return slices


class Load:
    """The workers of one load on its running servers, and the measured windows."""

    def __init__(self, served: Served, plan: Plan) -> None:
        self.served = served
        self.plan = plan
        self.workers: list[Worker] = []
        self.measured = Measured()

    def spawn(self, role: str, accounts: list[Account], **settings: Any) -> Worker:
        worker = Worker.spawn(
            CLIENT,
            {
                "role": role,
                "servers": self.served.addresses,
                "accounts": [[a.name, a.password, a.domain] for a in accounts],
                "timeout": self.plan.timeout,
                **settings,
            },
        )
        self.workers.append(worker)
        return worker

    def ready(self, workers: Sequence[Worker] | None = None) -> None:
        for worker in workers if workers is not None else self.workers:
            worker.wait_ready(self.plan.timeout)

    def window(self) -> list[dict[str, Any]]:
        """Go, collect every worker's result; the server's and the workers' CPU in between."""
        servers = [running.pid for running in self.served.servers]
        clients = [worker.process.pid for worker in self.workers]
        machine_before = machine_ticks()
        servers_before = [tree_cpu([pid]) for pid in servers]
        clients_before = tree_cpu(clients)
        overflows = listen_overflows()
        started = time.monotonic()
        for worker in self.workers:
            worker.go()
        results = [worker.result(self.plan.timeout + 30) for worker in self.workers]
        servers_after, clients_after = [tree_cpu([pid]) for pid in servers], tree_cpu(clients)
        busy = machine_ticks()[0] - machine_before[0]
        self.measured.machine_cpu += busy * CLOCK_TICK
        self.measured.overflows += listen_overflows() - overflows
        last = max((float(result["last"]) for result in results), default=0.0)
        self.measured.seconds += max(last, started) - started
        each = [cpu_seconds(*pair) for pair in zip(servers_before, servers_after, strict=True)]
        self.measured.server_cpu += sum(each)
        self.measured.each_server_cpu = [
            total + cpu
            for total, cpu in zip_longest(self.measured.each_server_cpu, each, fillvalue=0.0)
        ]
        self.measured.client_cpu += cpu_seconds(clients_before, clients_after)
        self.measured.add(results)
        return results

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


def listen_overflows() -> int:
    """The kernel's count of connections dropped for a full listen queue, all sockets."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return 0


def resident_kib(root: int) -> int:
    """VmRSS summed over the process tree, from /proc/PID/status."""
    total = 0
    for pid in tree_cpu([root]):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def load_logins(load: Load, accounts: list[Account]) -> None:
    """Rounds of concurrent logins; the users log out between rounds, outside the windows."""
    for part in _split(accounts[: load.plan.logins], load.plan.workers):
        load.spawn("logins", part)
    load.ready()
    for _ in range(load.plan.login_rounds):
        load.window()
        load.ready()


def load_modern(load: Load, accounts: list[Account]) -> None:
    """Rounds of concurrent logins as Conversations logs in, by pairs of contacts (each
    waits for its contact's PEP item): a pair stays in one load process, which befriends it."""
    users = accounts[: load.plan.logins - load.plan.logins % 2]
    for part in _split(users, load.plan.workers, pairs=True):
        load.spawn("modern", part)
    load.ready()
    for _ in range(load.plan.login_rounds):
        load.window()
        load.ready()


def load_messages(load: Load, accounts: list[Account]) -> None:
    users = accounts[: 2 * load.plan.pairs]
    for part in _split(users, load.plan.workers, pairs=True):
        load.spawn("messages", part, messages=load.plan.messages, window=load.plan.window)
    load.ready()
    load.window()


def load_muc(load: Load, accounts: list[Account]) -> None:
    """The first worker's first user creates the room and sends; the others join after it."""
    parts = _split(accounts[: load.plan.occupants], load.plan.workers)
    settings = {"messages": load.plan.room_messages, "window": load.plan.room_window}
    first = load.spawn("muc", parts[0], sender=True, **settings)
    load.ready([first])
    others = [load.spawn("muc", part, sender=False, **settings) for part in parts[1:]]
    load.ready(others)
    load.window()


def load_idle(load: Load, accounts: list[Account]) -> None:
    """Resident memory before and after this many authenticated connections."""
    time.sleep(SETTLE)
    before = resident_kib(load.served.servers[0].pid)
    for part in _split(accounts[: load.plan.idle], load.plan.workers):
        load.spawn("idle", part, concurrency=25)
    load.ready()
    load.window()
    time.sleep(SETTLE)
    after = resident_kib(load.served.servers[0].pid)
    if load.measured.work:
        load.measured.kib_per_connection = (after - before) / load.measured.work
    emit(f"    resident memory {before:,} KiB before, {after:,} KiB after")


@dataclass(frozen=True, slots=True)
class LoadKind:
    name: str
    unit: str
    run: Callable[[Load, list[Account]], None]
    federated: bool = False
    """Two servers in two domains (``Federation``), else one server alone."""


LOADS = {
    "logins": LoadKind("logins", "logins", load_logins),
    "messages": LoadKind("one-to-one messages", "messages delivered", load_messages),
    "muc": LoadKind("MUC fan-out", "room deliveries", load_muc),
    "idle": LoadKind("idle connections", "connections", load_idle),
    "federation": LoadKind(
        "messages between two domains", "messages delivered", load_messages, federated=True
    ),
    "login-modern": LoadKind("modern logins", "logins", load_modern),
}
MODERN = "login-modern"
"""Needs message archives: asking for it turns ``--archive`` on for the whole run."""
DEFAULT_LOADS = [name for name in LOADS if name != MODERN]


# --- reporting --------------------------------------------------------------------------


@dataclass(slots=True)
class ServerFigures:
    loads: dict[str, Measured] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    load: str
    value: Callable[[Measured], float | None]
    style: str


FIGURES = (
    Figure("logins/s", "logins", lambda m: m.rate, "{:,.0f}"),
    Figure("one-to-one messages/s", "messages", lambda m: m.rate, "{:,.0f}"),
    Figure("MUC deliveries/s", "muc", lambda m: m.rate, "{:,.0f}"),
    Figure("KiB per idle connection", "idle", lambda m: m.kib_per_connection, "{:,.1f}"),
    Figure("federated messages/s", "federation", lambda m: m.rate, "{:,.0f}"),
    Figure("modern logins/s (SM, carbons, MAM, PEP)", MODERN, lambda m: m.rate, "{:,.0f}"),
    Figure("server CPU ms per login", "logins", lambda m: m.cpu_per(1), "{:,.2f}"),
    Figure("server CPU us per message", "messages", lambda m: m.cpu_per(1000), "{:,.0f}"),
    Figure("server CPU us per MUC delivery", "muc", lambda m: m.cpu_per(1000), "{:,.1f}"),
    Figure(
        "servers' CPU us per federated message", "federation", lambda m: m.cpu_per(1000), "{:,.0f}"
    ),
    Figure("server CPU ms per modern login", MODERN, lambda m: m.cpu_per(1), "{:,.2f}"),
)
LEGEND = (
    "Rates: higher is better; memory and CPU: lower is better. '!' marks a load with errors\n"
    "(see its line above), '-' a server or load not run. CPU is utime+stime of the server's\n"
    "process tree over the measured windows (federated: both servers' summed): steadier than\n"
    "rates on a shared machine."
)


def _cell(figure: Figure, figures: ServerFigures) -> tuple[float | None, str]:
    measured = figures.loads.get(figure.load)
    if measured is None:
        return None, "-"
    value = figure.value(measured)
    if value is None:
        return None, "failed"
    return value, figure.style.format(value) + ("!" if measured.errors else "")


def table(heron: ServerFigures, reference: ServerFigures) -> str:
    rows: list[report.Row] = []
    cells: dict[int, tuple[str, str]] = {}
    for index, figure in enumerate(FIGURES):
        (h, h_cell), (p, p_cell) = _cell(figure, heron), _cell(figure, reference)
        rows.append((figure.label, h, p, figure.style))
        cells[index] = (h_cell, p_cell)
    return report.table("prosody", rows, LEGEND, cells)


# --- running ----------------------------------------------------------------------------


@dataclass
class Alone:
    """One server in the bench's one domain, as the loads other than federation run it."""

    server: Server

    @property
    def name(self) -> str:
        return self.server.name

    def prepare(self, accounts: list[Account]) -> None:
        self.server.prepare(accounts)

    def version(self) -> str:
        return self.server.version()

    @contextmanager
    def running(self) -> Iterator[Served]:
        with self.server.running() as running:
            yield Served((running,), {self.server.domain: running.address})


def accounts_for(federated: bool, plan: Plan) -> list[Account]:
    return federation.accounts(plan.pairs) if federated else plan.accounts()


def prepare(deployment: Deployment, accounts: list[Account], what: str) -> str:
    """Accounts and configuration, then one start: a server that cannot run stops the bench."""
    started = time.monotonic()
    deployment.prepare(accounts)
    took = time.monotonic() - started
    with deployment.running():
        pass
    version = deployment.version()
    emit(f"{version}{what}: {len(accounts):,} accounts set up in {took:.1f} s; starts, answers")
    return version


def run_server(deployments: dict[bool, Deployment], plan: Plan, kinds: list[str]) -> ServerFigures:
    """Each load on freshly started servers: what one load leaves must not weigh on the next.
    ``deployments`` is keyed by ``LoadKind.federated``."""
    figures = ServerFigures()
    for kind in kinds:
        spec = LOADS[kind]
        deployment = deployments[spec.federated]
        with deployment.running() as served:
            load = Load(served, plan)
            try:
                spec.run(load, accounts_for(spec.federated, plan))
            except (RuntimeError, TimeoutError) as exc:
                emit(f"  {spec.name}: FAILED, {exc}")
                figures.notes.append(f"{spec.name}: {exc}")
                continue
            finally:
                load.close()
        figures.loads[kind] = load.measured
        emit(f"  {spec.name} ({deployment.name}): {load.measured.detail(spec.unit)}")
    return figures


Maker = Callable[[Path, str, S2s | None], Server]
"""A server of one kind: its directory, its domain, and how it federates (None: it does not)."""


def _deployments(
    name: str,
    make: Maker,
    workdir: Path,
    taken: set[int],
    alone: bool,
    world: tuple[Authority, NameServer] | None,
) -> dict[bool, Deployment]:
    """What the loads of one kind run against, keyed by ``LoadKind.federated``: the server
    alone if a load needs it, two federating servers if ``world`` is given."""
    found: dict[bool, Deployment] = {}
    if alone:
        found[False] = Alone(make(workdir / name, DOMAIN, None))
    if world is not None:
        found[True] = Federation.build(name, workdir / f"{name}-federation", taken, *world, make)
    return found


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.xmpp", description=(__doc__ or "").split("\n")[0]
    )
    report.common_options(
        parser, quick="smaller loads, one login round: about 1 minute", reference="prosody"
    )
    parser.add_argument(
        "--install", action="store_true", help="apt-get install prosody if missing (root)"
    )
    parser.add_argument(
        "--loads",
        default=",".join(DEFAULT_LOADS),
        help=f"which loads (default {','.join(DEFAULT_LOADS)}; also {MODERN}: logins as "
        "Conversations does, with SM, carbons, a MAM query and PEP; it turns --archive on)",
    )
    report.plan_options(parser, DEFAULT)
    parser.add_argument(
        "--prosody-nagle",
        action="store_true",
        help="leave Nagle's algorithm on in Prosody, its default (adds ~40 ms per round trip "
        "that follows another answer: rates then measure that, not the server)",
    )
    parser.add_argument(
        "--archive",
        action="store_true",
        help="message archives on in both (heron's xmpp.archive, Prosody's mod_mam and "
        "muc_mam): each one-to-one message is then two archive writes, a room message one",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = report.plan_from(args, QUICK, DEFAULT)
    order = report.server_order(args, "prosody")
    kinds = [name.strip() for name in args.loads.split(",") if name.strip()]
    if not set(kinds) <= set(LOADS):
        raise SystemExit(f"--loads takes {', '.join(LOADS)}")
    if "prosody" in order and not prosody.installed():
        if not args.install:
            raise SystemExit("prosody is not installed: run with --install as root")
        emit("installing prosody")
        if (why := prosody.install()) is not None:
            raise SystemExit(why)
    archive = args.archive or MODERN in kinds
    if archive and not args.archive:
        emit(f"{MODERN}: message archives on in both servers for this run (--archive)")
    emit(f"loads: {plan.describe()}; {os.cpu_count()} cores")
    results = {"heron": ServerFigures(), "prosody": ServerFigures()}
    needed = {LOADS[kind].federated for kind in kinds}
    with report.run_directory("bench-xmpp-", args.keep) as workdir, ExitStack() as stack:
        os.chmod(workdir, 0o711)  # Prosody runs as its own user below it
        taken: set[int] = set()
        makers: dict[str, Maker] = {
            "heron": lambda path, domain, s2s: Heron(path, taken, domain, s2s, archive),
            "prosody": lambda path, domain, s2s: Prosody(
                path, taken, args.prosody_nagle, domain, s2s, archive
            ),
        }
        current = order[0]
        try:
            world: tuple[Authority, NameServer] | None = None
            if True in needed:
                nameserver = NameServer(workdir)
                stack.callback(nameserver.close)
                world = (Authority(workdir / "ca"), nameserver)
            deployments = {
                name: _deployments(name, makers[name], workdir, taken, False in needed, world)
                for name in order
            }
            versions = {}
            for current in order:
                emit(f"{current}: setting up")
                for is_federated, deployment in deployments[current].items():
                    what = " in two domains" if is_federated else ""
                    versions[current] = prepare(deployment, accounts_for(is_federated, plan), what)
            for current in order:
                emit(f"{versions[current]}:")
                results[current] = run_server(deployments[current], plan, kinds)
        except ServerUnavailable as exc:
            raise SystemExit(f"{current}: {exc}") from None
    emit()
    emit(table(results["heron"], results["prosody"]))
    for name in order:
        for note in results[name].notes:
            emit(f"{name}: {note.splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
