"""One call's packet path, sans-IO: RFC 7983 demux, latching, payload type renumbering, the
echo's SSRC, and hostile datagrams dropped and counted."""

from __future__ import annotations

import datetime
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from heron.media.call import RELATCH_AFTER, Call, Drop, PlainEndpoint, Stats
from heron.media.dtls import Certificate, DtlsSrtp
from heron.media.ice import CONSENT_TIMEOUT, IceLite
from heron.media.rewrite import read_leg
from heron.media.sdp import parse
from heron.media.webrtc import Kind, WebRtcEndpoint, classify
from heron.sip.media import MediaLeg, Side
from heron.stun import IceControlling, Message, MessageClass, Method, UseCandidate, Username
from tests.support.media import CERTIFICATE, rtcp_receiver_report, rtp

LEG = MediaLeg("c", "b")
PHONE_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
PHONE = ("192.0.2.10", 4000)
NAT = ("203.0.113.8", 61000)


def allowed(address: tuple[str, int]) -> bool:
    return not address[0].startswith("10.")


def plain_call(echo: bool = False) -> Call:
    call = Call(LEG, Stats(), 0.0, echo=echo)
    remote = read_leg(parse(PHONE_SDP))
    call.sides[Side.CALLER] = PlainEndpoint(remote, allowed)
    if not echo:
        call.sides[Side.CALLEE] = PlainEndpoint(remote, allowed)
    return call


def test_rfc7983_first_byte_ranges() -> None:
    assert [classify(bytes([b])) for b in (0, 3, 20, 63, 128, 191)] == [
        Kind.STUN,
        Kind.STUN,
        Kind.DTLS,
        Kind.DTLS,
        Kind.RTP,
        Kind.RTP,
    ]
    assert {classify(bytes([b])) for b in (4, 16, 19, 64, 79, 127, 192, 255)} == {Kind.OTHER}
    assert classify(b"") is Kind.OTHER


def test_before_any_packet_media_goes_to_the_sdp_address_if_allowed() -> None:
    call = plain_call()
    call.receive(Side.CALLER, 0, rtp(1, b"x"), PHONE, 1.0)
    assert call.outbox == [(Side.CALLEE, 0, rtp(1, b"x"), PHONE)]


def test_only_the_sdp_host_may_latch_when_media_may_go_there() -> None:
    call = plain_call()
    call.receive(Side.CALLER, 0, rtp(1, b"x"), NAT, 1.0)
    assert call.outbox == [] and call.stats.drops[Drop.SOURCE] == 1
    call.receive(Side.CALLER, 0, rtp(2, b"x"), ("192.0.2.10", 4444), 1.0)
    assert len(call.outbox) == 1


def test_behind_nat_the_first_source_latches() -> None:
    call = plain_call()
    remote = read_leg(parse(PHONE_SDP.replace(b"192.0.2.10", b"10.0.0.5")))
    call.sides[Side.CALLER] = PlainEndpoint(remote, allowed)
    call.receive(Side.CALLER, 0, rtp(1, b"x"), NAT, 1.0)
    call.receive(Side.CALLEE, 0, rtp(1, b"y"), PHONE, 1.0)
    assert call.outbox[-1] == (Side.CALLER, 0, rtp(1, b"y"), NAT)


def test_an_sdp_address_the_policy_refuses_gets_nothing_until_latched() -> None:
    call = plain_call()
    remote = read_leg(parse(PHONE_SDP.replace(b"192.0.2.10", b"10.0.0.5")))
    call.sides[Side.CALLEE] = PlainEndpoint(remote, allowed)
    call.receive(Side.CALLER, 0, rtp(1, b"x"), PHONE, 1.0)
    assert call.outbox == [] and call.stats.drops[Drop.NOT_READY] == 1


def test_media_from_a_refused_address_is_dropped_and_not_latched() -> None:
    call = plain_call()
    remote = read_leg(parse(PHONE_SDP.replace(b"192.0.2.10", b"10.0.0.5")))
    call.sides[Side.CALLER] = PlainEndpoint(remote, allowed)
    call.receive(Side.CALLER, 0, rtp(1, b"x"), ("10.1.2.3", 5000), 1.0)
    assert call.outbox == [] and call.stats.drops[Drop.REFUSED] == 1


def test_a_silent_latched_source_may_be_replaced_after_a_while() -> None:
    call = plain_call()
    remote = read_leg(parse(PHONE_SDP.replace(b"192.0.2.10", b"10.0.0.5")))
    call.sides[Side.CALLEE] = PlainEndpoint(remote, allowed)
    call.receive(Side.CALLEE, 0, rtp(1, b"x"), NAT, 1.0)
    moved = ("203.0.113.8", 62000)
    call.receive(Side.CALLEE, 0, rtp(2, b"x"), moved, 1.5)
    assert call.stats.drops[Drop.SOURCE] == 1
    call.receive(Side.CALLEE, 0, rtp(3, b"x"), moved, 1.0 + RELATCH_AFTER)
    call.outbox.clear()
    call.receive(Side.CALLER, 0, rtp(4, b"x"), PHONE, 4.0)
    assert call.outbox[-1][3] == moved


def test_payload_types_are_renumbered_in_rtp_not_rtcp() -> None:
    call = plain_call()
    table = bytearray(range(128))
    table[101] = 126
    call.pt_tables[Side.CALLER] = bytes(table)
    call.receive(Side.CALLER, 0, rtp(1, b"ev", pt=101 | 0x80), PHONE, 1.0)
    assert call.outbox[0][2] == rtp(1, b"ev", pt=126 | 0x80)  # marker bit kept
    call.receive(Side.CALLER, 1, rtcp_receiver_report(), PHONE, 1.0)
    assert call.outbox[1][2] == rtcp_receiver_report() and call.outbox[1][1] == 1


def test_echo_sends_back_to_the_sender_under_another_ssrc_and_drops_rtcp() -> None:
    call = plain_call(echo=True)
    call.receive(Side.CALLER, 0, rtp(1, b"hi", ssrc=0x11223344), PHONE, 1.0)
    ((side, component, data, target),) = call.outbox
    assert (side, component, target) == (Side.CALLER, 0, PHONE)
    assert data[12:] == b"hi" and data[8:12] != bytes.fromhex("11223344")
    call.receive(Side.CALLER, 1, rtcp_receiver_report(), PHONE, 1.0)
    assert len(call.outbox) == 1


def test_silence_expires_the_call() -> None:
    call = plain_call()
    assert not call.expired(59.0, 60.0)
    call.receive(Side.CALLER, 0, rtp(1, b"x"), PHONE, 30.0)
    assert not call.expired(89.0, 60.0) and call.expired(90.0, 60.0)


def webrtc_call() -> Call:
    call = plain_call()
    chromium = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        b"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
        b"a=ice-pwd:" + b"q" * 24 + b"\r\na=fingerprint:sha-256 " + b"AB:" * 31 + b"AB\r\n"
        b"a=setup:actpass\r\na=rtcp-mux\r\n"
    )
    remote = read_leg(parse(chromium))
    endpoint = WebRtcEndpoint(
        remote, IceLite("ours", "p" * 24, "abcd"), CERTIFICATE.context(), allowed
    )
    endpoint.set_role(server=True)
    call.sides[Side.CALLER] = endpoint
    return call


@given(st.binary(max_size=300))
def test_hostile_datagrams_on_a_webrtc_leg_are_dropped_never_raised(data: bytes) -> None:
    call = webrtc_call()
    call.receive(Side.CALLER, 0, data, NAT, 1.0)
    assert call.outbox == [] or call.outbox[0][3] == NAT
    assert call.stats.packets[Side.CALLER] == 0


@given(st.binary(max_size=300))
def test_hostile_datagrams_on_a_plain_leg_never_raise(data: bytes) -> None:
    call = plain_call()
    call.receive(Side.CALLEE, 1, data, NAT, 1.0)
    call.receive(Side.CALLEE, 0, data, NAT, 1.0)


def test_rtp_and_dtls_from_an_address_ice_did_not_check_are_dropped() -> None:
    call = webrtc_call()
    call.receive(Side.CALLER, 0, rtp(1, b"x" * 20), NAT, 1.0)
    call.receive(Side.CALLER, 0, bytes([22, 0xFE, 0xFD]) + bytes(60), NAT, 1.0)
    assert call.stats.drops[Drop.SOURCE] == 2 and call.outbox == []


def test_nothing_goes_to_a_browser_before_ice_and_dtls() -> None:
    call = webrtc_call()
    call.receive(Side.CALLEE, 0, rtp(1, b"x"), PHONE, 1.0)
    assert call.outbox == [] and call.stats.drops[Drop.NOT_READY] == 1


def test_certificate_fingerprint_is_sha256_of_der() -> None:
    fingerprint = CERTIFICATE.fingerprint
    assert isinstance(CERTIFICATE, Certificate)
    assert fingerprint.startswith("sha-256 ") and len(fingerprint.split()[1]) == 95


def keyed_browser() -> tuple[Call, DtlsSrtp]:
    """A WebRTC leg after a check from NAT and a real DTLS handshake with a client of ours."""
    call = webrtc_call()
    check = Message(
        Method.BINDING,
        MessageClass.REQUEST,
        bytes(12),
        (Username("ours:abcd"), IceControlling(7), UseCandidate()),
    ).encode(b"p" * 24, fingerprint=True)
    call.receive(Side.CALLER, 0, check, NAT, 1.0)
    endpoint = call.sides[Side.CALLER]
    assert isinstance(endpoint, WebRtcEndpoint)
    browser_cert = Certificate.generate(datetime.datetime.now(datetime.UTC), 3)
    endpoint.update(replace(endpoint.remote, fingerprints=(browser_cert.fingerprint,)))
    endpoint.set_role(server=True)
    client = DtlsSrtp(browser_cert.context(), False, (CERTIFICATE.fingerprint,))
    client.start()
    while datagrams := client.datagrams():
        call.outbox.clear()
        for datagram in datagrams:
            call.receive(Side.CALLER, 0, datagram, NAT, 1.0)
        for _, _, datagram, _ in call.outbox:
            client.receive(datagram)
    call.outbox.clear()
    return call, client


def test_srtp_failing_authentication_is_dropped_and_counted_and_good_srtp_passes() -> None:
    call, client = keyed_browser()
    assert client.keys is not None
    protected = client.keys.outbound.protect(rtp(1, b"voice" * 10))
    tampered = bytearray(protected)
    tampered[20] ^= 1
    call.receive(Side.CALLER, 0, bytes(tampered), NAT, 2.0)
    assert call.stats.drops[Drop.SRTP] == 1 and call.outbox == []
    call.receive(Side.CALLER, 0, protected, NAT, 2.0)
    assert call.outbox == [(Side.CALLEE, 0, rtp(1, b"voice" * 10), PHONE)]
    call.receive(Side.CALLER, 0, protected, NAT, 2.0)  # a replay
    assert call.stats.drops[Drop.SRTP] == 2


def test_media_toward_the_browser_is_protected_and_stops_when_consent_expires() -> None:
    call, client = keyed_browser()
    assert client.keys is not None
    call.receive(Side.CALLEE, 0, rtp(1, b"hello"), PHONE, 2.0)
    ((side, _, protected, target),) = call.outbox
    assert (side, target) == (Side.CALLER, NAT)
    assert client.keys.inbound.unprotect(protected) == rtp(1, b"hello")
    call.outbox.clear()
    call.handle_timer(1.0 + CONSENT_TIMEOUT)
    call.receive(Side.CALLEE, 0, rtp(2, b"hello"), PHONE, 31.5)
    assert call.outbox == [] and call.stats.drops[Drop.NOT_READY] == 1


def test_consent_checks_keep_a_silent_browser_call_alive() -> None:
    call = webrtc_call()
    check = Message(
        Method.BINDING, MessageClass.REQUEST, bytes(12), (Username("ours:abcd"), IceControlling(1))
    ).encode(b"p" * 24, fingerprint=True)
    call.receive(Side.CALLER, 0, check, NAT, 50.0)
    assert not call.expired(100.0, 60.0) and call.expired(110.0, 60.0)
