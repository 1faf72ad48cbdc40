"""Idle and unauthenticated SIP connections (TCP, TLS, WebSocket) held forever.

Before the fix, any number of connections from one address that never sent a byte
stayed open: each one a file descriptor of heron's. Now a source holds at most
``limits.connections_per_source``, a connection must carry a SIP message within
``limits.handshake_timeout`` and goes after ``limits.idle_timeout`` of silence, unless
a registration lives on it.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp

from tests.interop.sip.wire import digest_credentials, md5_challenge
from tests.security.sip_tools import TcpPeer, request, wait_for
from tests.security.support import DOMAIN, HOST, USERS, target

LIMITS = {"connections_per_source": 4, "handshake_timeout": 1.0, "idle_timeout": 2.0}


def test_idle_tcp_connections_are_refused_over_the_limit_then_closed(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"limits": LIMITS}) as heron:
        port = heron.ports["sip.listen"]
        peers = [TcpPeer(port) for _ in range(6)]
        try:
            # Over the limit: closed at once, whatever the others do.
            assert sum(peer.closed(timeout=5) for peer in peers[4:]) == 2
            # The rest never said a word: closed at the first-message deadline.
            assert all(peer.closed(timeout=10) for peer in peers[:4])
        finally:
            for peer in peers:
                peer.close()
        assert wait_for(lambda: "connection from 127.0.0.1 refused" in heron.log())
        assert wait_for(lambda: "no SIP message in 1 s" in heron.log()), heron.log()
        # Gone, they free their places: a new connection is served.
        fresh = TcpPeer(port)
        try:
            fresh.send(request("OPTIONS", f"sip:{HOST}:{port}", via=fresh.via()))
            assert fresh.receive().status == 200
        finally:
            fresh.close()


def test_a_silent_connection_goes_and_a_registered_one_stays(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"limits": LIMITS}) as heron:
        port = heron.ports["sip.listen"]
        chatty, phone = TcpPeer(port), TcpPeer(port)
        try:
            chatty.send(request("OPTIONS", f"sip:{HOST}:{port}", via=chatty.via()))
            assert chatty.receive().status == 200
            assert register_over(phone).status == 200
            # Silent for idle_timeout (2 s): closed within two checks.
            assert chatty.closed(timeout=30)
            # The phone's connection carries its registration: still served.
            phone.send(request("OPTIONS", f"sip:{HOST}:{port}", via=phone.via()))
            assert phone.receive().status == 200
        finally:
            chatty.close()
            phone.close()
        assert wait_for(lambda: "silent for 2 s" in heron.log()), heron.log()


def register_over(peer: TcpPeer) -> object:
    uri, aor = f"sip:{DOMAIN}", f"<sip:roland@{DOMAIN}>"
    contact = ("Contact", f"<sip:roland@{HOST}:{peer.port};transport=tcp>")
    peer.send(
        request(
            "REGISTER", uri, via=peer.via(), from_=aor, to=aor, call_id="reg-tcp", headers=[contact]
        )
    )
    challenge = peer.receive()
    assert challenge.status == 401, challenge
    credentials = digest_credentials(
        md5_challenge(challenge), "REGISTER", uri, "roland", USERS["roland"]
    )
    peer.send(
        request(
            "REGISTER",
            uri,
            via=peer.via(),
            from_=aor,
            to=aor,
            call_id="reg-tcp",
            cseq=2,
            headers=[contact, ("Authorization", credentials)],
        )
    )
    return peer.receive()


def test_a_tls_handshake_that_never_comes_is_cut(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"limits": LIMITS}) as heron:
        raw = socket.create_connection((HOST, heron.ports["sip.tls_listen"]), timeout=10)
        try:
            raw.settimeout(10)
            assert raw.recv(1) == b""  # closed by heron, not by our timeout
        finally:
            raw.close()


def test_a_silent_websocket_is_closed(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"limits": LIMITS}) as heron:

        async def silent() -> aiohttp.WSMsgType:
            context = heron.tls_context()
            async with aiohttp.ClientSession() as session:
                socket_ = await session.ws_connect(
                    heron.url("/sip").replace("https", "wss"),
                    protocols=("sip",),
                    ssl=context,
                    origin=heron.url("/").rstrip("/"),
                    heartbeat=None,
                )
                message = await socket_.receive(timeout=10)
                return message.type

        kind = asyncio.run(silent())
        assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), kind
        assert wait_for(lambda: "no SIP message in 1 s" in heron.log()), heron.log()
