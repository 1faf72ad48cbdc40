"""A TURN worker process that dies is started again, and costs only its own clients (issue 18).

32 clients relay through heron with ``turn.workers = 2``; the worker is killed with
SIGKILL. The clients the kernel hashes to the main process keep relaying as if nothing
happened (the main process kept the dead worker's sockets in their SO_REUSEPORT groups,
so nobody was rehashed), the others lost their allocations with the process that held
them, and once the new worker serves they allocate again and relay.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import struct
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from heron.control import query
from tests.interop.turn.stun_wire import RawTurnClient, allocate_with_channel
from tests.interop.turn.support import (
    LOCALHOST,
    PASSWORD,
    TURN_USER,
    TurnServer,
    coturn_peer,
    relay_window,
    turn_server,
)
from tests.support.config import free_port
from tests.support.heron import running_heron

pytestmark = pytest.mark.interop

CLIENTS = 32
CHANNEL = 0x4000
FRAME = struct.pack("!HH", CHANNEL, 4) + b"ping"
SILENCE = 3.0
"""Seconds without an echo after which a client's frame counts as lost."""


def _echoing(clients: list[RawTurnClient], server: tuple[str, int]) -> set[int]:
    """Each client sends one ChannelData frame through its channel to the echoing peer;
    the indexes of those whose frame came back."""
    by_fd = {client.sock.fileno(): index for index, client in enumerate(clients)}
    poller = select.poll()
    for client in clients:
        poller.register(client.sock.fileno(), select.POLLIN)
        client.sock.sendto(FRAME, server)
    echoed: set[int] = set()
    while len(echoed) < len(clients):
        events = poller.poll(SILENCE * 1000)
        if not events:
            break
        for fd, _ in events:
            if clients[by_fd[fd]].sock.recv(2048) == FRAME:
                echoed.add(by_fd[fd])
    return echoed


def _reporting(config: Path) -> list[int]:
    """The pids of the processes that reported, the main one first, asked of the control
    socket in-process (a ``heron`` run per poll costs seconds of CPU on a loaded machine)."""
    rows = asyncio.run(query(config.parent / "var", "turn.workers"))
    return [int(row["pid"]) for row in rows]


def _listed_by_cli(server: TurnServer) -> list[int]:
    """The pids ``heron turn workers`` prints, the main one first."""
    answer = server.heron.cli("turn", "workers")
    assert answer.returncode == 0, answer.stderr
    return [int(line.split()[0]) for line in answer.stdout.splitlines()[1:]]


def _wait_for_worker(server: TurnServer, not_pid: int) -> int:
    """The pid of the worker once one other than ``not_pid`` reports (once a second)."""
    deadline = time.monotonic() + 90
    while True:
        pids = _reporting(server.heron.config)
        if len(pids) == 2 and pids[1] != not_pid:
            return pids[1]
        assert time.monotonic() < deadline, "".join(server.heron.log)
        time.sleep(0.5)


def test_a_killed_worker_is_restarted_and_only_its_clients_allocate_again(
    tmp_path: Path,
) -> None:
    with (
        turn_server(tmp_path, workers=2, user_quota=0, total_quota=0) as server,
        coturn_peer() as peer_port,
        ExitStack() as stack,
    ):
        address = (LOCALHOST, server.port)
        peer = (LOCALHOST, peer_port)
        clients = [
            stack.enter_context(RawTurnClient(address, TURN_USER, PASSWORD)) for _ in range(CLIENTS)
        ]
        for client in clients:
            allocate_with_channel(client, peer, CHANNEL)
        assert _echoing(clients, address) == set(range(CLIENTS))
        worker = _wait_for_worker(server, not_pid=-1)

        os.kill(worker, signal.SIGKILL)
        replacement = _wait_for_worker(server, not_pid=worker)

        survivors = _echoing(clients, address)
        lost = set(range(CLIENTS)) - survivors
        assert survivors and lost, "the kernel hashed every client to one process"
        for index in lost:
            allocate_with_channel(clients[index], peer, CHANNEL)
        assert _echoing(clients, address) == set(range(CLIENTS))
        log = "".join(server.heron.log)
        assert f"worker process {worker} exited with status -9" in log, log
        assert replacement != worker
        assert _listed_by_cli(server) == _reporting(server.heron.config)


def _ended(pid: int) -> bool:
    """No process ``pid``, or only its zombie (whoever adopted it has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_workers_end_when_their_main_process_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL leaves the main process no chance to stop its workers: each ends by itself
    (PR_SET_PDEATHSIG) rather than serve on, unreloadable, sharing the ports with the next
    heron started."""
    low, high = relay_window()
    turn = {
        "enabled": True,
        "listen": [f"{LOCALHOST}:{free_port()}"],
        "tls_listen": [],
        "relay_addresses": [LOCALHOST],
        "relay_port_min": low,
        "relay_port_max": high,
        "workers": 2,
    }
    with running_heron(tmp_path, {"turn": turn}) as heron:
        deadline = time.monotonic() + 90
        while len(pids := _reporting(heron.config)) < 2:
            assert time.monotonic() < deadline, "".join(heron.log)
            time.sleep(0.5)
        heron.process.kill()
        heron.process.wait()
        deadline = time.monotonic() + 30
        while not _ended(pids[1]):
            assert time.monotonic() < deadline, f"worker {pids[1]} outlived its main process"
            time.sleep(0.1)
