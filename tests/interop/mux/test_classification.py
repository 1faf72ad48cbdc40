"""What the mux port does with each kind of first bytes, seen from outside (issue 13):
plain HTTP is redirected to HTTPS with its path, and ``/metrics`` counts every
classification once per connection (``heron_mux_*_total``).
"""

from __future__ import annotations

import secrets
import socket
import ssl
import struct
import urllib.request
from collections.abc import Callable

import pytest

from tests.interop.mux.support import DOMAIN, LOCALHOST, SIP_NAME, MuxHeron, mux_counters

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
MAGIC_COOKIE = 0x2112A442
"""RFC 8489 §5."""
STREAM_HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0'"
    b" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


def exchange(server: MuxHeron, data: bytes) -> bytes:
    """``data`` on a new connection to the mux, then everything until heron closes or
    its first answer (one read)."""
    with socket.create_connection((LOCALHOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def closed_at_once(server: MuxHeron, data: bytes) -> bool:
    """Does heron close a connection opening with ``data`` without a word? (A reset too:
    the bytes it peeked at were never read.)"""
    try:
        return exchange(server, data) == b""
    except ConnectionResetError:
        return True


def http_redirect(server: MuxHeron, target: str) -> bytes:
    """A plain HTTP request with a forged Host, read until heron closes."""
    request = f"GET {target} HTTP/1.1\r\nHost: attacker.example\r\n\r\n".encode()
    with socket.create_connection((LOCALHOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def handshake(server: MuxHeron, alpn: list[str], name: str = LOCALHOST) -> str | None:
    """A verified TLS handshake through the mux offering ``alpn``, naming ``name``; the
    ALPN protocol the service that answered selected."""
    context = ssl.create_default_context(cafile=str(server.certificate))
    if alpn:
        context.set_alpn_protocols(alpn)
    with (
        socket.create_connection((LOCALHOST, server.port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return tls.selected_alpn_protocol()


def metrics(server: MuxHeron) -> dict[str, float]:
    """The mux counters, scraped over HTTPS through the mux itself (one ``web_tls``)."""
    context = ssl.create_default_context(cafile=str(server.certificate))
    context.set_alpn_protocols(["http/1.1"])
    url = f"https://{LOCALHOST}:{server.port}/metrics"
    with urllib.request.urlopen(url, context=context, timeout=TIMEOUT) as response:
        page: bytes = response.read()
    return mux_counters(page.decode())


def test_rfc9110_15_4_2_plain_http_is_redirected_to_https_with_its_path(
    shared_mux: MuxHeron,
) -> None:
    answer = http_redirect(shared_mux, "/phone?user=alice")
    head = answer.decode("ascii").split("\r\n")
    assert head[0] == "HTTP/1.1 301 Moved Permanently", answer
    # heron's own name, not the Host header's: a forged Host redirects nowhere else.
    location = f"Location: https://{DOMAIN}:{shared_mux.port}/phone?user=alice"
    assert location in head, answer


def stun_binding() -> bytes:
    """An RFC 8489 §6.1 Binding request with no attributes."""
    return struct.pack("!HHI", 0x0001, 0, MAGIC_COOKIE) + secrets.token_bytes(12)


SIP_OPTIONS = (
    b"OPTIONS sip:localhost SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-mux-probe;rport\r\n"
    b"From: <sip:probe@localhost>;tag=probe\r\n"
    b"To: <sip:localhost>\r\n"
    b"Call-ID: mux-probe@127.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_metrics_count_each_classification_once(shared_mux: MuxHeron) -> None:
    before = metrics(shared_mux)
    answers: dict[str, Callable[[], object]] = {
        "turn_tcp": lambda: exchange(shared_mux, stun_binding())[:2] == b"\x01\x01",
        "sip_tcp": lambda: exchange(shared_mux, SIP_OPTIONS).startswith(b"SIP/2.0 "),
        "xmpp_client_tcp": lambda: b"<stream:stream" in exchange(shared_mux, STREAM_HEADER),
        "http_redirected": lambda: b" 301 " in http_redirect(shared_mux, "/"),
        "turn_tls": lambda: handshake(shared_mux, ["http/1.1", "stun.turn"]) == "stun.turn",
        "xmpp_client_tls": lambda: handshake(shared_mux, ["xmpp-client"]) == "xmpp-client",
        "sip_tls": lambda: handshake(shared_mux, [], SIP_NAME) is None,
        "refused": lambda: closed_at_once(shared_mux, b"SSH-2.0-OpenSSH_9.6\r\n"),
    }
    for kind, answered in answers.items():
        assert answered(), kind
    after = metrics(shared_mux)

    counted = {
        kind: after[f"heron_mux_{kind}_total"] - before[f"heron_mux_{kind}_total"]
        for kind in answers
    }
    assert counted == dict.fromkeys(answers, 1.0), (before, after)
    # The scrape of `after` is one web connection more; every connection is counted.
    assert after["heron_mux_web_tls_total"] - before["heron_mux_web_tls_total"] == 1.0
    connections = after["heron_mux_connections_total"] - before["heron_mux_connections_total"]
    assert connections == len(answers) + 1
    assert after["heron_mux_pending"] == 0
