"""RTP ⇄ RTP through the bridge over real sockets: two desk phones, latching, hold, delete."""

from __future__ import annotations

from heron.sip.media import MediaLeg, Side, Transport
from tests.support.media import loopback_bridge, phones, port_of, rtcp_receiver_report, rtp

LEG = MediaLeg("call-1@test", "z9hG4bK-1")


async def test_rtp_flows_both_ways_with_payload_intact() -> None:
    bridge = loopback_bridge()
    with phones() as (alice, bob):
        offer = bridge.offer(LEG, Side.CALLER, alice.sdp(), Transport.RTP)
        answer = bridge.answer(LEG, Side.CALLEE, bob.sdp())
        toward_bob, toward_alice = port_of(offer), port_of(answer)
        assert {toward_bob, toward_alice}.isdisjoint({alice.port, bob.port})
        assert toward_bob % 2 == 0 and toward_alice % 2 == 0

        alice.rtp.sendto(rtp(1, b"hello bob"), ("127.0.0.1", toward_alice))
        data, source = await bob.receive()
        assert data == rtp(1, b"hello bob")
        assert source == ("127.0.0.1", toward_bob)

        bob.rtp.sendto(rtp(7, b"hello alice", pt=8), ("127.0.0.1", toward_bob))
        data, source = await alice.receive()
        assert data == rtp(7, b"hello alice", pt=8)
        assert source == ("127.0.0.1", toward_alice)

        alice.rtcp.sendto(rtcp_receiver_report(), ("127.0.0.1", toward_alice + 1))
        data, source = await bob.receive(rtcp=True)
        assert data == rtcp_receiver_report()
        assert source == ("127.0.0.1", toward_bob + 1)
        assert bridge.stats.packets[Side.CALLER] == 2
        bridge.close()


async def test_rfc4733_telephone_event_passes_as_its_payload_type() -> None:
    bridge = loopback_bridge()
    with phones() as (alice, bob):
        bridge.offer(LEG, Side.CALLER, alice.sdp(), Transport.RTP)
        answer = bridge.answer(LEG, Side.CALLEE, bob.sdp())
        event = rtp(3, bytes([5, 0x8A, 0x03, 0x20]), pt=101)  # digit 5, end, 800 samples
        alice.rtp.sendto(event, ("127.0.0.1", port_of(answer)))
        assert (await bob.receive())[0] == event
        bridge.close()


async def test_latching_sends_to_where_media_comes_from_not_the_sdp() -> None:
    bridge = loopback_bridge()
    with phones(3) as (alice, bob, bob_behind_nat):
        offer = bridge.offer(LEG, Side.CALLER, alice.sdp(), Transport.RTP)
        answer = bridge.answer(LEG, Side.CALLEE, bob.sdp())
        bob_behind_nat.rtp.sendto(rtp(1, b"from nat"), ("127.0.0.1", port_of(offer)))
        assert (await alice.receive())[0] == rtp(1, b"from nat")
        alice.rtp.sendto(rtp(2, b"to nat"), ("127.0.0.1", port_of(answer)))
        assert (await bob_behind_nat.receive())[0] == rtp(2, b"to nat")
        bridge.close()


async def test_a_stranger_cannot_take_a_live_latched_stream() -> None:
    bridge = loopback_bridge()
    with phones(3) as (alice, bob, stranger):
        offer = bridge.offer(LEG, Side.CALLER, alice.sdp(), Transport.RTP)
        answer = bridge.answer(LEG, Side.CALLEE, bob.sdp())
        bob.rtp.sendto(rtp(1, b"bob"), ("127.0.0.1", port_of(offer)))
        assert (await alice.receive())[0] == rtp(1, b"bob")
        stranger.rtp.sendto(rtp(2, b"stranger"), ("127.0.0.1", port_of(offer)))
        bob.rtp.sendto(rtp(3, b"bob again"), ("127.0.0.1", port_of(offer)))
        assert (await alice.receive())[0] == rtp(3, b"bob again")
        assert bridge.stats.drops["source"] == 1
        alice.rtp.sendto(rtp(4, b"to bob"), ("127.0.0.1", port_of(answer)))
        assert (await bob.receive())[0] == rtp(4, b"to bob")
        bridge.close()


async def test_hold_keeps_the_ports_and_delete_frees_them_all() -> None:
    bridge = loopback_bridge()
    with phones() as (alice, bob):
        offer = bridge.offer(LEG, Side.CALLER, alice.sdp(), Transport.RTP)
        answer = bridge.answer(LEG, Side.CALLEE, bob.sdp())
        assert bridge.ports == 4
        held = bridge.offer(LEG, Side.CALLER, alice.sdp(direction="sendonly"), Transport.RTP)
        assert b"a=sendonly\r\n" in held and port_of(held) == port_of(offer)
        resumed = bridge.answer(LEG, Side.CALLEE, bob.sdp(direction="recvonly"))
        assert b"a=recvonly\r\n" in resumed and port_of(resumed) == port_of(answer)
        reverse = bridge.offer(LEG, Side.CALLEE, bob.sdp(), Transport.RTP)
        assert port_of(reverse) == port_of(answer)
        bridge.answer(LEG, Side.CALLER, alice.sdp())
        assert bridge.ports == 4
        bridge.delete(LEG)
        assert bridge.ports == 0 and bridge.calls == 0
        bridge.delete(LEG)  # unknown legs are ignored
