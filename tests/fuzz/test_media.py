"""Mutated STUN, DTLS, SRTP, RTP and RTCP thrown at a keyed browser leg from the address ICE
checked (the deepest path a datagram can take), and at a plain leg from its latched phone:
every mutant is dropped and counted or relayed, never raised, and the call still works.
``HERON_FUZZ_SCALE`` and ``HERON_FUZZ_SEED`` as in test_listeners.py."""

from __future__ import annotations

import datetime
import itertools
import os

from heron.media.call import Drop
from heron.media.dtls import Certificate, DtlsSrtp
from heron.sip.media import Side
from heron.stun import IceControlling, Message, MessageClass, Method, UseCandidate, Username
from tests.fuzz.mutate import Mutator
from tests.support.media import CERTIFICATE, rtcp_receiver_report, rtp
from tests.unit.media.test_call import NAT, PHONE, keyed_browser, webrtc_call


def check() -> bytes:
    """The browser's ICE check that makes NAT its checked address."""
    return Message(
        Method.BINDING,
        MessageClass.REQUEST,
        bytes(range(12)),
        (Username("ours:abcd"), IceControlling(7), UseCandidate()),
    ).encode(b"p" * 24, fingerprint=True)


SCALE = float(os.environ.get("HERON_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("HERON_FUZZ_SEED", "20261207"))
COUNT = int(3000 * SCALE)


def test_mutants_on_a_keyed_browser_leg_are_dropped_never_raised() -> None:
    call, client = keyed_browser()
    assert client.keys is not None
    corpus = [
        check(),
        client.keys.outbound.protect(rtp(1, b"voice" * 32)),
        client.keys.outbound.protect_rtcp(rtcp_receiver_report()),
        bytes([22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 9, 0, 12]) + bytes(12),
        bytes([23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 3, 0, 20]) + bytes(20),
    ]
    for mutant in itertools.islice(Mutator(corpus, SEED, text=False), COUNT):
        call.receive(Side.CALLER, 0, mutant, NAT, 2.0)
        call.outbox.clear()
    assert call.stats.drops[Drop.SRTP] + call.stats.drops[Drop.STUN] > COUNT // 4
    fresh = client.keys.outbound.protect(rtp(60000, b"still here"))
    call.receive(Side.CALLER, 0, fresh, NAT, 3.0)
    assert call.outbox == [(Side.CALLEE, 0, rtp(60000, b"still here"), PHONE)]


def test_mutants_from_a_latched_phone_never_raise() -> None:
    call, _ = keyed_browser()
    corpus = [
        rtp(1, b"voice" * 32),
        rtcp_receiver_report(),
        rtp(2, bytes([5, 0x8A, 3, 0x20]), pt=101),
    ]
    for mutant in itertools.islice(Mutator(corpus, SEED, text=False), COUNT):
        call.receive(Side.CALLEE, 0, mutant, PHONE, 2.0)
        call.receive(Side.CALLEE, 1, mutant, PHONE, 2.0)
        call.outbox.clear()
    call.receive(Side.CALLEE, 0, rtp(3, b"still here", ssrc=0xBEEF), PHONE, 3.0)  # a new stream
    assert len(call.outbox) == 1 and call.outbox[0][3] == NAT


def test_mutated_handshakes_fail_the_leg_or_are_dropped_never_raised() -> None:
    for round_ in range(max(1, COUNT // 300)):
        call = webrtc_call()
        call.receive(Side.CALLER, 0, check(), NAT, 1.0)
        client = DtlsSrtp(
            Certificate.generate(datetime.datetime.now(datetime.UTC), 9).context(),
            False,
            (CERTIFICATE.fingerprint,),
        )
        client.start()
        hello = client.datagrams()
        for mutant in itertools.islice(Mutator(hello, SEED + round_, text=False), 300):
            call.receive(Side.CALLER, 0, mutant, NAT, 1.0)
            call.outbox.clear()
