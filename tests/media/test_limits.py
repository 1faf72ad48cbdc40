"""The bridge's limits and clean-up over real sockets: hostile datagrams, silent calls,
media.max_calls, an exhausted port range, refused SDP."""

from __future__ import annotations

import os
from ipaddress import ip_address

import pytest

from heron.media.bridge import Bridge
from heron.media.call import HOLD_TIMEOUT, Drop
from heron.sip.media import MediaLeg, MediaRefused, Side, Transport
from tests.support.media import (
    CERTIFICATE,
    bridged,
    loopback_bridge,
    media_settings,
    phones,
    rtp,
)

LEG = MediaLeg("limits@test", "z9hG4bK-l")


async def test_hostile_datagrams_are_dropped_and_counted_while_the_call_works() -> None:
    bridge = loopback_bridge()
    with phones(3) as (alice, bob, attacker):
        toward_alice, toward_bob = bridged(bridge, LEG, alice, bob)
        alice.send(rtp(1, b"first"), toward_alice)
        bob.send(rtp(1, b"reply"), toward_bob)
        assert (await bob.receive())[0] == rtp(1, b"first")
        assert (await alice.receive())[0] == rtp(1, b"reply")
        for port in (toward_alice, toward_bob, toward_bob + 1):
            for junk in (os.urandom(200), b"", b"\x80", rtp(9, b"injected")):
                attacker.send(junk, port)
        alice.send(rtp(2, b"second"), toward_alice)
        assert (await bob.receive())[0] == rtp(2, b"second")
        assert sum(bridge.stats.drops.values()) >= 3
        assert bridge.stats.drops[Drop.SOURCE] >= 1
        bridge.close()


async def test_a_call_silent_for_the_timeout_is_ended_and_its_ports_freed() -> None:
    bridge = loopback_bridge(timeout=60, clock=lambda: 100.0)
    with phones() as (alice, bob):
        bridged(bridge, LEG, alice, bob)
        assert bridge.sweep(159.0) == [] and bridge.ports == 4
        assert bridge.sweep(160.0) == [LEG]
        assert bridge.ports == 0 and bridge.calls == 0 and bridge.timeouts == 1


async def test_max_calls_refuses_the_next_with_503() -> None:
    bridge = loopback_bridge(max_calls=1)
    with phones(1) as (alice,):
        bridge.offer(LEG, Side.CALLER, alice.sdp(), Transport.RTP)
        with pytest.raises(MediaRefused) as refused:
            bridge.offer(MediaLeg("other", "b"), Side.CALLER, alice.sdp(), Transport.RTP)
        assert refused.value.status == 503 and bridge.refused == 1
        bridge.delete(LEG)
        bridge.offer(MediaLeg("other", "b"), Side.CALLER, alice.sdp(), Transport.RTP)
        bridge.close()


async def test_an_exhausted_port_range_refuses_with_503_and_leaks_nothing() -> None:
    bridge = loopback_bridge(span=8)
    with phones(1) as (alice,):
        legs = [MediaLeg(f"call-{i}", "b") for i in range(20)]
        with pytest.raises(MediaRefused) as refused:
            for leg in legs:
                bridge.offer(leg, Side.CALLER, alice.sdp(), Transport.RTP)
        assert refused.value.status == 503
        held = bridge.ports
        assert held % 4 == 0 and bridge.calls == held // 4
        for leg in legs:
            bridge.delete(leg)
        assert bridge.ports == 0


@pytest.mark.parametrize(
    "sdp",
    [b"", b"v=0\r\n", b"garbage", b"v=0\r\nm=video 1 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n"],
)
async def test_malformed_sdp_is_refused_with_488_and_opens_nothing(sdp: bytes) -> None:
    bridge = loopback_bridge()
    with pytest.raises(MediaRefused) as refused:
        bridge.offer(LEG, Side.CALLER, sdp, Transport.RTP)
    assert refused.value.status == 488 and bridge.calls == 0 and bridge.ports == 0


async def test_an_answer_without_an_offer_is_refused() -> None:
    bridge = loopback_bridge()
    with phones(1) as (alice,), pytest.raises(MediaRefused):
        bridge.answer(LEG, Side.CALLEE, alice.sdp())


async def test_a_held_call_waits_for_the_hold_timeout_not_the_media_timeout() -> None:
    bridge = loopback_bridge(timeout=60, clock=lambda: 0.0)
    with phones() as (alice, bob):
        bridged(bridge, LEG, alice, bob)
        bridge.offer(LEG, Side.CALLER, alice.sdp(direction="sendonly"), Transport.RTP)
        bridge.answer(LEG, Side.CALLEE, bob.sdp(direction="recvonly"))
        assert bridge.sweep(600.0) == []
        assert bridge.sweep(HOLD_TIMEOUT) == [LEG]


async def test_a_datagram_that_raises_costs_itself_only_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with phones(3) as (alice, bob, trigger):

        def policy(address: tuple[str, int]) -> bool:
            if address[1] == trigger.port:
                raise RuntimeError("a bug in the policy")
            return True

        bridge = Bridge(media_settings(), ip_address("127.0.0.1"), policy, CERTIFICATE)
        toward_alice, toward_bob = bridged(bridge, LEG, alice, bob)
        for sequence in range(3):
            trigger.send(rtp(sequence, b"boom"), toward_alice)
        alice.send(rtp(9, b"fine"), toward_alice)
        assert (await bob.receive())[0] == rtp(9, b"fine")
        assert bridge.stats.drops[Drop.BUG] == 3
        assert caplog.text.count("a datagram raised") == 1
        bridge.close()
