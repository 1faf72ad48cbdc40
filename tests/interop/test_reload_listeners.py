"""Issue 16's listeners: ``heron reload`` rebinds the ones a new configuration moves.

The new addresses are bound before anything else changes, so a port that cannot be
bound refuses the whole reload; the old ones stop accepting, and what they accepted
(slixmpp sessions, an s2s connection, a SIP TLS connection) carries on.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.interop.sip.support import SipServer, sip_server
from tests.interop.xmpp.support import TIMEOUT, XmppServer, connect, log_out, xmpp_server
from tests.support.config import free_port, render_toml
from tests.support.heron import merge

pytestmark = [pytest.mark.interop]

LOCALHOST = "127.0.0.1"
S2S_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)


def reload(server: XmppServer | SipServer, **changes: Any) -> subprocess.CompletedProcess[str]:
    """Merge ``changes`` into the running configuration's file and run ``heron reload``."""
    config = server.heron.config
    settings = merge(tomllib.loads(config.read_text()), changes)
    config.write_text(render_toml(settings))
    return server.heron.cli("reload")


def s2s_features(sock: socket.socket) -> bytes:
    """Open an s2s stream on ``sock``: heron answers with its header and features."""
    sock.sendall(S2S_HEADER)
    answer = b""
    while b"</stream:features>" not in answer:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer


def options(sock: socket.socket, number: int) -> bytes:
    """An OPTIONS to heron itself over ``sock`` (connected UDP, TCP or TLS); the status
    line of its answer."""
    host, port = sock.getsockname()[:2]
    transport = {socket.SOCK_DGRAM: "UDP", socket.SOCK_STREAM: "TCP"}[sock.type]
    transport = "TLS" if isinstance(sock, ssl.SSLSocket) else transport
    sock.sendall(
        (
            "OPTIONS sip:localhost SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK-reload-{number};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@localhost>;tag=probe{number}\r\n"
            "To: <sip:localhost>\r\n"
            f"Call-ID: reload-{number}@{host}\r\n"
            f"CSeq: {number} OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


def sip_tls(server: SipServer, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(server.certificate))
    context.check_hostname = False
    raw = socket.create_connection((LOCALHOST, port), timeout=TIMEOUT)
    return context.wrap_socket(raw)


def refused(port: int) -> bool:
    try:
        socket.create_connection((LOCALHOST, port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_reload_moves_xmpp_c2s_and_s2s_listeners_and_keeps_their_streams(
    tmp_path: Path,
) -> None:
    s2s_port = free_port()
    with xmpp_server(
        tmp_path,
        users=("alice", "bob", "carol"),
        xmpp={"s2s_listen": [f"{LOCALHOST}:{s2s_port}"]},
    ) as server:
        alice = await connect(server, "alice")
        bob = await connect(server, "bob", direct_tls=True)
        with socket.create_connection((LOCALHOST, s2s_port), timeout=TIMEOUT) as early:
            assert b"urn:ietf:params:xml:ns:xmpp-tls" in s2s_features(early)
            port, tls_port, s2s_to = free_port(), free_port(), free_port()
            moved = reload(
                server,
                xmpp={
                    "listen": [f"{LOCALHOST}:{port}"],
                    "tls_listen": [f"{LOCALHOST}:{tls_port}"],
                    "s2s_listen": [f"{LOCALHOST}:{s2s_to}"],
                },
            )
            assert (moved.returncode, moved.stdout) == (0, "reloaded\n"), moved.stderr
            # The stream accepted before the reload goes on: STARTTLS is answered.
            early.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            assert b"<proceed" in early.recv(4096)
        assert refused(server.port) and refused(server.tls_port) and refused(s2s_port)
        with socket.create_connection((LOCALHOST, s2s_to), timeout=TIMEOUT) as late:
            assert b"urn:ietf:params:xml:ns:xmpp-tls" in s2s_features(late)
        old = (server.port, server.tls_port)
        server.port, server.tls_port = port, tls_port
        carol = await connect(server, "carol")
        carol_direct = await connect(server, "carol", direct_tls=True, resource="direct")

        # Sessions from before the reload still carry messages, to and from the new ones.
        alice.send_message(mto="bob@localhost/test", mbody="still here", mtype="chat")
        assert (await bob.next_message("still here"))["from"] == "alice@localhost/test"
        bob.send_message(mto="carol@localhost/direct", mbody="hello carol", mtype="chat")
        assert (await carol_direct.next_message("hello carol"))["from"] == "bob@localhost/test"

        # A port in use refuses the whole reload: nothing opens, nothing closes.
        with socket.socket() as taken:
            taken.bind((LOCALHOST, 0))
            taken.listen()
            busy = f"{LOCALHOST}:{taken.getsockname()[1]}"
            spare = free_port()
            refusal = reload(
                server,
                xmpp={
                    "listen": [f"{LOCALHOST}:{port}", busy],
                    "tls_listen": [f"{LOCALHOST}:{spare}"],
                },
            )
        assert refusal.returncode == 2, refusal.stderr
        assert "xmpp.listen" in refusal.stderr and busy in refusal.stderr
        assert refused(spare) and not refused(tls_port) and not refused(port)

        # Federation on or off needs a restart: its listeners keep their addresses.
        unfederated = reload(
            server,
            xmpp={
                "listen": [f"{LOCALHOST}:{port}"],
                "tls_listen": [f"{LOCALHOST}:{tls_port}"],
                "s2s_listen": [],
            },
        )
        assert unfederated.stdout == "reloaded; restart needed for: xmpp.s2s_listen\n"
        assert not refused(s2s_to) and refused(old[0])
        await log_out([alice, bob, carol, carol_direct])


def udp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    sock.connect((LOCALHOST, port))
    return sock


def test_reload_moves_sip_listeners_and_keeps_their_connections(tmp_path: Path) -> None:
    with sip_server(tmp_path, users={}) as server:
        with (
            sip_tls(server, server.tls_port) as early_tls,
            socket.create_connection((LOCALHOST, server.port), timeout=TIMEOUT) as early_tcp,
        ):
            assert options(early_tls, 1) == options(early_tcp, 2) == b"SIP/2.0 200 OK"
            port, tls_port = free_port(), free_port()
            moved = reload(
                server,
                sip={"listen": [f"{LOCALHOST}:{port}"], "tls_listen": [f"{LOCALHOST}:{tls_port}"]},
            )
            assert (moved.returncode, moved.stdout) == (0, "reloaded\n"), moved.stderr
            assert options(early_tls, 3) == options(early_tcp, 4) == b"SIP/2.0 200 OK"
        assert refused(server.tls_port) and refused(server.port)
        with udp(server.port) as gone, pytest.raises(ConnectionRefusedError):
            options(gone, 5)  # ICMP port unreachable: the old UDP socket is closed
        with (
            sip_tls(server, tls_port) as tls,
            socket.create_connection((LOCALHOST, port), timeout=TIMEOUT) as tcp,
            udp(port) as datagrams,
        ):
            assert options(tls, 6) == options(tcp, 7) == options(datagrams, 8) == b"SIP/2.0 200 OK"

        # A port in use refuses the whole reload: the UDP and TCP of sip.listen together.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind((LOCALHOST, 0))
            busy = f"{LOCALHOST}:{taken.getsockname()[1]}"
            refusal = reload(server, sip={"listen": [f"{LOCALHOST}:{port}", busy]})
        assert refusal.returncode == 2 and "sip.listen" in refusal.stderr, refusal.stderr
        assert not refused(port) and not refused(tls_port)
        assert refused(int(busy.rsplit(":", 1)[1]))  # its TCP half was closed again
