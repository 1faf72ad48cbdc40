"""Issue 10 item 5, TURN's listeners: idle connections were held forever.

Many TCP connections to the TURN port from one address that never send a byte:
those beyond ``limits.connections_per_source`` are refused at once, the rest are
closed when ``limits.handshake_timeout`` passes without an allocation, while a
client that allocated over TCP keeps its connection.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.interop.turn.stun_wire import (
    NONCE,
    REALM,
    REFRESH_REQUEST,
    REQUESTED_TRANSPORT,
    UDP,
    RawTurnClient,
    Response,
    attribute,
    parse,
)
from tests.security.support import HOST, USERS, Target, target
from tests.security.turn_wire import ALLOCATE_REQUEST, SUCCESS, counters

HANDSHAKE = 3
PER_SOURCE = 40
IDLER = "127.0.0.9"


@pytest.fixture
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    limits = {"handshake_timeout": HANDSHAKE, "connections_per_source": PER_SOURCE}
    with target(tmp_path_factory.mktemp("heron"), {"limits": limits}) as running:
        yield running


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``sock`` before ``deadline`` (it never sends anything)."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def read_message(sock: socket.socket) -> Response:
    header = b""
    while len(header) < 20:
        header += sock.recv(20 - len(header))
    length = struct.unpack("!H", header[2:4])[0]
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return parse(header + body)


@contextmanager
def tcp_allocation(target: Target) -> Iterator[tuple[socket.socket, RawTurnClient]]:
    """A TCP connection holding an allocation of roland's (RFC 8656 §3.1 over TCP)."""
    stun = RawTurnClient((HOST, target.ports["turn.listen"]), "roland", USERS["roland"])
    with stun, socket.create_connection((HOST, target.ports["turn.listen"]), 5) as sock:
        body = attribute(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))
        sock.sendall(stun.encode(ALLOCATE_REQUEST, b"tcp-allocate", body))
        challenge = read_message(sock)
        assert challenge.error == 401, challenge
        stun.realm, stun.nonce = challenge.attributes[REALM], challenge.attributes[NONCE]
        sock.sendall(stun.encode(ALLOCATE_REQUEST, b"tcp-allocat2", body))
        granted = read_message(sock)
        assert granted.kind == ALLOCATE_REQUEST | SUCCESS, granted
        yield sock, stun


def test_idle_connections_from_one_address_are_refused_then_closed(strict: Target) -> None:
    port = strict.ports["turn.listen"]
    with tcp_allocation(strict) as (allocated, stun), ExitStack() as stack:
        idle = []
        for _ in range(PER_SOURCE + 20):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((IDLER, 0))
            sock.connect((HOST, port))
            idle.append(sock)

        soon = time.monotonic() + 1
        over = [s for s in idle[PER_SOURCE:] if closed_by_server(s, soon)]
        assert len(over) == 20, "connections beyond the per-source limit were held"
        later = time.monotonic() + HANDSHAKE + 30
        assert all(closed_by_server(s, later) for s in idle[:PER_SOURCE])

        # The allocated connection outlived the handshake deadline and still works.
        allocated.sendall(stun.encode(REFRESH_REQUEST, b"tcp-refresh0", b""))
        assert read_message(allocated).kind == REFRESH_REQUEST | SUCCESS
    assert counters(strict)["connections_closed"] >= PER_SOURCE
    assert "connections_per_source" in strict.log()
    assert f"no allocation within {HANDSHAKE} s" in strict.log()
