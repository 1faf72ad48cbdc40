"""Connections to the web port that never speak, or speak too slowly, or are too many.

Seen on the old code: idle connections to heron's ports stayed open for as long as
the peer liked (aiohttp's keep-alive timeout is an hour; a TLS handshake never
begun waited a minute, and one address could open as many as it liked). Now the web
port counts connections per source with every other listener
(``limits.connections_per_source``), gives each one ``limits.handshake_timeout`` to
finish TLS and have a request answered, and closes kept-alive connections once idle.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.security.support import HOST, Target, target
from tests.security.web_support import Browser, wait_for


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Wait (up to ``within`` seconds) for the server to end the connection."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError):
            return True
    return False


def _connect(port: int, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect((HOST, port))
    return sock


@pytest.fixture(scope="module")
def hasty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Short deadlines, to see them act; one server for the tests below, each of which
    connects from an address of its own."""
    limits = {"handshake_timeout": 1, "idle_timeout": 2}
    with target(tmp_path_factory.mktemp("hasty") / "heron", {"limits": limits}) as running:
        yield running


def test_one_address_cannot_hold_more_than_its_share_of_connections(heron: Target) -> None:
    port = heron.ports["web.listen"]
    limit, extra = 256, 24  # limits.connections_per_source, by default
    held = [_connect(port, "127.0.0.4") for _ in range(limit + extra)]
    try:
        refused: set[socket.socket] = set()
        end = time.monotonic() + 10  # well before the handshake deadline closes them all
        while len(refused) < extra and time.monotonic() < end:
            readable, _, _ = select.select([s for s in held if s not in refused], [], [], 0.5)
            refused.update(s for s in readable if _closed_by_server(s, within=0.05))
        assert len(refused) == extra
        wait_for(lambda: "limits.connections_per_source" in heron.log(), "the log line")
        # Everyone else is served meanwhile.
        assert Browser(heron, "127.0.0.5").request("GET", "/healthz").status == 200
    finally:
        for sock in held:
            sock.close()


def test_a_connection_that_never_starts_tls_is_closed(hasty: Target) -> None:
    with _connect(hasty.ports["web.listen"], "127.0.0.6") as sock:
        assert _closed_by_server(sock, within=20)
    wait_for(lambda: "limits.handshake_timeout" in hasty.log(), "the log line")


def test_a_tls_connection_that_sends_no_request_is_closed(hasty: Target) -> None:
    raw = _connect(hasty.ports["web.listen"], "127.0.0.7")
    with hasty.tls_context().wrap_socket(raw) as sock:
        assert _closed_by_server(sock, within=20)


def test_a_request_sent_a_byte_at_a_time_is_cut_short(hasty: Target) -> None:
    """Slowloris: headers that never end, a byte at a time, each well within any timeout."""
    raw = _connect(hasty.ports["web.listen"], "127.0.0.8")
    with hasty.tls_context().wrap_socket(raw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = False
        end = time.monotonic() + 20
        while not closed and time.monotonic() < end:
            try:
                sock.sendall(b"X")
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            closed = _closed_by_server(sock, within=0.2)
        assert closed


def test_a_kept_alive_connection_is_closed_once_idle(hasty: Target) -> None:
    raw = _connect(hasty.ports["web.listen"], "127.0.0.9")
    with hasty.tls_context().wrap_socket(raw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(sock, within=40)  # limits.idle_timeout is 2 s here
