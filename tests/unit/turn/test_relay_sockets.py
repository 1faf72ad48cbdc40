"""Relay sockets as RelaySockets opens them: the address a relay reports, known at bind
rather than asked of the kernel, is where a peer's datagrams reach it."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
import uvloop

from heron.turn.allocation import Address, Relay
from heron.turn.transports.relays import RelaySockets

HOSTS = {4: "127.0.0.1", 6: "::1"}
PORTS = (40_000, 60_000)


async def _reaches(relay: Relay, version: int) -> None:
    """A peer's datagram sent to ``relay.address`` is delivered by the relay."""
    got: asyncio.Future[tuple[bytes, Address]] = asyncio.get_running_loop().create_future()
    relay.attach(lambda data, peer, now: got.done() or got.set_result((data, peer)))
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as peer:
        peer.bind((HOSTS[version], 0))
        peer.sendto(b"to the relay", relay.address)
        data, source = await asyncio.wait_for(got, 30)
        assert (data, source) == (b"to the relay", peer.getsockname()[:2])
    relay.close()


@pytest.mark.parametrize("version", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("reserve_next", [False, True], ids=["single", "reserving"])
def test_relay_address_is_the_bound_one(version: int, reserve_next: bool) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        hosts: dict[int, IPv4Address | IPv6Address] = {version: ip_address(HOSTS[version])}
        sockets = RelaySockets(loop, hosts, PORTS, clock=loop.time)
        opened = sockets.open(version, even_port=reserve_next, reserve_next=reserve_next)
        assert opened is not None
        relay, token = opened
        assert relay.address[0] == HOSTS[version]
        assert PORTS[0] <= relay.address[1] <= PORTS[1]
        await _reaches(relay, version)
        if token is not None:
            claimed = sockets.claim(token)
            assert claimed is not None
            assert claimed.address == (HOSTS[version], relay.address[1] + 1)
            await _reaches(claimed, version)

    uvloop.run(main())
