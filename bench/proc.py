"""Processes: CPU time of a process tree, free ports, and load workers on a leash.

Server CPU is read from ``/proc/PID/stat`` (utime + stime, plus cutime +
cstime so that reaped children still count) summed over the server's whole
process tree: heron may fork several TURN workers, coturn runs threads, which
the kernel already sums into the thread-group leader's line. Ticks are 10 ms
here, so every measured window must hold at least a few hundred milliseconds
of server CPU to mean anything.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CLOCK_TICK",
    "REPO",
    "Address",
    "CpuSnapshot",
    "RunningServer",
    "ServerUnavailable",
    "Worker",
    "busy_cores",
    "cpu_seconds",
    "dropped_between",
    "ephemeral_range",
    "free_port",
    "log_tail",
    "machine_ticks",
    "read_settings",
    "say",
    "stop_process",
    "wait_ready",
    "tree_cpu",
    "udp_drops",
    "wait_go",
    "wait_release",
]

CLOCK_TICK = 1 / os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]
"""The repository root: workers run with it as working directory so ``bench`` imports."""


def _stat_fields(pid: int) -> list[str] | None:
    """The fields after ``(comm)``; comm may hold spaces and parentheses, so cut at the last ')'."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def udp_drops(roots: Iterable[int]) -> dict[int, int]:
    """Datagrams the kernel dropped on each UDP socket of the processes under ``roots``,
    by socket inode: the ``drops`` column of /proc/net/udp and udp6 (a full receive
    buffer, mostly), which the socket keeps for its whole life."""
    inodes: set[int] = set()
    for root in roots:
        for pid in _tree(root):
            inodes |= _socket_inodes(pid)
    drops: dict[int, int] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) in inodes:
                drops[int(fields[9])] = int(fields[-1])
    return drops


def dropped_between(before: Mapping[int, int], after: Mapping[int, int]) -> int:
    """Drops on sockets seen in ``after`` since ``before`` (a new socket counts from zero)."""
    return sum(value - before.get(inode, 0) for inode, value in after.items())


CpuSnapshot = Mapping[int, int]
"""Clock ticks (user + system, own + reaped children) per process id."""


def tree_cpu(roots: Iterable[int]) -> CpuSnapshot:
    """Ticks of every process under ``roots``, taken now."""
    snapshot: dict[int, int] = {}
    for root in roots:
        for pid in _tree(root):
            fields = _stat_fields(pid)
            if fields is not None:
                snapshot[pid] = sum(int(value) for value in fields[11:15])
    return snapshot


def cpu_seconds(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """CPU seconds spent between two snapshots; a process born in between counts from zero."""
    ticks = sum(value - before.get(pid, 0) for pid, value in after.items())
    return ticks * CLOCK_TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs from /proc/stat: did the machine itself run out?"""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(before: tuple[int, int], after: tuple[int, int], seconds: float) -> float:
    """How many cores were busy on average between two ``machine_ticks`` readings."""
    return (after[0] - before[0]) * CLOCK_TICK / seconds if seconds > 0 else 0.0


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for client ports, which relay ports must stay out of."""
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port(taken: set[int], low: int = 20000, high: int = 23998) -> int:
    """A port free for UDP and TCP, with the next one free too (coturn's alternate port).

    Drawn below the relay range and the ephemeral range, so neither a relay
    nor a client socket can take it between the check and the server's bind.
    """
    for _ in range(200):
        port = random.randint(low, high)
        if {port, port + 1} & taken:
            continue
        if _bindable(port) and _bindable(port + 1):
            taken.update({port, port + 1})
            return port
    raise RuntimeError(f"no free port pair in {low}-{high}")


def stop_process(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL: a server that hangs on exit must not hang the run."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


@dataclass
class Worker:
    """A load-generating child process driven over its stdin and stdout.

    The child sets up (allocations, channels), writes ``ready``, waits for
    ``go`` on stdin, runs its bounded load and writes one JSON line. The split
    lets the parent take the server's CPU snapshot after every worker's
    set-up and just before the load starts.
    """

    process: subprocess.Popen[bytes]
    pending: bytes = b""

    @classmethod
    def spawn(cls, module: str, settings: Mapping[str, Any]) -> Worker:
        process = subprocess.Popen(
            [sys.executable, "-m", module, json.dumps(settings)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        return cls(process)

    def _line(self, timeout: float) -> str:
        """The next line, read with our own buffer so that ``select`` can bound the wait."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"worker gave no answer in {timeout:.0f} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"worker exited with status {self.process.wait()}")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode().strip()

    def wait_ready(self, timeout: float) -> None:
        line = self._line(timeout)
        if line != "ready":
            raise RuntimeError(f"worker failed to set up: {line}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self._line(timeout))
        return answer

    def close(self, grace: float = 10.0) -> None:
        """Let the worker finish (it releases its allocations after reporting), then stop it.

        Killing it at once would leak its allocations on the server for their
        whole lifetime, and a later client reusing one of their ports would
        get 437 Allocation Mismatch.
        """
        if self.process.stdin is not None:
            self.process.stdin.close()  # a worker still waiting for go exits on EOF
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            stop_process(self.process)


def read_settings() -> dict[str, Any]:
    """The child's settings, passed as one JSON argument."""
    settings: dict[str, Any] = json.loads(sys.argv[1])
    return settings


def say(line: str) -> None:
    """One line to the parent, flushed at once: the parent is blocked reading it."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_go() -> None:
    """Block until the parent says go; end quietly if it closed our stdin instead."""
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(0)


def wait_release() -> None:
    """After the result, block until the parent closes our stdin: it reads the kernel's
    per-socket counters first, which go with the sockets a release closes."""
    sys.stdin.read()


class ServerUnavailable(Exception):
    """The server is not installed, did not start or did not answer: skip it, run the rest."""


Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started server as every bench measures it."""

    name: str
    address: Address
    """Where the load goes (for XMPP, the client port with STARTTLS)."""
    pid: int
    """Root of the process tree whose CPU and memory are measured."""
    log: Path
    counters: Callable[[], str] | None = None
    """The server's own account of what it received, relayed and dropped, if it gives one."""


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n    ".join(["log tail:", *tail])


def wait_ready(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, log: Path
) -> None:
    """Poll ``ready()`` until true; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"exited with status {process.returncode}; {log_tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    raise ServerUnavailable(f"not ready after {timeout:.0f} s; {log_tail(log)}")
