"""Offer/answer rewriting (RFC 3264): Chromium's offer toward a desk phone and back, and the
reverse, with payload type renumbering and the other streams rejected."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from heron.media.rewrite import Codecs, LocalLeg, answer_toward, offer_toward, pt_table, read_leg
from heron.media.sdp import Connection, SdpError, parse
from heron.sip.media import Transport

CHROMIUM = (Path(__file__).parents[2] / "vectors" / "media" / "chromium_offer.sdp").read_bytes()
VIDEO = (
    b"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
    b"a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=rtcp-mux\r\n"
)
PHONE = (
    b"v=0\r\no=- 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
HERON = Connection("203.0.113.5", 4)
PLAIN = LocalLeg(HERON, 30000, Transport.RTP)
BROWSER = LocalLeg(HERON, 30002, Transport.WEBRTC, "ufra", "p" * 24, "sha-256 " + "AB:" * 31 + "AB")


def lines(sdp: bytes) -> list[str]:
    return sdp.decode().split("\r\n")


def test_rfc3264_chromium_offer_toward_a_desk_phone_is_plain_audio() -> None:
    description = parse(CHROMIUM)
    remote = read_leg(description)
    assert remote.transport is Transport.WEBRTC and remote.rtcp_mux
    offer = lines(offer_toward(description, remote, PLAIN))
    assert "m=audio 30000 RTP/AVP 111 9 0 8 110 126" in offer
    assert "c=IN IP4 203.0.113.5" in offer and "a=rtcp:30001" in offer
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in offer
    assert "a=rtpmap:126 telephone-event/8000" in offer
    for leaked in (
        "a=ice",
        "a=fingerprint",
        "a=setup",
        "a=candidate",
        "a=rtcp-mux",
        "a=crypto",
        "a=ssrc",
        "a=extmap",
        "a=group",
        "a=mid",
        "red/48000",
        "CN/8000",
    ):
        assert not any(line.startswith(leaked) or leaked in line for line in offer), leaked


def test_rfc3264_desk_phone_answer_toward_chromium_is_ice_lite_dtls_with_its_numbers() -> None:
    offer = read_leg(parse(CHROMIUM))
    answer_description = parse(PHONE)
    answer = read_leg(answer_description)
    forwarded = lines(answer_toward(answer_description, answer, offer, BROWSER))
    assert "m=audio 30002 UDP/TLS/RTP/SAVPF 0 126" in forwarded
    for needed in (
        "a=ice-lite",
        "a=group:BUNDLE 0",
        "a=mid:0",
        "a=setup:passive",
        "a=rtcp-mux",
        "a=ice-ufrag:ufra",
        "a=candidate:1 1 udp 2130706431 203.0.113.5 30002 typ host",
        "a=rtpmap:126 telephone-event/8000",
        "a=fmtp:126 0-16",
        "a=sendrecv",
    ):
        assert needed in forwarded, needed
    assert any(line.startswith("a=fingerprint:sha-256 ") for line in forwarded)
    table = pt_table(answer.codecs, offer.codecs)
    assert table is not None and table[101] == 126 and table[0] == 0
    back = pt_table(offer.codecs, answer.codecs)
    assert back is not None and back[126] == 101


def test_same_numbers_need_no_payload_type_table() -> None:
    codecs = read_leg(parse(PHONE)).codecs
    assert pt_table(codecs, codecs) is None


def test_rfc3264_6_other_streams_are_not_offered_to_a_phone_and_rejected_in_the_answer() -> None:
    description = parse(CHROMIUM + VIDEO)
    offer = read_leg(description)
    assert b"m=video" not in offer_toward(description, offer, PLAIN)
    answer_description = parse(PHONE)
    forwarded = lines(
        answer_toward(answer_description, read_leg(answer_description), offer, BROWSER)
    )
    media = [line for line in forwarded if line.startswith("m=")]
    assert media == ["m=audio 30002 UDP/TLS/RTP/SAVPF 0 126", "m=video 0 UDP/TLS/RTP/SAVPF 96 97"]
    assert "a=mid:1" in forwarded


def test_desk_phone_offer_toward_a_browser_is_actpass_with_rtcp_mux() -> None:
    description = parse(PHONE)
    offer = lines(offer_toward(description, read_leg(description), BROWSER))
    assert "m=audio 30002 UDP/TLS/RTP/SAVPF 0 101" in offer
    for needed in ("a=setup:actpass", "a=rtcp-mux", "a=mid:0", "a=ice-lite", "a=ptime:20"):
        assert needed in offer, needed


@pytest.mark.parametrize("direction", ["sendonly", "recvonly", "inactive"])
def test_hold_directions_are_kept(direction: str) -> None:
    description = parse(PHONE.replace(b"a=sendrecv", f"a={direction}".encode()))
    offer = lines(offer_toward(description, read_leg(description), BROWSER))
    assert f"a={direction}" in offer and "a=sendrecv" not in offer


def test_session_level_direction_counts_when_the_stream_has_none() -> None:
    body = PHONE.replace(b"a=sendrecv\r\n", b"").replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    assert read_leg(parse(body)).direction == "sendonly"


def test_static_payload_types_need_no_rtpmap() -> None:
    body = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 5004 RTP/AVP 8 9 18\r\n"
    )
    codecs = read_leg(parse(body)).codecs
    assert [(c.pt, c.name) for c in codecs.items] == [(8, "PCMA"), (9, "G722")]


@pytest.mark.parametrize(
    "body",
    [
        PHONE.replace(b"m=audio 4000 RTP/AVP 0 101", b"m=audio 0 RTP/AVP 0 101"),
        PHONE.replace(b"m=audio", b"m=video"),
        PHONE.replace(b"RTP/AVP", b"RTP/SAVP"),
        PHONE.replace(b"0 101", b"18 101"),
        PHONE.replace(b"c=IN IP4 198.51.100.7\r\n", b""),
    ],
    ids=["rejected", "no-audio", "sdes-srtp", "only-g729", "no-address"],
)
def test_streams_heron_cannot_bridge_are_refused(body: bytes) -> None:
    with pytest.raises(SdpError):
        read_leg(parse(body))


def test_an_answer_sharing_no_codec_with_the_offer_is_refused() -> None:
    offer = read_leg(parse(CHROMIUM))
    narrowed = replace(offer, codecs=Codecs(tuple(c for c in offer.codecs.items if c.pt != 8)))
    answer_description = parse(PHONE.replace(b"RTP/AVP 0 101", b"RTP/AVP 8 101"))
    answer = read_leg(answer_description)
    with pytest.raises(SdpError, match="shares no audio codec"):
        answer_toward(answer_description, answer, narrowed, BROWSER)


def test_rfc3264_6_the_answer_keeps_the_offer_s_rtp_profile() -> None:
    description = parse(PHONE.replace(b"RTP/AVP", b"RTP/AVPF"))
    offer = read_leg(description)
    answer_description = parse(CHROMIUM)
    answer = read_leg(answer_description)
    forwarded = answer_toward(answer_description, answer, offer, PLAIN)
    assert b"m=audio 30000 RTP/AVPF 0 101\r\n" in forwarded
