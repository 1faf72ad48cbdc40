"""ChannelData relayed through heron's TURN worker processes comes back whole (issue 18).

32 clients, each with a channel to turnutils_peer, keep 8 packets in flight until 250 have
been echoed, twice: right after the main process says it serves, and again once every
worker has said so too. heron used to bind each worker's member of the UDP listener's
SO_REUSEPORT group when that worker got round to it, after the main process was already
serving; a group that grows rehashes clients, and those moved to a worker that held none
of their allocations lost every packet from then on (``bench.turn`` lost 4-5 %). Counts
only: every echo back, no drop in heron's counters by any reason, none in the kernel's
counters of any socket on the way, and both processes relayed. Both ways heron moves
datagrams are driven: recvmmsg/sendmmsg (the C extension) and recvfrom/sendto.
"""

from __future__ import annotations

import select
import struct
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.interop.turn.stun_wire import RawTurnClient, allocate_with_channel
from tests.interop.turn.support import (
    LOCALHOST,
    PASSWORD,
    TURN_USER,
    TurnServer,
    coturn_peer,
    turn_server,
)
from tests.support.udp_modes import UDP_MODES, use_udp_mode

pytestmark = pytest.mark.interop

CLIENTS = 32
PACKETS = 250
"""Echoes each client waits for, per round."""
WINDOW = 8
CHANNEL = 0x4000
PAYLOAD = bytes(100)
SILENCE = 5.0
"""Seconds without any echo after which what is still in flight counts as lost."""


def _relay(clients: list[RawTurnClient], server: tuple[str, int]) -> int:
    """Keep WINDOW ChannelData frames in flight per client until PACKETS came back each
    (or nothing came for SILENCE seconds); the echoes received."""
    frame = struct.pack("!HH", CHANNEL, len(PAYLOAD)) + PAYLOAD
    by_fd = {client.sock.fileno(): client.sock for client in clients}
    sent = dict.fromkeys(by_fd, 0)
    echoed = dict.fromkeys(by_fd, 0)
    poller = select.poll()
    for fd, sock in by_fd.items():
        sock.setblocking(False)
        poller.register(fd, select.POLLIN)
    try:
        for fd, sock in by_fd.items():
            for _ in range(WINDOW):
                sock.sendto(frame, server)
            sent[fd] = WINDOW
        while sum(echoed.values()) < CLIENTS * PACKETS:
            events = poller.poll(SILENCE * 1000)
            if not events:
                break
            for fd, _ in events:
                sock = by_fd[fd]
                while True:
                    try:
                        data = sock.recv(2048)
                    except BlockingIOError:
                        break
                    if data[:2] == frame[:2]:
                        echoed[fd] += 1
                while sent[fd] < PACKETS and sent[fd] - echoed[fd] < WINDOW:
                    sock.sendto(frame, server)
                    sent[fd] += 1
    finally:
        for sock in by_fd.values():
            sock.setblocking(True)
    return sum(echoed.values())


def _counters(server: TurnServer, command: str) -> list[str]:
    answer = server.heron.cli("turn", command)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.splitlines()


def _kernel_drops(ports: set[int]) -> dict[int, int]:
    """The kernel's drops (/proc/net/udp) on each loopback UDP socket bound to ``ports``."""
    drops: dict[int, int] = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].split(":")[1], 16)
        if port in ports:
            drops[port] = drops.get(port, 0) + int(fields[-1])
    return drops


@pytest.mark.parametrize("udp_mode", UDP_MODES)
def test_channel_data_through_two_workers_is_never_dropped(
    tmp_path: Path, udp_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_udp_mode(udp_mode, monkeypatch)
    way = "recvmmsg/sendmmsg" if udp_mode == "mmsg" else "recvfrom/sendto"
    with (
        turn_server(tmp_path, workers=2, user_quota=0, total_quota=0) as server,
        coturn_peer() as peer_port,
        ExitStack() as stack,
    ):
        address = (LOCALHOST, server.port)
        clients = [
            stack.enter_context(RawTurnClient(address, TURN_USER, PASSWORD)) for _ in range(CLIENTS)
        ]
        relay_ports = {allocate_with_channel(c, (LOCALHOST, peer_port), CHANNEL) for c in clients}

        first = _relay(clients, address)
        deadline = time.monotonic() + 60  # the worker logged it before the main process
        while "".join(server.heron.log).count("heron serving") < 2:
            assert time.monotonic() < deadline, "".join(server.heron.log)
            time.sleep(0.1)
        second = _relay(clients, address)
        log = "".join(server.heron.log)
        assert log.count(f"read and send by {way}") == 2, log  # the main process and worker

        assert (first, second) == (CLIENTS * PACKETS, CLIENTS * PACKETS)
        # Each echo is two packets relayed; a worker reports its counters once a second.
        relayed = 2 * 2 * CLIENTS * PACKETS
        while True:
            figures = dict(line.split() for line in _counters(server, "counters"))
            if int(figures["packets_relayed"]) >= relayed:
                break
            assert time.monotonic() < deadline + 60, figures
            time.sleep(0.1)
        assert int(figures["packets_relayed"]) == relayed
        drops = {name: int(v) for name, v in figures.items() if name.startswith("packets_dropped_")}
        assert (
            "packets_dropped_no_allocation" in drops and "packets_dropped_receive_buffer" in drops
        )
        assert set(drops.values()) == {0}, drops
        processes = [line.split() for line in _counters(server, "workers")[1:]]
        assert len(processes) == 2 and all(int(row[3]) > 0 for row in processes), processes
        client_ports = {c.sock.getsockname()[1] for c in clients}
        watched = {server.port, peer_port, *relay_ports, *client_ports}
        kernel = _kernel_drops(watched)
        assert set(kernel) == watched and set(kernel.values()) == {0}, kernel
