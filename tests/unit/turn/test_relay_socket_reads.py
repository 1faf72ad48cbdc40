"""A relay socket hands every queued datagram over, in order, both ways it reads.

By recvfrom it reads one datagram a wake-up, skipping the ``recvfrom`` that would fail
with EAGAIN after each; by recvmmsg, a batch. What keeps a burst from being stranded is
the loop's level-triggered readiness, which these tests check on uvloop, the loop heron
serves with, with real sockets.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from heron.turn.allocation import Address
from heron.turn.transports.udp import SocketCounters, UdpRelay, UdpSocket, batched
from tests.support.udp_modes import UDP_MODES, use_udp_mode

BURST = 50


@pytest.fixture(params=UDP_MODES, autouse=True)
def udp_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_udp_mode(request.param, monkeypatch)
    assert batched() == (request.param == "mmsg")
    return str(request.param)


def _relay_a_burst(queued_first: bool) -> tuple[list[tuple[bytes, Address]], int]:
    """Send ``BURST`` datagrams from a peer to a relay; what the allocation got, and counted."""

    async def main() -> tuple[list[tuple[bytes, Address]], int]:
        loop = asyncio.get_running_loop()
        counters = SocketCounters()
        bound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bound.bind(("127.0.0.1", 0))
        udp = UdpSocket(bound, loop, counters)
        relay = UdpRelay(udp, udp.address, loop.time)
        got: list[tuple[bytes, Address]] = []
        all_in = asyncio.Event()

        def deliver(data: bytes, peer: Address, now: float) -> None:
            got.append((data, peer))
            if len(got) == BURST:
                all_in.set()

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            if not queued_first:
                relay.attach(deliver)
            for n in range(BURST):
                peer.sendto(n.to_bytes(2, "big"), udp.address)
            if queued_first:
                relay.attach(deliver)
            await asyncio.wait_for(all_in.wait(), 30)
            relay.close()
            assert got[0][1] == peer.getsockname()
        return got, counters.received

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def test_datagrams_queued_before_the_relay_is_watched_all_arrive_in_order() -> None:
    got, received = _relay_a_burst(queued_first=True)

    assert [int.from_bytes(data, "big") for data, _ in got] == list(range(BURST))
    assert received == BURST


def test_a_burst_to_a_watched_relay_all_arrives_in_order() -> None:
    got, received = _relay_a_burst(queued_first=False)

    assert [int.from_bytes(data, "big") for data, _ in got] == list(range(BURST))
    assert received == BURST
