"""coturn's turnutils_uclient relays over TCP through heron (RFC 6062, ``-T``).

With ``-T`` uclient is its own peer (``-T`` implies ``-y``): it makes two TCP allocations,
sends Connect from one to the other's relayed address, so heron opens a TCP connection from
relay to relay, the other side gets a ConnectionAttempt, and both ConnectionBind a new
connection to carry the data. Each of the two sessions sends ``-n`` messages and counts the
ones that come back; no turnutils_peer is involved (``-e``/``-r`` are ignored).
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.config import free_port
from tests.support.heron import RunningHeron, running_heron

pytestmark = pytest.mark.interop

LOCALHOST = "127.0.0.1"
USER = "bench@localhost"
TURN_USER = "bench"
PASSWORD = "benchpass"
MESSAGES = 20
SESSIONS = 2
"""uclient -T pairs its clients: one allocation connects to the other's relay."""
UCLIENT_TIMEOUT = 25.0
"""uclient waits a random 1-6 s before sending (coturn's uclient.c); a run takes ~7 s."""

_SUMMARY = re.compile(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M)
_PROGRESS = re.compile(r"start_mclient: msz=\d+, tot_send_msgs=(\d+), tot_recv_msgs=(\d+),")
_COUNT = re.compile(r"^(\d+) allocation\(s\)$", re.M)


def uclient_path() -> str:
    """turnutils_uclient; its absence fails the test (``make test-deps`` installs coturn)."""
    path = shutil.which("turnutils_uclient")
    if path is None:
        pytest.fail("turnutils_uclient is missing: `make test-deps` installs Debian's coturn")
    return path


@dataclass
class Server:
    heron: RunningHeron
    port: int
    """UDP and TCP listener (turn.listen)."""
    tls_port: int
    relay_ports: tuple[int, int]

    def context(self, output: str) -> str:
        return output + "\n--- heron log (tail) ---\n" + "".join(self.heron.log[-30:])

    def transport_args(self, transport: str) -> list[str]:
        """uclient flags for TURN over ``transport``; -T alone already means TCP."""
        if transport == "tls":
            return ["-t", "-S", "-p", str(self.tls_port)]
        return ["-p", str(self.port)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port, tls_port = free_port(), free_port()
    low = free_window()
    settings = {
        "turn": {
            "enabled": True,
            "listen": [f"{LOCALHOST}:{port}"],
            "tls_listen": [f"{LOCALHOST}:{tls_port}"],
            "relay_addresses": [LOCALHOST],
            "relay_port_min": low,
            "relay_port_max": low + 499,
            "allowed_peer_ranges": ["127.0.0.0/8"],
        }
    }
    directory = tmp_path_factory.mktemp("heron-rfc6062")
    with running_heron(directory, settings, users={USER: PASSWORD}) as heron:
        yield Server(heron, port, tls_port, (low, low + 499))


def allocation_count(listing: str) -> int | None:
    """The total ``heron turn allocations`` prints under its table."""
    found = _COUNT.search(listing)
    return None if found is None else int(found[1])


def free_window() -> int:
    """The first port of 500 relay ports in 20000-31999, clear of the ephemeral range."""
    return random.randrange(20000, 32000 - 500)


def run_uclient(server: Server, transport: str) -> str:
    command = [
        uclient_path(),
        "-T",
        *server.transport_args(transport),
        "-u",
        TURN_USER,
        "-w",
        PASSWORD,
        "-n",
        str(MESSAGES),
        "-l",
        "500",
        LOCALHOST,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=UCLIENT_TIMEOUT, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, server.context(output)
    return output


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_rfc6062_uclient_relays_tcp_between_two_allocations(server: Server, transport: str) -> None:
    output = run_uclient(server, transport)

    summary = _SUMMARY.search(output)
    assert summary is not None, server.context(output)
    expected = MESSAGES * SESSIONS
    assert (int(summary[1]), int(summary[2])) == (expected, expected), server.context(output)
    assert "Total lost packets 0 (" in output, server.context(output)
    assert "2 connections are completed" in output, server.context(output)
    if transport == "tls":
        assert "tls_connect: client session connected" in output
    assert not any("Traceback" in line for line in server.heron.log), server.context(output)


def test_rfc6062_allocations_during_a_run_are_tcp_relays(server: Server) -> None:
    # -h keeps uclient (and so its allocations) alive after the last echo: a fixed point at
    # which `heron turn allocations` must list both, whatever the timing.
    command = [
        uclient_path(),
        "-T",
        "-h",
        *server.transport_args("tls"),
        "-u",
        TURN_USER,
        "-w",
        PASSWORD,
        "-n",
        "5",
        LOCALHOST,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(UCLIENT_TIMEOUT, process.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            progress = _PROGRESS.search(line)
            if progress and int(progress[1]) == int(progress[2]) == 5 * SESSIONS:
                break
        else:
            raise AssertionError(server.context("".join(seen)))

        listed = server.heron.cli("turn", "allocations")

        assert listed.returncode == 0, listed.stderr
        rows = [line.split() for line in listed.stdout.splitlines() if "://" in line]
        # Besides the pair, uclient -T keeps a probe allocation it never relays through.
        paired = [row for row in rows if row[5] != "0"]
        assert len(paired) == SESSIONS, listed.stdout
        assert all(row[0].startswith("tls://127.0.0.1:") for row in rows), listed.stdout
        assert all(row[1] == TURN_USER for row in rows), listed.stdout
        assert allocation_count(listed.stdout) == len(rows)
        relay_ports = [int(row[2].removeprefix(f"{LOCALHOST}:")) for row in paired]
        low, high = server.relay_ports
        assert all(low <= port <= high for port in relay_ports), listed.stdout
        # The relayed address is a TCP listener (RFC 6062 §5.1). 127.0.0.2 has no permission,
        # so heron accepts and closes at once (§5.3: "the connection MUST be closed").
        for port in relay_ports:
            with socket.create_connection(
                (LOCALHOST, port), timeout=5, source_address=("127.0.0.2", 0)
            ) as stranger:
                try:
                    assert stranger.recv(100) == b""
                except ConnectionResetError:
                    pass
    finally:
        watchdog.cancel()
        process.kill()
        process.wait(timeout=10)
    # The control connections closed with uclient: their allocations go (RFC 8656 §3.1).
    deadline = time.monotonic() + 10
    while True:
        listed = server.heron.cli("turn", "allocations")
        if allocation_count(listed.stdout) == 0 or time.monotonic() > deadline:
            break
    assert allocation_count(listed.stdout) == 0, listed.stdout
