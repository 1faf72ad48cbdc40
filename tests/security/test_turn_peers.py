"""TURN relays must not reach heron itself (issue 10, coturn's ``no-loopback-peers`` and
``denied-peer-ip``).

By default a user cannot relay to loopback or private addresses at all; where an
administrator allows loopback (or a LAN heron sits on), heron's own listening ports
stay out of reach, since what a relay sends comes from heron's own address.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.interop.turn.stun_wire import (
    CHANNEL_BIND_REQUEST,
    CHANNEL_NUMBER,
    CREATE_PERMISSION_REQUEST,
    XOR_PEER_ADDRESS,
    RawTurnClient,
    Response,
    plain,
    xor_address,
)
from tests.security.support import HOST, USERS, Target, target
from tests.security.turn_wire import ALLOCATE_REQUEST, SUCCESS, allocate, turn_udp


@pytest.fixture
def loopback_allowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    overrides = {"turn": {"allowed_peer_ranges": ["127.0.0.0/8"]}}
    with target(tmp_path_factory.mktemp("heron"), overrides) as running:
        yield running


def channel_bind(client: RawTurnClient, number: int, host: str, port: int) -> Response:
    return client.request(
        CHANNEL_BIND_REQUEST,
        plain(CHANNEL_NUMBER, struct.pack("!HH", number, 0)),
        xor_address(XOR_PEER_ADDRESS, host, port),
    )


def test_loopback_peers_are_refused_by_default(heron: Target) -> None:
    with RawTurnClient(turn_udp(heron), "mallory", USERS["mallory"]) as client:
        assert allocate(client).kind == ALLOCATE_REQUEST | SUCCESS
        for port in (heron.ports["sip.listen"], 6379):
            refused = client.request(
                CREATE_PERMISSION_REQUEST, xor_address(XOR_PEER_ADDRESS, HOST, port)
            )
            assert refused.error == 403, refused


@contextmanager
def _not_heron_port(target: Target) -> Iterator[socket.socket]:
    """A UDP socket on loopback whose port number none of heron's listeners has: the kernel
    may hand out a number heron listens on over TCP only, which TURN rightly refuses."""
    taken = set(target.ports.values())
    unsuitable: list[socket.socket] = []  # held open, so the kernel picks another number
    try:
        while True:
            service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            service.bind((HOST, 0))
            if service.getsockname()[1] not in taken:
                break
            unsuitable.append(service)
    finally:
        for spare in unsuitable:
            spare.close()
    with service:
        yield service


def test_heron_own_listeners_are_refused_where_loopback_is_allowed(
    loopback_allowed: Target,
) -> None:
    with (
        RawTurnClient(turn_udp(loopback_allowed), "mallory", USERS["mallory"]) as client,
        _not_heron_port(loopback_allowed) as service,
    ):
        assert allocate(client).kind == ALLOCATE_REQUEST | SUCCESS
        for number, key in enumerate(sorted(loopback_allowed.ports), 0x4000):
            refused = channel_bind(client, number, HOST, loopback_allowed.ports[key])
            assert refused.error == 403, (key, refused)
        allowed = channel_bind(client, 0x4100, HOST, service.getsockname()[1])
        assert allowed.kind == CHANNEL_BIND_REQUEST | SUCCESS, allowed
