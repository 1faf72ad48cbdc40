"""Relay load: clients blast ChannelData through their channels to an echo peer.

Run by ``bench.turn`` as several child processes (``python -m bench.turn.relay
SETTINGS``), since one Python process saturates long before coturn does. Each
child makes ``allocations`` allocations, binds channel 0x4000 on each to the
echo peer, then keeps ``window`` packets in flight per allocation for
``seconds``: a closed loop, so the load settles at what the machine (server,
peer and clients on the same two cores) can carry instead of piling up
drops. Each payload starts with a sequence number, so an echo tells how many
packets are still in flight (loopback keeps a 5-tuple in order); an
allocation that hears nothing for ``stall`` seconds writes its window off as
lost and sends a fresh one.

One relayed packet is one echo received: the server carried it twice
(client -> peer, peer -> client).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import time
from dataclasses import asdict, dataclass

from bench.proc import read_settings, say, wait_go, wait_release
from bench.turn.client import UdpTurnClient

__all__ = ["RelaySettings", "blast", "main"]

CHANNEL = 0x4000
_SEQUENCE = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """One worker's share of the relay load."""

    server: tuple[str, int]
    peer: tuple[str, int]
    username: str
    password: str
    allocations: int
    window: int
    size: int
    seconds: float
    drain: float = 0.3
    stall: float = 0.05


@dataclass(slots=True)
class Counts:
    """What one worker saw; ``in_window`` are the echoes received before the deadline."""

    sent: int = 0
    received: int = 0
    in_window: int = 0
    stalls: int = 0
    send_errors: int = 0
    cpu: float = 0.0
    seconds: float = 0.0


@dataclass(slots=True)
class _Flow:
    """One allocation's socket and its sequence bookkeeping."""

    sock: socket.socket
    next_seq: int = 0
    in_flight: int = 0
    last_heard: float = 0.0


def _send(flow: _Flow, header: bytes, padding: bytes, count: int, counts: Counts) -> None:
    for _ in range(count):
        try:
            flow.sock.send(header + _SEQUENCE.pack(flow.next_seq) + padding)
        except (BlockingIOError, ConnectionRefusedError):
            counts.send_errors += 1  # full buffer or ICMP refusal: try again on the next turn
            return
        flow.next_seq += 1
        flow.in_flight += 1
        counts.sent += 1


def _receive(flow: _Flow, now: float, counts: Counts, counting: bool) -> None:
    """Read every queued echo; the newest sequence number tells what is still in flight."""
    newest = -1
    got = 0
    while True:
        try:
            data = flow.sock.recv(4096)
        except (BlockingIOError, ConnectionRefusedError):
            break
        if len(data) >= 8 and data[0] == CHANNEL >> 8 and data[1] == CHANNEL & 0xFF:
            got += 1
            newest = max(newest, _SEQUENCE.unpack_from(data, 4)[0])
    if got:
        counts.received += got
        if counting:
            counts.in_window += got
        flow.in_flight = max(0, flow.next_seq - 1 - newest)
        flow.last_heard = now


def blast(flows: list[_Flow], settings: RelaySettings) -> Counts:
    """Keep every flow's window full until the deadline, then drain late echoes."""
    counts = Counts()
    payload = max(settings.size, _SEQUENCE.size)
    header = struct.pack("!HH", CHANNEL, payload)
    padding = bytes(payload - _SEQUENCE.size)
    poller = select.epoll()
    by_fd = {flow.sock.fileno(): flow for flow in flows}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    started = time.monotonic()
    cpu_start = os.times()
    deadline = started + settings.seconds
    for flow in flows:
        flow.last_heard = started
    now = started
    while now < deadline:
        for flow in flows:
            if flow.in_flight < settings.window:
                _send(flow, header, padding, settings.window - flow.in_flight, counts)
        for fd, _ in poller.poll(0.02):
            _receive(by_fd[fd], now, counts, counting=True)
        now = time.monotonic()
        for flow in flows:
            if flow.in_flight and now - flow.last_heard > settings.stall:
                flow.in_flight, flow.last_heard = 0, now
                counts.stalls += 1
    drain_end = now + settings.drain
    # Not until every window is accounted for: a written-off window's packets may still come.
    while now < drain_end and counts.received < counts.sent:
        for fd, _ in poller.poll(0.02):
            _receive(by_fd[fd], now, counts, counting=False)
        now = time.monotonic()
    poller.close()
    cpu_end = os.times()
    counts.cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    counts.seconds = deadline - started
    return counts


def _set_up(settings: RelaySettings, clients: list[UdpTurnClient]) -> list[_Flow]:
    """Allocate and bind, appending to ``clients`` as it goes so a failure can release them."""
    for _ in range(settings.allocations):
        client = UdpTurnClient(settings.server, settings.username, settings.password)
        clients.append(client)
        client.allocate()
        client.bind_channel(CHANNEL, settings.peer)
    for client in clients:
        client.sock.setblocking(False)
    return [_Flow(client.sock) for client in clients]


def _release(clients: list[UdpTurnClient]) -> None:
    """Give every allocation back, so none lingers on the server for its lifetime."""
    for client in clients:
        client.sock.setblocking(True)
        if client.relayed is not None:
            client.release()
        client.close()


def main() -> None:
    raw = read_settings()
    settings = RelaySettings(**{**raw, "server": tuple(raw["server"]), "peer": tuple(raw["peer"])})
    clients: list[UdpTurnClient] = []
    try:
        flows = _set_up(settings, clients)
    except Exception as exc:  # reported to the parent, which decides what to skip
        say(f"error: {exc}")
        _release(clients)
        return
    say("ready")
    try:
        wait_go()
        say(json.dumps(asdict(blast(flows, settings))))
        wait_release()
    finally:
        _release(clients)


if __name__ == "__main__":
    main()
