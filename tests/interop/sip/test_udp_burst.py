"""A burst of datagrams that arrives while heron is not running is answered whole.

The kernel queues what arrives on a UDP listener until the process reads it; past the
socket's receive buffer it drops the rest silently. With Linux's default buffer
(208 KiB) about 150 small requests fit: a server that was not scheduled for a moment,
or was collecting garbage, lost the rest, and every phone retransmitted after T1
(RFC 3261 §17.1.1.2), doubling the load just when the server was behind. heron's SIP
listener asks for 4 MiB, as its TURN listeners do.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.sip.support import DOMAIN, LOCALHOST, SipServer, sip_server
from tests.interop.sip.wire import encode, new_branch, parse

pytestmark = pytest.mark.interop

BURST = 2_000
"""Requests sent while heron is stopped: over ten times what the default buffer holds."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SipServer]:
    """A server of this test's own: it is stopped (SIGSTOP) for a while."""
    with sip_server(tmp_path / "heron", users={"probe": "burst-pass"}) as running:
        yield running


def options(port: int, number: int) -> bytes:
    """A health check's OPTIONS to the server itself, which heron answers 200."""
    headers = [
        ("Via", f"SIP/2.0/UDP {LOCALHOST}:{port};branch={new_branch()};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:probe@{DOMAIN}>;tag=burst{number}"),
        ("To", f"<sip:{DOMAIN}>"),
        ("Call-ID", f"burst-{number}@{LOCALHOST}"),
        ("CSeq", "1 OPTIONS"),
    ]
    return encode(f"OPTIONS sip:{DOMAIN} SIP/2.0", headers).encode()


def test_requests_queued_while_heron_is_stopped_are_all_answered(server: SipServer) -> None:
    pid = server.heron.process.pid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        client.bind((LOCALHOST, 0))
        client.settimeout(30)
        port = client.getsockname()[1]
        os.kill(pid, signal.SIGSTOP)
        try:
            for number in range(BURST):
                client.sendto(options(port, number), (LOCALHOST, server.port))
        finally:
            os.kill(pid, signal.SIGCONT)
        answered = set()
        while len(answered) < BURST:
            response = parse(client.recv(65536).decode())
            assert response.start.startswith("SIP/2.0 200"), response.start
            answered.add(response.get("Call-ID"))

    assert len(answered) == BURST
