"""Attacks on the port-443 mux: connections that never say what they are, too many of
them, bytes of no protocol, a ClientHello trickled byte by byte, a forged Host.

The mux reads nothing it has not been sent and decides within ``mux.first_bytes_timeout``
with at most ``mux.pending_per_source`` undecided connections per source network; what
it cannot name it closes, and it counts each outcome in ``/metrics``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.security.support import HOST, Target, target
from tests.security.web_support import Browser, wait_for
from tests.support.config import free_port

PENDING = 4


@pytest.fixture(scope="module")
def muxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Every service, and the mux with the shortest deadline the configuration allows
    and a small pending limit, to see both act; each test below connects from a
    loopback address of its own."""
    port = free_port()
    mux = {"listen": [f"{HOST}:{port}"], "first_bytes_timeout": 1, "pending_per_source": PENDING}
    with target(tmp_path_factory.mktemp("muxed") / "heron", {"mux": mux}) as running:
        running.ports["mux.listen"] = port
        yield running


def _connect(target: Target, source: str) -> socket.socket:
    sock = socket.create_connection((HOST, target.ports["mux.listen"]), source_address=(source, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def _counter(target: Target, name: str) -> float:
    metrics = Browser(target).request("GET", "/metrics").text
    match = re.search(rf"^heron_mux_{name}(?:_total)? (\S+)$", metrics, re.MULTILINE)
    assert match is not None, f"heron_mux_{name} missing from /metrics"
    return float(match[1])


class TlsClient:
    """A real TLS client over memory, so that the test sends its bytes however it likes."""

    def __init__(self, target: Target, alpn: list[str]) -> None:
        context = target.tls_context()
        context.set_alpn_protocols(alpn)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            self.tls.do_handshake()
        self.hello = self.outgoing.read()

    def finish_handshake(self, sock: socket.socket) -> None:
        """The rest of the handshake, once the ClientHello is sent."""
        sock.settimeout(10)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(self.outgoing.read())
                data = sock.recv(65536)
                assert data, "the server closed during the handshake"
                self.incoming.write(data)
        sock.sendall(self.outgoing.read())

    def get(self, sock: socket.socket, path: str) -> bytes:
        """One HTTP/1.1 request over the secured connection; the whole answer."""
        self.tls.write(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        sock.sendall(self.outgoing.read())
        answer = b""
        while chunk := sock.recv(65536):
            self.incoming.write(chunk)
            try:
                while data := self.tls.read(65536):
                    answer += data
            except ssl.SSLWantReadError:
                continue
            return answer  # b"": the server's close_notify
        return answer


def test_a_client_hello_trickled_a_byte_per_segment_is_still_served(muxed: Target) -> None:
    """A ClientHello split over many segments (a middlebox's doing, or an attacker's) is
    peeked again as each arrives and then handed over whole: TLS and HTTP work."""
    client = TlsClient(muxed, ["http/1.1"])
    before = _counter(muxed, "web_tls")
    with _connect(muxed, "127.0.0.21") as sock:
        for index in range(40):
            sock.send(client.hello[index : index + 1])
            time.sleep(0.005)  # separate segments, not synchronisation
        sock.sendall(client.hello[40:])
        client.finish_handshake(sock)
        assert client.tls.selected_alpn_protocol() == "http/1.1"
        answer = client.get(sock, "/healthz")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    assert _counter(muxed, "web_tls") == before + 1


def test_a_connection_that_never_names_its_service_is_closed_at_the_deadline(
    muxed: Target,
) -> None:
    before = _counter(muxed, "timeouts")
    hello = TlsClient(muxed, ["stun.turn"]).hello
    with _connect(muxed, "127.0.0.22") as sock:
        sock.sendall(hello[:20])  # a record header and a little: never the whole hello
        assert _closed_by_server(sock, within=20)
    wait_for(lambda: _counter(muxed, "timeouts") == before + 1, "the timeout counted")


def test_one_address_holds_no_more_undecided_connections_than_its_share(muxed: Target) -> None:
    held = [_connect(muxed, "127.0.0.23") for _ in range(PENDING)]
    try:
        for sock in held:  # the server has taken each into its count
            assert not _closed_by_server(sock, within=0.05)
        extra = [_connect(muxed, "127.0.0.23") for _ in range(3)]
        for sock in extra:
            assert _closed_by_server(sock, within=5)
            sock.close()
        # Another address is served meanwhile, through the same port.
        client = TlsClient(muxed, ["http/1.1"])
        with _connect(muxed, "127.0.0.24") as other:
            other.sendall(client.hello)
            client.finish_handshake(other)
            assert client.get(other, "/healthz").startswith(b"HTTP/1.1 200")
        wait_for(lambda: "connection from 127.0.0.23 refused" in muxed.log(), "the log line")
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize(
    "first_bytes",
    [
        b"\x7fELF\x02\x01\x01\x00" * 4,  # no protocol at all
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",  # a protocol heron does not serve
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",  # a TLS record that is no ClientHello
        b"\x00\x01\x00\x00\x21\x12\xa4\x43" + b"\x00" * 11,  # a STUN header cut short
    ],
    ids=["binary", "ssh", "server-hello", "stun-cut-short"],
)
def test_bytes_of_no_known_protocol_are_closed_without_waiting(
    muxed: Target, first_bytes: bytes
) -> None:
    def decided() -> float:  # on the bytes, or on the end of them: not at the deadline
        return _counter(muxed, "refused") + _counter(muxed, "closed_early")

    before = decided()
    with _connect(muxed, "127.0.0.25") as sock:
        sock.sendall(first_bytes)
        with contextlib.suppress(OSError):  # refused already, on what came
            sock.shutdown(socket.SHUT_WR)
        assert _closed_by_server(sock, within=5)
    wait_for(lambda: decided() == before + 1, "the refusal counted")


def test_plain_http_is_redirected_to_the_configured_host_never_the_clients(
    muxed: Target,
) -> None:
    before = _counter(muxed, "http_redirected")
    with _connect(muxed, "127.0.0.26") as sock:
        sock.sendall(b"GET /phone?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head = answer.decode("ascii")
    assert head.startswith("HTTP/1.1 301 ")
    port = muxed.ports["mux.listen"]
    assert f"\r\nLocation: https://localhost:{port}/phone?x=1\r\n" in head
    assert "evil" not in head
    assert _counter(muxed, "http_redirected") == before + 1
