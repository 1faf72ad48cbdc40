"""sipp runs: one load step as a UAC, the answering UAS instances, and what their files say.

Every sipp gets ``-nostdin`` (no terminal), its own stat file (``-trace_stat``)
and error log (``-trace_err``), a socket buffer of 4 MiB (the default 64 KiB
drops datagrams at thousands of calls a second) and ``-nd``: on a timeout or
an unexpected message sipp would otherwise abort the call by sending a BYE of
its own, which is load the server never asked for. With ``-nd`` such a call
waits for its receive timeout and then counts as failed; the error log says
what came instead (a 503, say) and is summarised into failure kinds.

A UAC step is reaped with ``os.wait4``, which gives its own CPU time; the UAS
instances live through a whole load and are read from ``/proc``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bench.proc import stop_process

__all__ = [
    "SCENARIOS",
    "Account",
    "SippCounts",
    "SippFailed",
    "UasGroup",
    "register_once",
    "run_uac",
    "sipp_version",
    "uas_group",
    "write_injection",
]

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
BUFFER = 4 * 1024 * 1024
"""sipp's socket buffer (``-buff_size``): within net.core.rmem_max here."""
Address = tuple[str, int]


class SippFailed(Exception):
    """sipp could not run (not installed, bad arguments, bind failure)."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    password: str

    def auth(self) -> str:
        """The whole keyword in one CSV field: nesting ``[field]`` inside it fails."""
        return f"[authentication username={self.name} password={self.password}]"


def write_injection(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    """A sipp injection file read in order, one call per line, wrapping around."""
    path.write_text("SEQUENTIAL\n" + "".join(";".join(row) + "\n" for row in rows))
    return path


def sipp_version() -> str:
    try:
        done = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    found = re.search(r"SIPp v[\w.\-]+", done.stdout + done.stderr)
    return found.group(0) if found else "unknown version"


@cache
def _expectations(scenario: Path) -> tuple[str, ...]:
    """What each scenario index waits for or sends, as sipp numbers them (labels aside)."""
    described = []
    for element in ElementTree.parse(scenario).getroot():
        if element.tag == "label":
            continue
        if element.tag == "recv":
            described.append(element.get("response") or element.get("request") or "?")
        else:
            described.append(element.tag)
    return tuple(described)


_UNEXPECTED = re.compile(
    r"on unexpected message for Call-Id '[^']*': while expecting '([^']*)' "
    r"\(index \d+\), received '([^\r\n']*)"
)
_TIMEOUT = re.compile(r"receive timeout on message [^:\n]*:(\d+)")
_RETRANS = re.compile(r"[Mm]ax retrans")
_ERROR_BYTES = 32 * 1024 * 1024


def _failure_kinds(errors: Path, scenario: Path) -> Counter[str]:
    """Events in sipp's error log, by kind: what came unexpectedly, where answers did not."""
    try:
        with errors.open("rb") as source:
            text = source.read(_ERROR_BYTES).decode("utf-8", "replace")
    except OSError:
        return Counter()
    expected = _expectations(scenario)
    kinds: Counter[str] = Counter()
    for match in _UNEXPECTED.finditer(text):
        received = match.group(2)
        what = (
            received[len("SIP/2.0 ") :] if received.startswith("SIP/2.0 ") else received.split()[0]
        )
        kinds[f"got {what} while expecting {match.group(1)}"] += 1
    for match in _TIMEOUT.finditer(text):
        index = int(match.group(1))
        waiting = expected[index] if index < len(expected) else f"index {index}"
        kinds[f"no {waiting} within the receive timeout"] += 1
    if retrans := len(_RETRANS.findall(text)):
        kinds["gave up after the last UDP retransmission"] += retrans
    return kinds


@dataclass(frozen=True, slots=True)
class SippCounts:
    """One UAC run, from its stat file's last line, its error log and its rusage."""

    created: int
    ok: int
    failed: int
    retransmissions: int
    wall: float
    cpu: float
    exit_status: int
    kinds: dict[str, int] = field(default_factory=dict)
    gave_up: bool = False
    """Stopped early: more calls had failed than the step could afford."""

    @property
    def not_ok(self) -> int:
        """Failed, or still unfinished when sipp was stopped."""
        return max(self.created - self.ok, self.failed)


def _last_stats(path: Path) -> dict[str, str]:
    """The last complete line of a stat file (sipp may be writing the next one)."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    header = lines[0].split(";")
    for line in reversed(lines[1:]):
        values = line.split(";")
        if len(values) >= len(header) - 1:
            return dict(zip(header, values, strict=False))
    return {}


def _number(stats: dict[str, str], name: str) -> int:
    try:
        return int(float(stats.get(name, "0") or 0))
    except ValueError:
        return 0


def _reap(
    process: subprocess.Popen[bytes], deadline: float, give_up: Callable[[], bool]
) -> tuple[int, float, bool]:
    """Wait with ``wait4``: (exit status, the process's CPU seconds, whether it was stopped).

    It is killed at the deadline, or as soon as ``give_up()`` (asked twice a second) says so.
    """
    asked = time.monotonic()
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime, False
        now = time.monotonic()
        stop = now >= deadline
        if not stop and now - asked >= 0.5:
            asked, stop = now, give_up()
        if stop:
            process.send_signal(signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime, True
        time.sleep(0.02)


def _common(local_port: int, media_port: int) -> list[str]:
    return [
        "-i", "127.0.0.1", "-p", str(local_port), "-mp", str(media_port),
        "-nostdin", "-buff_size", str(BUFFER),
    ]  # fmt: skip


def run_uac(
    server: Address,
    scenario: Path,
    injection: Path,
    ports: tuple[int, int],
    rate: int,
    calls: int,
    workdir: Path,
    tag: str,
    recv_timeout: float,
    give_up_after: int | None = None,
) -> SippCounts:
    """``calls`` calls at ``rate`` per second from 127.0.0.1:ports[0]; blocks until done.

    sipp stops on its own once every call ended; ``-timeout`` and the deadline
    behind it bound a run whose calls hang (they count as not ok). A run is
    stopped early once more than ``give_up_after`` calls failed (sipp's stat
    file, written every second, tells): the step has failed whatever follows.
    """
    stats, errors = workdir / f"{tag}.csv", workdir / f"{tag}_errors.log"
    limit = max(1000, int(rate * (recv_timeout + 2)))
    budget = calls / max(rate, 1) + recv_timeout + 3
    command = [
        "sipp", f"{server[0]}:{server[1]}", "-sf", str(scenario), "-inf", str(injection),
        *_common(*ports),
        "-m", str(calls), "-r", str(rate), "-rp", "1000", "-l", str(limit),
        "-recv_timeout", str(int(recv_timeout * 1000)), "-timeout", str(int(budget + 1)),
        "-nd", "-trace_stat", "-stf", str(stats), "-fd", "1",
        "-trace_err", "-error_file", str(errors),
    ]  # fmt: skip
    started = time.monotonic()
    with (workdir / f"{tag}.stderr").open("wb") as sink:
        try:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        except OSError as exc:
            raise SippFailed(f"cannot run sipp: {exc}") from None

    def give_up() -> bool:
        if give_up_after is None:
            return False
        return _number(_last_stats(stats), "FailedCall(C)") > give_up_after

    try:
        status, cpu, stopped = _reap(process, started + budget + 10, give_up)
    finally:
        if process.returncode is None:  # interrupted: leave no sipp behind
            process.kill()
            process.wait()
    wall = time.monotonic() - started
    last = _last_stats(stats)
    if not last:
        why = (workdir / f"{tag}.stderr").read_text(errors="replace").strip().splitlines()[-1:]
        raise SippFailed(f"sipp exited with status {status}: {why[0] if why else 'no output'}")
    return SippCounts(
        created=_number(last, "TotalCallCreated"),
        ok=_number(last, "SuccessfulCall(C)"),
        failed=_number(last, "FailedCall(C)"),
        retransmissions=_number(last, "Retransmissions(C)"),
        wall=wall,
        cpu=cpu,
        exit_status=status,
        kinds=dict(_failure_kinds(errors, scenario)),
        gave_up=stopped,
    )


def _merged(runs: Sequence[SippCounts]) -> SippCounts:
    """Several UACs' runs as one: counts and CPU add up, the step lasted the longest."""
    kinds: Counter[str] = Counter()
    for run in runs:
        kinds.update(run.kinds)
    return SippCounts(
        created=sum(run.created for run in runs),
        ok=sum(run.ok for run in runs),
        failed=sum(run.failed for run in runs),
        retransmissions=sum(run.retransmissions for run in runs),
        wall=max(run.wall for run in runs),
        cpu=sum(run.cpu for run in runs),
        exit_status=max(run.exit_status for run in runs),
        kinds=dict(kinds),
        gave_up=any(run.gave_up for run in runs),
    )


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def run_uacs(
    server: Address,
    scenario: Path,
    uacs: Sequence[tuple[Path, tuple[int, int]]],
    rate: int,
    calls: int,
    workdir: Path,
    tag: str,
    recv_timeout: float,
    give_up_after: int,
) -> SippCounts:
    """:func:`run_uac` for each (injection, ports) at once, sharing rate and calls."""
    count = len(uacs)
    runs = [
        (injection, ports, share, quota, f"{tag}-uac{index + 1}")
        for index, ((injection, ports), share, quota) in enumerate(
            zip(uacs, _shares(rate, count), _shares(calls, count), strict=True)
        )
        if share > 0 and quota > 0
    ]
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = [
            pool.submit(
                run_uac,
                server,
                scenario,
                injection,
                ports,
                share,
                quota,
                workdir,
                name,
                recv_timeout,
                give_up_after // len(runs) + 1,
            )  # fmt: skip
            for injection, ports, share, quota, name in runs
        ]
        return _merged([future.result() for future in futures])


def register_once(server: Address, account: Account, ports: tuple[int, int], workdir: Path) -> None:
    """One digest REGISTER of ``account`` from 127.0.0.1:ports[0]; SippFailed unless it got 200."""
    tag = f"register-{account.name}-{ports[0]}"
    injection = write_injection(workdir / f"{tag}.inf", [[account.name, account.auth()]])
    counts = run_uac(server, SCENARIOS / "register.xml", injection, ports, 10, 1, workdir, tag, 3.0)
    if counts.ok != 1:
        kinds = ", ".join(counts.kinds) or f"sipp exit status {counts.exit_status}"
        raise SippFailed(f"REGISTER of {account.name} failed: {kinds}")


@dataclass
class UasGroup:
    """The callees: one sipp UAS per account, each registered from the port it answers on."""

    processes: list[subprocess.Popen[bytes]]
    stats: list[Path]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def dead(self) -> list[int]:
        return [p.returncode for p in self.processes if p.poll() is not None and p.returncode]

    def failed_calls(self) -> int:
        """Calls the UAS instances counted as failed so far (their stat files, once a second)."""
        return sum(_number(_last_stats(path), "FailedCall(C)") for path in self.stats)


@contextmanager
def uas_group(
    server: Address,
    callees: Sequence[Account],
    ports: Sequence[tuple[int, int]],
    workdir: Path,
) -> Iterator[UasGroup]:
    """Register each callee from its (SIP, media) ports, then run its UAS there.

    Give a callee the same ports every time: both servers keep bindings
    across restarts, and a binding left on another port would fork every
    call to a dead UAS as well.
    """
    group = UasGroup([], [])
    try:
        for account, ports_ in zip(callees, ports, strict=True):
            register_once(server, account, ports_, workdir)
            tag = f"uas-{account.name}"
            stats = workdir / f"{tag}.csv"
            command = [
                "sipp", "-sf", str(SCENARIOS / "uas.xml"), *_common(*ports_),
                "-trace_stat", "-stf", str(stats), "-fd", "1",
                "-trace_err", "-error_file", str(workdir / f"{tag}_errors.log"),
            ]  # fmt: skip
            with (workdir / f"{tag}.stderr").open("wb") as sink:
                group.processes.append(
                    subprocess.Popen(
                        command,
                        cwd=workdir,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=sink,
                    )
                )
            group.stats.append(stats)
        time.sleep(0.3)
        if dead := group.dead():
            raise SippFailed(f"a sipp UAS exited at once (status {dead[0]})")
        yield group
    finally:
        for process in group.processes:
            stop_process(process)
