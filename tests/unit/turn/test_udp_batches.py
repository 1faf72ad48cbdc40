"""TURN's UDP sockets, both ways they move datagrams: every one in, in order, counted.

Batched (recvmmsg/sendmmsg), a socket reads what is queued per wake-up and sends what one
loop iteration queued at the start of the next; unbatched, it reads by recvfrom and sends
at once. Either way the counters (received, send_failed) are exact. Real loopback sockets
of both IP versions, on uvloop, the loop heron serves with.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from heron.turn.allocation import Address
from heron.turn.transports.udp import Datagrams, SocketCounters, UdpClient, UdpSocket
from tests.support.udp_modes import UDP_MODES, use_udp_mode

HOSTS = {4: "127.0.0.1", 6: "::1"}
BURST = 150
"""More than one batch (64) of datagrams."""


@pytest.fixture(params=UDP_MODES, autouse=True)
def udp_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_udp_mode(request.param, monkeypatch)
    return str(request.param)


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def _bound(version: int) -> socket.socket:
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((HOSTS[version], 0))
    return sock


def _run(main: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def _next_iteration() -> None:
    """Return once the callbacks scheduled before this call have run (FIFO ready queue)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(done.set_result, None)
    await done


def _drain(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(sock.recv(65_536))
        except BlockingIOError:
            return got


def test_a_listener_gets_a_burst_bigger_than_a_batch_whole_and_counts_it(
    udp_mode: str, version: int
) -> None:
    async def main() -> None:
        counters = SocketCounters()
        udp = UdpSocket(_bound(version), asyncio.get_running_loop(), counters)
        assert udp.batched == (udp_mode == "mmsg")
        got: list[tuple[bytes, Address]] = []
        all_in = asyncio.Event()

        def receive(batch: Datagrams) -> None:
            assert len(batch) <= 64
            got.extend(batch)
            if len(got) == BURST:
                all_in.set()

        with _bound(version) as client:
            for n in range(BURST):
                client.sendto(n.to_bytes(2, "big"), udp.address)
            udp.start(receive)
            await asyncio.wait_for(all_in.wait(), 30)
            assert {source for _, source in got} == {client.getsockname()[:2]}
        udp.close()
        assert [int.from_bytes(data, "big") for data, _ in got] == list(range(BURST))
        assert counters.received == BURST

    _run(main)


def test_what_one_iteration_sends_arrives_whole_in_order(udp_mode: str, version: int) -> None:
    async def main() -> None:
        udp = UdpSocket(_bound(version), asyncio.get_running_loop())
        with _bound(version) as peer:
            for n in range(BURST):
                udp.sendto(n.to_bytes(2, "big"), peer.getsockname()[:2])
            if udp_mode == "mmsg":
                assert _drain(peer) == []  # queued until the loop's next iteration
            await _next_iteration()
            got = _drain(peer)
        udp.close()
        assert [int.from_bytes(data, "big") for data in got] == list(range(BURST))
        assert udp.counters.send_failed == 0

    _run(main)


def test_a_datagram_that_cannot_be_sent_is_counted_and_the_rest_go(
    udp_mode: str, version: int
) -> None:
    async def main() -> None:
        udp = UdpSocket(_bound(version), asyncio.get_running_loop())
        with _bound(version) as peer:
            to_peer = UdpClient(udp, peer.getsockname()[:2])
            to_peer.send(b"before")
            to_peer.send(bytes(70_000))  # over UDP's limit: EMSGSIZE
            to_peer.send(b"after")
            await _next_iteration()
            got = _drain(peer)
        udp.close()
        assert got == [b"before", b"after"]
        assert udp.counters.send_failed == 1

    _run(main)


def test_closing_sends_what_is_queued_first(version: int) -> None:
    async def main() -> None:
        udp = UdpSocket(_bound(version), asyncio.get_running_loop())
        with _bound(version) as peer:
            udp.sendto(b"last words", peer.getsockname()[:2])
            udp.close()
            await _next_iteration()  # the flush the send scheduled finds nothing left
            assert _drain(peer) == [b"last words"]
        assert udp.counters.send_failed == 0

    _run(main)
