"""RTP ⇄ RTP through the bridge over real sockets: two desk phones, latching, hold, delete."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address

import pytest

from heron.media.bridge import Bridge
from heron.sip.media import MediaLeg, MediaRefused, Side, Transport
from tests.support.media import (
    CERTIFICATE,
    bridged,
    loopback_bridge,
    media_settings,
    phones,
    port_of,
    rtcp_receiver_report,
    rtp,
)

LEG = MediaLeg("call-1@test", "z9hG4bK-1")


async def test_rtp_flows_both_ways_with_payload_intact() -> None:
    bridge = loopback_bridge()
    with phones() as (alice, bob):
        toward_alice, toward_bob = bridged(bridge, LEG, alice, bob)
        assert {toward_bob, toward_alice}.isdisjoint({alice.port, bob.port})
        assert toward_bob % 2 == 0 and toward_alice % 2 == 0

        alice.send(rtp(1, b"hello bob"), toward_alice)
        assert await bob.receive() == (rtp(1, b"hello bob"), ("127.0.0.1", toward_bob))
        bob.send(rtp(7, b"hello alice", pt=8), toward_bob)
        assert await alice.receive() == (rtp(7, b"hello alice", pt=8), ("127.0.0.1", toward_alice))
        alice.send(rtcp_receiver_report(), toward_alice + 1, rtcp=True)
        assert await bob.receive(rtcp=True) == (
            rtcp_receiver_report(),
            ("127.0.0.1", toward_bob + 1),
        )
        assert bridge.stats.packets[Side.CALLER] == 2
        (row,) = bridge.rows()
        assert (row["caller_packets"], row["callee_packets"]) == (2, 1)
        assert row["caller_peer"] == f"127.0.0.1:{alice.port}"
        assert row["callee_transport"] == "rtp" and row["callee_port"] == toward_bob
        bridge.close()


async def test_rfc4733_telephone_event_passes_as_its_payload_type() -> None:
    bridge = loopback_bridge()
    with phones() as (alice, bob):
        toward_alice, _ = bridged(bridge, LEG, alice, bob)
        event = rtp(3, bytes([5, 0x8A, 0x03, 0x20]), pt=101)  # digit 5, end, 800 samples
        alice.send(event, toward_alice)
        assert (await bob.receive())[0] == event
        bridge.close()


async def test_latching_sends_to_where_media_comes_from() -> None:
    bridge = loopback_bridge()
    with phones(3) as (alice, bob, bob_moved):
        toward_alice, toward_bob = bridged(bridge, LEG, alice, bob)
        bob_moved.send(rtp(1, b"from elsewhere"), toward_bob)
        assert (await alice.receive())[0] == rtp(1, b"from elsewhere")
        alice.send(rtp(2, b"to where bob is"), toward_alice)
        assert (await bob_moved.receive())[0] == rtp(2, b"to where bob is")
        bridge.close()


async def test_a_stranger_cannot_take_a_live_latched_stream() -> None:
    bridge = loopback_bridge()
    with phones(3) as (alice, bob, stranger):
        toward_alice, toward_bob = bridged(bridge, LEG, alice, bob)
        bob.send(rtp(1, b"bob"), toward_bob)
        assert (await alice.receive())[0] == rtp(1, b"bob")
        stranger.send(rtp(2, b"stranger"), toward_bob)
        bob.send(rtp(3, b"bob again"), toward_bob)
        assert (await alice.receive())[0] == rtp(3, b"bob again")
        assert bridge.stats.drops["source"] == 1
        alice.send(rtp(4, b"to bob"), toward_alice)
        assert (await bob.receive())[0] == rtp(4, b"to bob")
        bridge.close()


async def test_echo_of_a_desk_phone_returns_its_rtp() -> None:
    bridge = loopback_bridge()
    with phones(1) as (phone,):
        answer = bridge.echo(LEG, phone.sdp())
        assert b"RTP/AVP" in answer and b"a=ice" not in answer
        phone.send(rtp(1, b"hello?", ssrc=0x1234), port_of(answer))
        data, source = await phone.receive()
        assert data[12:] == b"hello?" and data[8:12] != (0x1234).to_bytes(4, "big")
        assert source == ("127.0.0.1", port_of(answer))
        bridge.delete(LEG)
        assert bridge.ports == 0


async def test_hold_keeps_the_ports_and_delete_frees_them_all() -> None:
    bridge = loopback_bridge()
    with phones() as (alice, bob):
        toward_alice, toward_bob = bridged(bridge, LEG, alice, bob)
        assert bridge.ports == 4
        held = bridge.offer(LEG, Side.CALLER, alice.sdp(direction="sendonly"), Transport.RTP)
        assert b"a=sendonly\r\n" in held and port_of(held) == toward_bob
        held_answer = bridge.answer(LEG, Side.CALLEE, bob.sdp(direction="recvonly"))
        assert b"a=recvonly\r\n" in held_answer and port_of(held_answer) == toward_alice
        reverse = bridge.offer(LEG, Side.CALLEE, bob.sdp(), Transport.RTP)
        assert port_of(reverse) == toward_alice
        bridge.answer(LEG, Side.CALLER, alice.sdp())
        assert bridge.ports == 4
        alice.send(rtp(1, b"resumed"), toward_alice)
        assert (await bob.receive())[0] == rtp(1, b"resumed")
        bridge.delete(LEG)
        assert bridge.ports == 0 and bridge.calls == 0
        bridge.delete(LEG)  # unknown legs are ignored


async def test_an_early_answer_then_a_final_one_both_apply() -> None:
    bridge = loopback_bridge()
    with phones(3) as (alice, bob, bob_later):
        toward_alice, _ = bridged(bridge, LEG, alice, bob)
        final = bridge.answer(LEG, Side.CALLEE, bob_later.sdp())
        assert port_of(final) == toward_alice
        alice.send(rtp(1, b"to the final answer"), toward_alice)
        assert (await bob_later.receive())[0] == rtp(1, b"to the final answer")
        with pytest.raises(MediaRefused):
            bridge.answer(LEG, Side.CALLER, alice.sdp())  # the offerer cannot answer itself
        bridge.close()


async def test_ipv6_phones_are_bridged_on_an_ipv6_address() -> None:
    settings = media_settings(address="::1", allowed_destinations=["::1/128"])
    bridge = Bridge(settings, ip_address("::1"), lambda _address: True, CERTIFICATE)
    loop = asyncio.get_running_loop()
    alice, bob = (socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2))
    try:
        for sock in (alice, bob):
            sock.bind(("::1", 0))
            sock.setblocking(False)

        def sdp(sock: socket.socket) -> bytes:
            port = sock.getsockname()[1]
            return (
                "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0\r\n"
            ).encode()

        offer = bridge.offer(LEG, Side.CALLER, sdp(alice), Transport.RTP)
        answer = bridge.answer(LEG, Side.CALLEE, sdp(bob))
        assert b"c=IN IP6 ::1\r\n" in offer and b"c=IN IP6 ::1\r\n" in answer
        alice.sendto(rtp(1, b"over v6"), ("::1", port_of(answer)))
        data = await asyncio.wait_for(loop.sock_recv(bob, 2048), 10)
        assert data == rtp(1, b"over v6")
    finally:
        alice.close()
        bob.close()
        bridge.close()
