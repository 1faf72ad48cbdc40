"""The SIP proxy as an open relay: strangers' ACKs, stray responses, forged in-dialog
requests, and requests (authenticated ones too) aimed at loopback.

Before the fix, an unauthenticated ACK matching no transaction, a 200 OK with an unknown
branch, or any request with a To tag and a Route naming heron was forwarded wherever its
Request-URI, Route or second Via said, loopback included; an authenticated user could
INVITE sip:x@127.0.0.1:6379 and heron connected there. A victim socket on loopback
stands in for Redis: nothing must reach it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.sip.wire import (
    SDP,
    Call,
    SipMessage,
    UserAgent,
    WebSocketChannel,
    digest_credentials,
    md5_challenge,
    tag_of,
)
from tests.security.sip_tools import Phone, UdpPeer, branch, listener, request, wait_for
from tests.security.support import DOMAIN, HOST, USERS, Target, target
from tests.support.dns_stub import dns_stub_thread


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One heron for the attacks that are answered (each test uses its own sockets)."""
    with target(Path(tmp_path_factory.mktemp("sip-relay"))) as running:
        yield running


def heron_route(heron: Target, extra: str = "") -> str:
    return f"<sip:{HOST}:{heron.ports['sip.listen']};lr{extra}>"


def probe(peer: UdpPeer, heron: Target) -> SipMessage:
    """Any request heron answers, from ``peer``: once its answer is here, heron has
    dealt with every datagram ``peer`` sent before it (one socket, handled in order)."""
    peer.send(request("OPTIONS", f"sip:nobody@{DOMAIN}", via=peer.via()))
    return peer.final()


def in_dialog(method: str, uri: str, peer: UdpPeer, route: str, **fields: str) -> bytes:
    to = fields.pop("to", f"<sip:roland@{DOMAIN}>") + f";tag={secrets.token_hex(4)}"
    return request(method, uri, via=peer.via(), to=to, headers=[("Route", route)], **fields)


# --- ACKs and responses that no transaction of heron's expects ---------------------------


def test_stray_ack_is_not_relayed_to_loopback_over_udp(shared: Target) -> None:
    attacker = UdpPeer(shared.ports["sip.listen"])
    victim = UdpPeer(shared.ports["sip.listen"])
    try:
        for route in ((), (("Route", heron_route(shared)),)):
            attacker.send(
                request(
                    "ACK",
                    f"sip:x@{HOST}:{victim.port}",
                    via=attacker.via(),
                    to=f"<sip:x@{HOST}>;tag=1",
                    headers=list(route),
                    body="PING\r\n",
                )
            )
        probe(attacker, shared)
        assert victim.nothing(within=0.5)
    finally:
        attacker.close()
        victim.close()


def test_stray_ack_does_not_make_heron_connect_to_loopback(heron: Target) -> None:
    attacker = UdpPeer(heron.ports["sip.listen"])
    try:
        with listener() as redis:
            attacker.send(
                request(
                    "ACK",
                    f"sip:x@{HOST}:{redis.getsockname()[1]};transport=tcp",
                    via=attacker.via(),
                    to=f"<sip:x@{HOST}>;tag=1",
                    body="SET owned 1\r\n",
                )
            )
            assert wait_for(lambda: "did not record-route refused" in heron.log()), heron.log()
            redis.settimeout(0.5)
            with pytest.raises(TimeoutError):
                redis.accept()
    finally:
        attacker.close()


def test_stray_200_with_an_unknown_branch_is_dropped(shared: Target) -> None:
    attacker = UdpPeer(shared.ports["sip.listen"])
    victim = UdpPeer(shared.ports["sip.listen"])
    try:
        response = (
            "SIP/2.0 200 OK\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{shared.ports['sip.listen']};branch={branch()}\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{victim.port};branch={branch()}\r\n"
            f"From: <sip:a@{DOMAIN}>;tag=1\r\nTo: <sip:b@{DOMAIN}>;tag=2\r\n"
            "Call-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 6\r\n\r\nPING\r\n"
        )
        attacker.send(response.encode())
        probe(attacker, shared)
        assert victim.nothing(within=0.5)
    finally:
        attacker.close()
        victim.close()


def test_ack_with_max_forwards_zero_is_not_forwarded(shared: Target) -> None:
    attacker = UdpPeer(shared.ports["sip.listen"])
    victim = UdpPeer(shared.ports["sip.listen"])
    try:
        attacker.send(
            request(
                "ACK",
                f"sip:x@{HOST}:{victim.port}",
                via=attacker.via(),
                to=f"<sip:x@{HOST}>;tag=1",
                max_forwards=0,
                headers=[("Route", heron_route(shared))],
            )
        )
        probe(attacker, shared)
        assert victim.nothing(within=0.5)
    finally:
        attacker.close()
        victim.close()


# --- forged in-dialog requests ------------------------------------------------------------


@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "REFER", "OPTIONS", "BYE", "NOTIFY"])
def test_forged_in_dialog_request_gets_481(shared: Target, method: str) -> None:
    attacker = UdpPeer(shared.ports["sip.listen"])
    victim = UdpPeer(shared.ports["sip.listen"])
    try:
        for route in (heron_route(shared), heron_route(shared, ";hs=" + "0" * 32)):
            attacker.send(
                in_dialog(method, f"sip:x@{HOST}:{victim.port}", attacker, route, body="hello")
            )
            answer = attacker.final()
            assert answer.status == 481, answer
        assert victim.nothing(within=0.5)
    finally:
        attacker.close()
        victim.close()


def test_in_dialog_request_without_our_route_gets_481(shared: Target) -> None:
    attacker = UdpPeer(shared.ports["sip.listen"])
    try:
        to = f"<sip:roland@{DOMAIN}>;tag=1"
        attacker.send(request("BYE", f"sip:roland@{DOMAIN}", via=attacker.via(), to=to))
        assert attacker.final().status == 481
    finally:
        attacker.close()


# --- the seal: a real dialog goes on, a borrowed seal does not -----------------------------


def answer_invite(callee: Phone) -> tuple[SipMessage, str]:
    """The INVITE heron forwards to ``callee``, answered 200 with its Record-Route."""
    invite = callee.peer.receive()
    while invite.method != "INVITE":
        invite = callee.peer.receive()
    to_tag = secrets.token_hex(4)
    lines = [
        "SIP/2.0 200 OK",
        *(f"Via: {via}" for via in invite.all("Via")),
        *(f"Record-Route: {route}" for route in invite.all("Record-Route")),
        f"From: {invite.get('From')}",
        f"To: {invite.get('To')};tag={to_tag}",
        f"Call-ID: {invite.get('Call-ID')}",
        f"CSeq: {invite.get('CSeq')}",
        f"Contact: {callee.contact}",
        "Content-Length: 0",
    ]
    callee.peer.send(("\r\n".join(lines) + "\r\n\r\n").encode())
    return invite, to_tag


def test_only_the_dialog_heron_sealed_goes_through(shared: Target) -> None:
    port = shared.ports["sip.listen"]
    caller, callee = Phone(port, "roland"), Phone(port, "mallory")
    try:
        assert callee.register().status == 200
        call_id = secrets.token_hex(8)
        # roland calls mallory; heron record-routes the INVITE with its seal.
        answered: list[tuple[SipMessage, str]] = []
        thread = threading.Thread(target=lambda: answered.append(answer_invite(callee)))
        thread.start()
        ok = caller.invite(f"sip:mallory@{DOMAIN}", call_id=call_id)
        thread.join(10)
        assert ok.status == 200, ok
        invite, to_tag = answered[0]
        (route,) = ok.all("Record-Route")
        assert ";hs=" in route, route
        from_ = ok.get("From")
        to = ok.get("To")

        def bye(
            call: str = call_id, from_: str = from_, to: str = to, uri: str = callee.contact
        ) -> bytes:
            return (
                f"BYE {uri.strip('<>')} SIP/2.0\r\nVia: {caller.peer.via()}\r\n"
                f"Max-Forwards: 70\r\nRoute: {route}\r\nFrom: {from_}\r\nTo: {to}\r\n"
                f"Call-ID: {call}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
            ).encode()

        # The seal of this dialog does not open another one, nor another identity in it.
        caller.peer.send(bye(call="other-" + call_id))
        assert caller.peer.final().status == 481
        forged_from = re.sub(r"sip:roland@", "sip:admin@", from_)
        caller.peer.send(bye(from_=forged_from))
        assert caller.peer.final().status == 481
        # Nor may it send the callee's side somewhere else on loopback.
        with listener(socket.SOCK_DGRAM) as redis:
            elsewhere = f"<sip:x@{HOST}:{redis.getsockname()[1]}>"
            caller.peer.send(bye(uri=elsewhere))
            assert caller.peer.final().status == 403
        # The dialog itself goes on: the BYE reaches mallory through heron.
        caller.peer.send(bye())
        received = callee.peer.receive()
        assert received.method == "BYE" and received.get("Call-ID") == call_id, received
        assert tag_of(received.get("To")) == to_tag
    finally:
        caller.close()
        callee.close()


# --- authenticated users and loopback ------------------------------------------------------


def test_authenticated_user_cannot_invite_loopback(shared: Target) -> None:
    phone = Phone(shared.ports["sip.listen"], "roland")
    try:
        with listener(socket.SOCK_DGRAM) as redis:
            uri = f"sip:x@{HOST}:{redis.getsockname()[1]}"
            answer = phone.invite(uri)
            assert answer.status == 403, answer
            redis.settimeout(0.5)
            with pytest.raises(TimeoutError):
                redis.recv(65535)
    finally:
        phone.close()


def test_authenticated_user_cannot_route_through_heron_to_loopback(shared: Target) -> None:
    phone = Phone(shared.ports["sip.listen"], "roland")
    try:
        with listener() as redis:
            hop = f"<sip:{HOST}:{redis.getsockname()[1]};transport=tcp;lr>"
            answer = phone.invite("sip:someone@example.com", routes=[hop])
            assert answer.status == 403, answer
            redis.settimeout(0.5)
            with pytest.raises(TimeoutError):
                redis.accept()
    finally:
        phone.close()


def test_route_driven_request_keeps_from_bound_to_the_credentials(shared: Target) -> None:
    phone = Phone(shared.ports["sip.listen"], "roland")
    try:
        answer = phone.invite(
            "sip:someone@example.com",
            from_=f"<sip:admin@{DOMAIN}>",
            routes=["<sip:198.51.100.7;lr>"],
        )
    finally:
        phone.close()
    assert answer.status == 403, answer
    assert "From Does Not Match" in answer.start, answer


def test_web_phone_user_cannot_invite_loopback(shared: Target) -> None:
    # The browser's way in: SIP over WebSocket, digest with the account's password.
    async def attack(port: int) -> int | None:
        url = shared.url("/sip").replace("https://", "wss://")
        channel = await WebSocketChannel.connect(url, shared.tls_context())
        agent = UserAgent(channel, "roland", USERS["roland"], domain=DOMAIN)
        try:
            call = Call(agent, f"sip:x@{HOST}:{port}", secrets.token_hex(8))
            responses = await call.send_invite(SDP)
            if responses[-1].status == 407:
                await call.ack_non_2xx(responses[-1])
                credentials = digest_credentials(
                    md5_challenge(responses[-1]), "INVITE", call.target, "roland", USERS["roland"]
                )
                responses = await call.send_invite(SDP, ("Proxy-Authorization", credentials))
            return responses[-1].status
        finally:
            await channel.close()

    with listener(socket.SOCK_DGRAM) as redis:
        assert asyncio.run(attack(redis.getsockname()[1])) == 403
        redis.settimeout(0.5)
        with pytest.raises(TimeoutError):
            redis.recv(65535)


def test_a_domain_whose_dns_names_loopback_is_not_reached(tmp_path: Path) -> None:
    # DNS rebinding: evil.test's SIP server "is" 127.0.0.1 (its SRV names Redis's port).
    with dns_stub_thread({}) as dns, listener(socket.SOCK_DGRAM) as redis:
        port = redis.getsockname()[1]
        dns.add("evil.test", "NAPTR", '10 50 "s" "SIP+D2U" "" _sip._udp.evil.test.')
        dns.add("_sip._udp.evil.test", "SRV", f"10 10 {port} redis.evil.test.")
        dns.add("redis.evil.test", "A", HOST)
        with target(tmp_path / "heron", {"dns": {"servers": [dns.address]}}) as heron:
            phone = Phone(heron.ports["sip.listen"], "roland")
            try:
                answer = phone.invite("sip:x@evil.test")
            finally:
                phone.close()
        assert answer.status == 403, answer
        assert dns.asked("redis.evil.test")  # it looked, and did not go
        redis.settimeout(0.5)
        with pytest.raises(TimeoutError):
            redis.recv(65535)
