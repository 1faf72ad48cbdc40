"""The rate ramp: fixed-rate sipp steps, each faster than the last, then a hold.

A step is one sipp UAC run of ``rate * step_seconds`` calls at ``rate`` per
second (open loop: sipp starts calls on schedule whatever the server does).
Ramp steps follow one another without a pause, multiplying the rate by
``factor`` while a step passes, then try ``refine`` geometric midpoints
between the last pass and the first failure. The hold then runs the best
rate for ``hold_seconds`` on a freshly restarted server: long enough for
state a server keeps per request to build up from its own load (heron keeps
every finished transaction 32 s), and clean of what the ramp left.

A step passes when under 1 % of its calls failed or did not finish, and it
kept up when its calls completed at no less than 90 % of the target rate (a
step that passed without keeping up had a queue growing somewhere: a longer
one would have failed). A step that has failed more than 1 % of its calls
is stopped there. The figure for a load is the highest completion rate
among steps that passed and kept up; if the hold failed, the table marks it.
The server's CPU per unit is taken over all of those steps together
(retransmissions of a server falling behind are not charged to it). Server
CPU is utime+stime of its process tree from ``/proc``, read just before and
just after each step, so set-up and restarts are not in it.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.proc import cpu_seconds, dropped_between, free_port, tree_cpu, udp_drops
from bench.sip.servers import RunningServer
from bench.sip.sipp import SippCounts, UasGroup, run_uacs, write_injection

__all__ = [
    "KEEP_UP",
    "MAX_FAILED",
    "Load",
    "LoadResult",
    "Plan",
    "Runner",
    "Step",
    "log_problems",
]

MAX_FAILED = 0.01
"""A step passes with fewer than this share of its calls failed or unfinished."""
KEEP_UP = 0.9
"""...and calls completed at this share of the target rate or more."""


_LEVELS = re.compile(rb"\b(ERROR|WARNING|CRITICAL|CRIT|ALERT)\b")
_NOISE = (
    re.compile(r"^\s*\d+\(\d+\)\s*"),  # Kamailio's "rank(pid) "
    re.compile(r"\{[^}]*\}\s*"),  # Kamailio's log_prefix: "{type cseq method call-id} "
    re.compile(r"^\d{4}-\d\d-\d\d [\d:,.]+\s+"),  # heron's timestamp
    re.compile(r"\b\d+-\d+@127\.0\.0\.1\b"),  # sipp Call-IDs
)
_LOG_KINDS = 200


def log_problems(log: Path, offset: int) -> dict[str, int]:
    """Error and warning lines a server logged after ``offset``, by their text.

    Read line by line: Kamailio's packaged config logs an accounting line per
    INVITE and BYE, tens of megabytes in a hold.
    """
    found: Counter[str] = Counter()
    try:
        with log.open("rb") as source:
            source.seek(offset)
            for raw in source:
                if not _LEVELS.search(raw):
                    continue
                line = raw.decode("utf-8", "replace")
                for noise in _NOISE:
                    line = noise.sub("", line)
                key = line.strip()[:120]
                if key in found or len(found) < _LOG_KINDS:
                    found[key] += 1
    except OSError:
        pass
    return dict(found)


def _log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True, slots=True)
class Plan:
    """The loads, identical for both servers."""

    users: int
    """Accounts that register (register load) and call (call load)."""
    callees: int
    """Accounts answering calls, one sipp UAS each."""
    start_rate: int
    factor: float
    max_rate: int
    step_seconds: float
    refine: int
    """Midpoint steps between the last passing and the first failing rate."""
    hold_seconds: float
    """The ramp's peak rate again, this long, on a restarted server; 0 for none."""
    holds: int
    """Holds to try, each ``factor`` times slower than the last, until one passes."""
    recv_timeout: float
    """Seconds sipp waits for each answer (it retransmits meanwhile) before failing the call."""
    match_seconds: float
    """Then both servers held at one common rate this long, each restarted; 0 for none."""
    uacs: int = 1
    """sipp UACs sharing each step, the users dealt out among them, each from its own port.
    heron's UDP workers each take the datagrams of the source ports its number names (port
    modulo the count), so one UAC would load one worker; Kamailio's all read one socket."""

    def describe(self) -> str:
        hold = (
            f", then hold the peak {self.hold_seconds:g} s (up to {self.holds} tries, "
            f"each {self.factor:g}x slower)"
            if self.hold_seconds and self.holds
            else ""
        )
        if self.match_seconds:
            hold += f"; then both held {self.match_seconds:g} s at a common rate"
        return (
            f"{self.users} users registering/calling from {self.uacs} sipp UAC(s), "
            f"{self.callees} UAS callee(s); "
            f"ramp {self.start_rate}/s x{self.factor:g} up to {self.max_rate:,}/s, "
            f"{self.step_seconds:g} s steps, {self.refine} refining step(s){hold}; "
            f"sipp receive timeout {self.recv_timeout:g} s"
        )


@dataclass(frozen=True, slots=True)
class Load:
    """A sipp UAC scenario with its injection rows."""

    name: str
    """What a successful sipp call is: "registrations" or "calls"."""
    scenario: Path
    rows: Sequence[Sequence[str]]
    pause: float
    """Seconds of ``<pause>`` in one call: not counted against the rate."""


@dataclass(frozen=True, slots=True)
class Step:
    target: int
    seconds: float
    hold: bool
    counts: SippCounts
    server_cpu: float
    uas_cpu: float
    busy: float
    """Cores busy on the whole machine: every process's CPU (from pid 1's tree) over the step.
    (``/proc/stat`` was seen here to read near zero over busy 2 s windows.)"""
    pause: float
    log: dict[str, int] = field(default_factory=dict)
    """Errors and warnings the server logged during the step."""
    dropped: int = 0
    """Datagrams the kernel dropped on the server's sockets during the step (a full
    receive buffer, /proc/net/udp): each comes back as a sipp retransmission."""

    @property
    def planned(self) -> int:
        return max(1, round(self.target * self.seconds))

    @property
    def failure(self) -> float:
        """Share of the planned calls that failed, did not finish or were never started."""
        return 1 - min(self.counts.ok, self.planned) / self.planned

    @property
    def passed(self) -> bool:
        return self.failure < MAX_FAILED

    @property
    def achieved(self) -> float:
        """Completed calls per second: sipp's running time, less the scenario's pauses."""
        return self.counts.ok / max(self.counts.wall - self.pause, 1e-3)

    @property
    def kept_up(self) -> bool:
        return self.achieved >= KEEP_UP * self.target

    def share(self, cpu: float) -> str:
        return f"{cpu / self.counts.wall:.0%}"

    def describe(self) -> str:
        kind = "hold" if self.hold else "step"
        counts = self.counts
        text = (
            f"{kind} {self.target:,}/s x {self.seconds:g} s: {counts.ok:,} ok of {self.planned:,} "
            f"({self.failure:.2%} not ok, {counts.retransmissions:,} retransmissions), "
            f"{self.achieved:,.0f}/s in {counts.wall:.1f} s; "
            f"CPU (of one core): server {self.share(self.server_cpu)}, "
            f"sipp UAC {self.share(counts.cpu)}"
        )
        if self.uas_cpu:
            text += f", UAS {self.share(self.uas_cpu)}"
        text += f"; machine {self.busy:.2f} cores busy; server socket drops {self.dropped:,}"
        if counts.kinds:
            worst = ", ".join(f"{n:,} x {k}" for k, n in Counter(counts.kinds).most_common(3))
            text += f"\n      sipp errors: {worst}"
        if self.log:
            worst = "; ".join(f"{n:,} x {k}" for k, n in Counter(self.log).most_common(3))
            text += f"\n      server log: {worst}"
        return text


def _top(kinds: dict[str, int], count: int) -> str:
    return ", ".join(f"{n:,} x {k}" for k, n in Counter(kinds).most_common(count))


@dataclass(frozen=True, slots=True)
class LoadResult:
    name: str
    steps: list[Step]
    processes: int
    """The server's process count when the load started."""
    uas_failed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def passing(self) -> list[Step]:
        return [step for step in self.steps if step.passed]

    @property
    def steady(self) -> list[Step]:
        """Steps that passed and kept up, or if none did, those that passed."""
        return [step for step in self.passing if step.kept_up] or self.passing

    @property
    def peak(self) -> Step | None:
        """The ramp's fastest step that passed and kept up (failing that, that passed).

        A step that passed without keeping up had a server (or sipp) falling
        behind: its queue was growing and a longer step would have failed.
        """
        ramp = [step for step in self.steady if not step.hold]
        return max(ramp, key=lambda step: step.achieved, default=None)

    @property
    def holds(self) -> list[Step]:
        return [step for step in self.steps if step.hold]

    @property
    def sustained(self) -> bool | None:
        """Whether a hold passed; None when there was no hold."""
        return any(step.passed for step in self.holds) if self.holds else None

    @property
    def rate(self) -> float | None:
        """The fastest hold that passed; without one, the ramp's peak (see :attr:`sustained`)."""
        held = [step for step in self.holds if step.passed]
        best = max(held, key=lambda step: step.achieved, default=None) or self.peak
        return best.achieved if best is not None else None

    def cpu_ms_per(self, units: int) -> float | None:
        """Server CPU milliseconds per ``units`` successes, over the :attr:`steady` steps."""
        ok = sum(step.counts.ok for step in self.steady)
        cpu = sum(step.server_cpu for step in self.steady)
        return cpu * 1000 * units / ok if ok else None

    def _use(self, step: Step, cores: int) -> str:
        """Who used the CPU in a step, and what of it was saturated."""
        wall = step.counts.wall
        server, sipp, uas = step.server_cpu / wall, step.counts.cpu / wall, step.uas_cpu / wall
        text = f"server {server:.2f} cores, sipp UAC {sipp:.0%}"
        text += f", UAS {uas:.0%}" if step.uas_cpu else ""
        text += f", machine {step.busy:.2f} of {cores} cores busy"
        full = []
        if self.processes == 1 and server >= 0.85:
            full.append("the server's one process")
        elif server >= 0.85 * cores:
            full.append("the server")
        if sipp >= 0.85:
            full.append("sipp's UAC")
        if step.busy >= 0.9 * cores:
            full.append("the machine")
        return text + (f": {' and '.join(full)} saturated" if full else "")

    def limits(self, cores: int) -> str:
        """The peak, what the first failing step ran into, and whether the holds held."""
        peak = self.peak
        if peak is None:
            first = self.steps[0] if self.steps else None
            if first is None:
                return "no step ran"
            why = _top(first.counts.kinds, 2) or "calls unfinished"
            return f"even {first.target:,}/s failed ({first.failure:.1%} not ok: {why})"
        lines = [f"peak {peak.achieved:,.0f}/s ({self._use(peak, cores)})"]
        failing = [s for s in self.steps if not s.hold and not (s.passed and s.kept_up)]
        if failing:
            first = min(failing, key=lambda step: step.target)
            why = _top(first.counts.kinds, 2) or ("fell behind" if first.passed else "unfinished")
            if first.log:
                why += f"; server log: {_top(first.log, 1)}"
            lines.append(
                f"at {first.target:,}/s {first.failure:.1%} not ok, {first.achieved:,.0f}/s "
                f"completed ({self._use(first, cores)}); {why}"
            )
        for hold in self.holds:
            if hold.passed:
                lines.append(
                    f"held {hold.target:,}/s for {hold.seconds:g} s ({hold.achieved:,.0f}/s)"
                )
                continue
            why = _top(hold.counts.kinds, 2) or "unfinished"
            if hold.log:
                why += f"; server log: {_top(hold.log, 1)}"
            lines.append(
                f"did NOT hold {hold.target:,}/s: {hold.failure:.1%} not ok, stopped after "
                f"{hold.counts.wall:.0f} s of {hold.seconds:g} ({why})"
            )
        return "\n    ".join(lines)


def _port_of(index: int, count: int, taken: set[int]) -> int:
    """A free port equal to ``index`` modulo ``count``: the UAC's own heron worker when
    ``count`` is the number of workers (``heron.sip.workers``)."""
    for _ in range(100):
        port = free_port(taken)
        if port % count == index:
            return port
    raise RuntimeError(f"no free port equal to {index} modulo {count}")


class Runner:
    """Runs the steps of one load and keeps them; the server may be restarted in between."""

    def __init__(
        self, load: Load, plan: Plan, workdir: Path, taken: set[int], emit: Callable[[str], None]
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.load, self.plan, self.workdir, self.emit = load, plan, workdir, emit
        count = max(1, min(plan.uacs, len(load.rows)))
        # One port per UAC, and each user always on the same one: one binding per user.
        self.uacs = [
            (
                write_injection(workdir / f"{load.name}-{index + 1}.inf", load.rows[index::count]),
                (_port_of(index, count, taken), free_port(taken)),
            )
            for index in range(count)
        ]
        self.steps: list[Step] = []
        self.processes = 0
        self.uas_failed = 0

    def result(self) -> LoadResult:
        return LoadResult(self.load.name, list(self.steps), self.processes, self.uas_failed)

    def step(
        self,
        server: RunningServer,
        uas: UasGroup | None,
        rate: int,
        seconds: float,
        hold: bool = False,
    ) -> Step:
        """One sipp run at ``rate`` for ``seconds``, with the server's CPU and log around it."""
        self.processes = self.processes or len(tree_cpu([server.pid]))
        calls = max(1, round(rate * seconds))
        uas_pids = uas.pids if uas is not None else []
        server_before, uas_before = tree_cpu([server.pid]), tree_cpu(uas_pids)
        machine_before, started = tree_cpu([1]), time.monotonic()
        offset, drops_before = _log_size(server.log), udp_drops([server.pid])
        counts = run_uacs(
            server.address,
            self.load.scenario,
            self.uacs,
            rate,
            calls,
            self.workdir,
            f"{self.load.name}-{len(self.steps) + 1:02d}-{rate}",
            self.plan.recv_timeout,
            give_up_after=int(calls * MAX_FAILED) + 1,
        )
        wall = time.monotonic() - started
        server_after, uas_after = tree_cpu([server.pid]), tree_cpu(uas_pids)
        result = Step(
            target=rate,
            seconds=seconds,
            hold=hold,
            counts=counts,
            server_cpu=cpu_seconds(server_before, server_after),
            uas_cpu=cpu_seconds(uas_before, uas_after),
            busy=cpu_seconds(machine_before, tree_cpu([1])) / wall,
            pause=self.load.pause,
            log=log_problems(server.log, offset),
            dropped=dropped_between(drops_before, udp_drops([server.pid])),
        )
        self.steps.append(result)
        self.emit(f"    {result.describe()}")
        return result

    def ramp(self, server: RunningServer, uas: UasGroup | None) -> None:
        """Steps up by ``factor`` until one fails or falls behind, then the refining steps."""
        plan = self.plan
        good: Step | None = None
        bad: Step | None = None
        rate = plan.start_rate
        while rate <= plan.max_rate:
            done = self.step(server, uas, rate, plan.step_seconds)
            if not (done.passed and done.kept_up):
                bad = done
                break
            good = done
            rate = math.ceil(rate * plan.factor)
        for _ in range(plan.refine):
            if good is None or bad is None:
                break
            middle = round(math.sqrt(good.target * bad.target))
            if middle < good.target * 1.1:
                break
            done = self.step(server, uas, middle, plan.step_seconds)
            if done.passed and done.kept_up:
                good = done
            else:
                bad = done
        if uas is not None:
            self.uas_failed += uas.failed_calls()

    def hold_rates(self) -> list[int]:
        """The rates to hold, in order: the ramp's peak, then down by ``factor`` each time."""
        peak = self.result().peak
        if peak is None or self.plan.hold_seconds <= 0:
            return []
        rates = [peak.target]
        while len(rates) < self.plan.holds:
            lower = math.floor(rates[-1] / self.plan.factor)
            if lower < 1:
                break
            rates.append(lower)
        return rates

    def hold(self, server: RunningServer, uas: UasGroup | None, rate: int) -> Step:
        """``rate`` for ``hold_seconds``, on the (fresh) server given."""
        done = self.step(server, uas, rate, self.plan.hold_seconds, hold=True)
        if uas is not None:
            self.uas_failed += uas.failed_calls()
        return done
