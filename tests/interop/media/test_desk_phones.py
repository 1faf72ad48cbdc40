"""baresip desk phones call each other, and the echo number, through heron.

Both speak plain RTP, so with ``sip.media_relay = "webrtc"`` (the default) heron's proxy
carries only the signalling and the audio goes phone to phone; with ``always`` it goes
through the media bridge (phones behind NAT). The tests also prove the desk phone fixture
the browser tests rely on: registration over UDP, auto-answer, a tone WAV as microphone, a
recording of what was heard, hold, resume and hang-up over its control connection. Each
phone plays its own frequency, so a recording holding the other's tone cannot be its own
sound looped back; the echo number's caller hears its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from heron.control import query
from tests.support.baresip import baresip
from tests.support.config import free_port
from tests.support.heron import RunningHeron, running_heron
from tests.support.tone import make_tone, tone_report

pytestmark = pytest.mark.interop

DOMAIN = "localhost"
USERS = {f"carol@{DOMAIN}": "carol-desk-secret", f"dave@{DOMAIN}": "dave-desk-secret"}
CAROL_HZ, DAVE_HZ = 1000, 600
TONE_SECONDS = 300
"""Longer than any call: baresip hangs up when its source file ends."""
HEARD_SECONDS = 1.0
"""Recorded seconds that must hold the other phone's tone."""


MEDIA_PORTS = 20
ECHO = "600"


def media_counters(heron: RunningHeron) -> dict[str, Any]:
    """The bridge's ``media.counters`` row: calls, ports, calls_total, packets..."""
    row: dict[str, Any] = asyncio.run(query(heron.config.parent / "var", "media.counters"))[0]
    return row


@contextmanager
def desk_heron(directory: Path, relay: str) -> Iterator[tuple[RunningHeron, tuple[str, int]]]:
    """heron with SIP on UDP, the bridge on loopback and the echo number; its SIP address."""
    sip_port = free_port()
    ports = [free_port() for _ in range(MEDIA_PORTS)]
    settings = {
        "sip": {
            "enabled": True,
            "listen": [f"127.0.0.1:{sip_port}"],
            "tls_listen": [],
            "digest_algorithms": ["MD5"],  # baresip 1.0 fails on SHA-256 challenges
            "media_relay": relay,
            "echo": ECHO,
        },
        "media": {
            "address": "127.0.0.1",
            "port_min": ports[0],
            "port_max": ports[-1],
            "allowed_destinations": ["127.0.0.0/8"],
        },
    }
    with running_heron(directory, settings, USERS) as heron:
        yield heron, ("127.0.0.1", sip_port)
        assert "Traceback" not in "".join(heron.log)


@pytest.mark.parametrize("relay", ["webrtc", "always"])
def test_desk_phones_call_through_heron_and_hear_each_others_tone(
    tmp_path: Path, relay: str
) -> None:
    """``webrtc`` (the default): plain RTP both sides, so the audio goes phone to phone;
    ``always``: through the bridge, which latches onto each phone's address."""
    carol_tone = make_tone(tmp_path / "carol.wav", 8000, TONE_SECONDS, CAROL_HZ)
    dave_tone = make_tone(tmp_path / "dave.wav", 8000, TONE_SECONDS, DAVE_HZ)
    (carol_aor, carol_password), (dave_aor, dave_password) = USERS.items()
    with (
        desk_heron(tmp_path, relay) as (heron, proxy),
        baresip(tmp_path / "carol", carol_aor, carol_password, proxy, carol_tone) as carol,
        baresip(tmp_path / "dave", dave_aor, dave_password, proxy, dave_tone) as dave,
    ):
        carol.dial(f"sip:{dave_aor}")
        for phone in (carol, dave):
            phone.event("CALL_ESTABLISHED")
            phone.event("CALL_RTPESTAB")  # RTP came in from the other side
        during = media_counters(heron)
        assert during["calls"] == (1 if relay == "always" else 0), during
        # baresip reports RTCP every few seconds: two reports are a few seconds of audio.
        for phone in (carol, dave):
            phone.event("CALL_RTCP")
            phone.event("CALL_RTCP")

        carol.run("hold")
        dave.logged("got re-INVITE")  # a=sendonly
        carol.run("resume")
        dave.logged("got re-INVITE")  # a=sendrecv
        dave.event("CALL_RTCP")

        dave.run("hangup")
        carol.event("CALL_CLOSED")  # the BYE reached carol (baresip reports no local close)
        after = media_counters(heron)
        assert (after["calls"], after["ports"]) == (0, 0), after
        if relay == "always":
            assert after["packets_from_caller"] > 0 and after["packets_from_callee"] > 0, after
        else:
            assert after["calls_total"] == 0, after

    for listener, other_hz, own_hz in ((carol, DAVE_HZ, CAROL_HZ), (dave, CAROL_HZ, DAVE_HZ)):
        (recording,) = listener.received()
        heard = tone_report(recording, other_hz)
        assert heard.tone_seconds >= HEARD_SECONDS, (listener.aor, heard)
        assert tone_report(recording, own_hz).tone_seconds == 0, listener.aor


def test_desk_phone_calls_the_echo_number_and_hears_its_own_tone(tmp_path: Path) -> None:
    tone = make_tone(tmp_path / "carol.wav", 8000, TONE_SECONDS, CAROL_HZ)
    aor, password = next(iter(USERS.items()))
    with (
        desk_heron(tmp_path, "webrtc") as (heron, proxy),
        baresip(tmp_path / "carol", aor, password, proxy, tone) as carol,
    ):
        carol.dial(f"sip:{ECHO}@{DOMAIN}")
        carol.event("CALL_ESTABLISHED")
        carol.event("CALL_RTPESTAB")
        assert media_counters(heron)["calls"] == 1
        carol.recorded(2 * HEARD_SECONDS)  # the echo sends RTP only, no RTCP reports
        carol.run("hangup")
        carol.logged("terminate call")
    (recording,) = carol.received()
    heard = tone_report(recording, CAROL_HZ)
    assert heard.tone_seconds >= HEARD_SECONDS, heard
