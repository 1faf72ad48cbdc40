"""A heron TURN server, coturn's client tools and a UDP peer, for the interop tests here."""

from __future__ import annotations

import random
import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.config import free_port
from tests.support.heron import RunningHeron, running_heron
from tests.support.tools import require_tool, stop

USER = "bench@localhost"
TURN_USER = "bench"
PASSWORD = "pw"
SECRET = "0123456789abcdef0123"
LOCALHOST = "127.0.0.1"


def tool(name: str) -> str:
    """Path of a coturn client (fails on CI when missing)."""
    return require_tool(name, "coturn")


def relay_window() -> tuple[int, int]:
    """500 relay ports in 20000-31999: clear of the kernel's ephemeral range and, at random,
    of the other xdist worker's servers (heron retries other ports on a collision anyway)."""
    low = random.randrange(20000, 32000 - 500)
    return low, low + 499


@dataclass
class TurnServer:
    heron: RunningHeron
    port: int
    """UDP and TCP listener."""
    tls_port: int
    relay_ports: tuple[int, int]
    certificate: Path

    def has_relay_port(self, port: int) -> bool:
        return self.relay_ports[0] <= port <= self.relay_ports[1]


@contextmanager
def turn_server(directory: Path, **overrides: Any) -> Iterator[TurnServer]:
    """heron with TURN on UDP, TCP and TLS on loopback; ``overrides`` go into ``[turn]``.

    ``allowed_peer_ranges=None`` leaves the peer policy at heron's defaults.
    """
    port, tls_port = free_port(), free_port()
    low, high = relay_window()
    turn: dict[str, Any] = {
        "enabled": True,
        "listen": [f"{LOCALHOST}:{port}"],
        "tls_listen": [f"{LOCALHOST}:{tls_port}"],
        "relay_addresses": [LOCALHOST],
        "relay_port_min": low,
        "relay_port_max": high,
        "allowed_peer_ranges": ["127.0.0.0/8"],
        "auth_secret": SECRET,
        **overrides,
    }
    turn = {key: value for key, value in turn.items() if value is not None}
    with running_heron(directory, {"turn": turn}, users={USER: PASSWORD}) as heron:
        certificate = directory / "var" / "tls" / "heron.crt"
        yield TurnServer(heron, port, tls_port, (low, high), certificate)
    # Stopped by SIGTERM with allocations still live (uclient leaves its probe's behind).
    log = "".join(heron.log)
    assert heron.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


# --- turnutils_uclient ---------------------------------------------------------------

_TOTALS = re.compile(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M)


@dataclass
class UclientRun:
    returncode: int
    output: str

    @property
    def totals(self) -> tuple[int, int] | None:
        """(sent, echoed back) from uclient's summary, None if it never got that far."""
        found = _TOTALS.search(self.output)
        return None if found is None else (int(found[1]), int(found[2]))


def uclient(server: TurnServer, peer_port: int, *args: str, timeout: float = 40) -> UclientRun:
    """turnutils_uclient relaying to ``127.0.0.1:peer_port`` through ``server``.

    uclient waits a random 1-6 s before its first packet (coturn's uclient.c), so every
    run takes a few seconds however fast the server is.
    """
    command = [tool("turnutils_uclient"), "-e", LOCALHOST, "-r", str(peer_port), *args]
    if "-p" not in args:
        command += ["-p", str(server.port)]
    result = subprocess.run(
        [*command, LOCALHOST], capture_output=True, text=True, timeout=timeout, check=False
    )
    return UclientRun(result.returncode, result.stdout + result.stderr)


def assert_all_echoed(run: UclientRun, expected: int, server: TurnServer) -> None:
    """Every packet went out through the relay to the echo peer and came back."""
    context = run.output + "\n--- heron log (tail) ---\n" + "".join(server.heron.log[-30:])
    assert run.returncode == 0, context
    assert run.totals == (expected, expected), context
    assert "Total lost packets 0 (" in run.output, context


# --- peers -------------------------------------------------------------------------


@contextmanager
def coturn_peer() -> Iterator[int]:
    """turnutils_peer echoing on a free loopback UDP port; ready once it has echoed a probe."""
    port = free_port()
    process = subprocess.Popen(
        [tool("turnutils_peer"), "-L", LOCALHOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.1)
            for _ in range(100):
                assert process.poll() is None, "turnutils_peer exited"
                probe.sendto(b"ready?", (LOCALHOST, port))
                try:
                    if probe.recvfrom(64)[0] == b"ready?":
                        break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("turnutils_peer never echoed")
        yield port
    finally:
        stop(process, timeout=10)


@contextmanager
def silent_peer() -> Iterator[socket.socket]:
    """A bound, non-blocking UDP socket that only listens: what reached it can be read back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCALHOST, 0))
        sock.setblocking(False)
        yield sock


def pending(sock: socket.socket) -> list[tuple[bytes, tuple[str, int]]]:
    """Datagrams already queued on a non-blocking socket (a relay's sendto is synchronous on
    loopback, so anything relayed before the server's last answer is queued by then)."""
    queued = []
    for _ in range(1000):
        try:
            data, source = sock.recvfrom(65535)
        except BlockingIOError:
            break
        queued.append((data, source[:2]))
    return queued
