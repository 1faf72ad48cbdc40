"""What the TURN attacks share: a raw UDP client bound to any loopback address, and the
server's own counters (read over its control socket, as ``/metrics`` reads them)."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from heron.control import query
from tests.interop.turn.stun_wire import (
    ALLOCATE_REQUEST,
    MAGIC_COOKIE,
    REFRESH_REQUEST,
    REQUESTED_TRANSPORT,
    SUCCESS,
    UDP,
    RawTurnClient,
    Response,
    attribute,
    parse,
    plain,
)
from tests.security.support import HOST, Target, target

__all__ = [
    "ALLOCATE_REQUEST",
    "REFRESH_REQUEST",
    "SUCCESS",
    "UDP_TRANSPORT",
    "RawTurnClient",
    "allocate",
    "answer_to",
    "counters",
    "prime",
    "send_signed",
    "turn_udp",
    "with_turn_workers",
]

UDP_TRANSPORT = plain(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))


def turn_udp(target: Target) -> tuple[str, int]:
    return HOST, target.ports["turn.listen"]


def counters(target: Target) -> dict[str, Any]:
    """The ``turn.counters`` view of the running server."""
    rows = asyncio.run(query(target.data_dir, "turn.counters"))
    return rows[0]


def allocate(client: RawTurnClient) -> Response:
    return client.request(ALLOCATE_REQUEST, UDP_TRANSPORT)


def prime(client: RawTurnClient) -> None:
    """Take a realm and a nonce from an unsigned Allocate's 401, as every client first does."""
    transaction_id = os.urandom(12)
    body = attribute(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))
    header = struct.pack("!HHI", ALLOCATE_REQUEST, len(body), MAGIC_COOKIE) + transaction_id
    client.sock.sendto(header + body, client.server)
    challenge = answer_to(client, transaction_id)
    assert challenge.error == 401, challenge
    client.realm, client.nonce = challenge.attributes[0x0014], challenge.attributes[0x0015]


def send_signed(client: RawTurnClient, kind: int = ALLOCATE_REQUEST) -> bytes:
    """Send one signed request without waiting for the answer; its transaction id."""
    transaction_id = os.urandom(12)
    body = attribute(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))
    client.sock.sendto(client.encode(kind, transaction_id, body), client.server)
    return transaction_id


def answer_to(client: RawTurnClient, transaction_id: bytes) -> Response:
    """The answer to ``transaction_id`` (others are skipped); fails after a few seconds."""
    for _ in range(20):
        try:
            data, _ = client.sock.recvfrom(65535)
        except TimeoutError:
            continue
        response = parse(data)
        if response.transaction_id == transaction_id:
            return response
    raise AssertionError("no answer from the server")


@contextmanager
def with_turn_workers(directory: Path, workers: int = 3) -> Iterator[Target]:
    """The target with TURN in ``workers`` processes (``turn.workers``); the kernel spreads
    client addresses over them. Ready once each worker said "heron serving"."""
    with target(directory, {"turn": {"workers": workers}}) as running:
        deadline = time.monotonic() + 60
        while running.log().count("heron serving") < workers:
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.1)
        yield running
