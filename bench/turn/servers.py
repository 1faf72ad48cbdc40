"""Starting and stopping the two servers with the same user, realm and relay ports.

Both get user ``bench`` with password ``benchpass`` in realm ``localhost``,
listen on one free UDP/TCP port of 127.0.0.1, relay from 127.0.0.1 on ports
below the kernel's ephemeral range, accept loopback peers, and have no quota.
Each logs to a file in the run's directory (a pipe nobody reads would stall
the server once full). A server that does not come up raises
:class:`ServerUnavailable`, which the caller turns into "skipped".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.proc import (
    Address,
    RunningServer,
    ServerUnavailable,
    free_port,
    stop_process,
    wait_ready,
)
from bench.turn.client import TurnError, UdpTurnClient, answers_binding

__all__ = [
    "PASSWORD",
    "REALM",
    "USERNAME",
    "RelayPorts",
    "RunningServer",
    "ServerUnavailable",
    "coturn",
    "coturn_version",
    "heron",
]

USERNAME = "bench"
PASSWORD = "benchpass"
REALM = "localhost"


@dataclass(frozen=True, slots=True)
class RelayPorts:
    low: int
    high: int


def _check_allocate(address: Address, hint: str = "") -> None:
    """One Allocate with the bench credentials, released at once: the server is usable."""
    client = UdpTurnClient(address, USERNAME, PASSWORD, timeout=0.5, attempts=4)
    try:
        client.allocate(lifetime=60)
        client.release()
    except (TurnError, OSError) as exc:
        where = f"{address[0]}:{address[1]}"
        raise ServerUnavailable(f"no TURN allocation on {where}: {exc}{hint}") from None
    finally:
        client.close()


def coturn_version() -> str:
    try:
        done = subprocess.run(
            ["turnserver", "--version"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[-1]


@contextmanager
def coturn(workdir: Path, taken: set[int], ports: RelayPorts) -> Iterator[RunningServer]:
    """coturn as reference-servers.md runs it: foreground, no CLI, its own user database."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(taken)
    log = workdir / "turnserver.log"
    command = [
        "turnserver", "-n", "--no-cli",
        "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        f"--min-port={ports.low}", f"--max-port={ports.high}",
        f"--realm={REALM}", "--lt-cred-mech", f"--user={USERNAME}:{PASSWORD}",
        "--allow-loopback-peers", "--no-tls", "--no-dtls",
        "--log-file=stdout", "--simple-log",
        f"--pidfile={workdir / 'turn.pid'}", f"--userdb={workdir / 'turndb'}",
    ]  # fmt: skip
    with log.open("wb") as sink:
        try:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise ServerUnavailable(f"cannot run turnserver: {exc}") from None
    address = ("127.0.0.1", port)
    try:
        wait_ready(process, lambda: answers_binding(address), 15.0, log)
        _check_allocate(address)
        yield RunningServer("coturn", address, process.pid, log)
    finally:
        stop_process(process)


def _heron_config(
    workdir: Path, turn_port: int, web_port: int, ports: RelayPorts, workers: int
) -> str:
    return f"""\
domain = "localhost"
data_dir = "{workdir / "data"}"
log_level = "info"

[turn]
listen = ["127.0.0.1:{turn_port}"]
tls_listen = []
relay_addresses = ["127.0.0.1"]
relay_port_min = {ports.low}
relay_port_max = {ports.high}
allowed_peer_ranges = ["127.0.0.0/8"]
user_quota = 0
total_quota = 0
workers = {workers}

[sip]
enabled = false

[xmpp]
enabled = false

[web]
listen = ["127.0.0.1:{web_port}"]
"""


def _heron_cli(config: Path, *args: str) -> None:
    """Run one ``heron`` set-up command with the interpreter running the bench."""
    command = [sys.executable, "-m", "heron", "-c", str(config), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerUnavailable(f"heron {args[0]} failed: {exc}") from None
    if done.returncode:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ServerUnavailable(f"heron {args[0]} failed: {why[0]}")


def _heron_counters(config: Path) -> str:
    """heron's drops by reason (the nonzero ones) and its per-process figures."""
    lines = []
    for command in (["turn", "counters"], ["turn", "workers"]):
        done = subprocess.run(
            [sys.executable, "-m", "heron", "-c", str(config), *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines += done.stdout.splitlines() or [done.stderr.strip()]
    drops = [
        line for line in lines if line.startswith("packets_dropped_") and not line.endswith(" 0")
    ]
    processes = [line for line in lines if line[:1].isdigit() or line.startswith("pid ")]
    return (
        "drops by reason: " + (", ".join(drops) or "none") + "\n      " + "\n      ".join(processes)
    )


def _log_has(log: Path, text: str) -> bool:
    try:
        return text in log.read_text(errors="replace")
    except OSError:
        return False


@contextmanager
def heron(
    workdir: Path, taken: set[int], ports: RelayPorts, workers: int
) -> Iterator[RunningServer]:
    """heron with TURN only (SIP and XMPP off, web on a free port), user added by its CLI."""
    workdir.mkdir(parents=True, exist_ok=True)
    turn_port, web_port = free_port(taken), free_port(taken)
    config = workdir / "heron.toml"
    config.write_text(_heron_config(workdir, turn_port, web_port, ports, workers))
    _heron_cli(config, "user", "add", f"{USERNAME}@{REALM}", "--password", PASSWORD)
    _heron_cli(config, "cert")
    log = workdir / "heron.log"
    command = [sys.executable, "-m", "heron", "-c", str(config), "serve"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    address = ("127.0.0.1", turn_port)
    try:
        wait_ready(process, lambda: _log_has(log, "heron serving"), 60.0, log)
        hint = ""
        if not _log_has(log, "turn listening"):
            hint = " (heron logged no 'turn listening' line: is TURN in this build?)"
        _check_allocate(address, hint)
        yield RunningServer("heron", address, process.pid, log, lambda: _heron_counters(config))
    finally:
        stop_process(process, grace=10.0)
