"""Two baresip desk phones call each other through heron and hear each other's tone.

Both speak plain RTP, so heron's proxy carries only the signalling (``sip.media_relay``
defaults to ``webrtc``) and the audio goes phone to phone. The test proves the desk
phone fixture the media bridge tests rely on: registration over UDP, auto-answer, a
tone WAV as microphone, a recording of what was heard, hold, resume and hang-up over
its control connection. Each phone plays its own frequency, so a recording holding the
other's tone cannot be its own sound looped back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.baresip import baresip
from tests.support.config import free_port
from tests.support.heron import running_heron
from tests.support.tone import make_tone, tone_report

pytestmark = pytest.mark.interop

DOMAIN = "localhost"
USERS = {f"carol@{DOMAIN}": "carol-desk-secret", f"dave@{DOMAIN}": "dave-desk-secret"}
CAROL_HZ, DAVE_HZ = 1000, 600
TONE_SECONDS = 300
"""Longer than any call: baresip hangs up when its source file ends."""
HEARD_SECONDS = 1.0
"""Recorded seconds that must hold the other phone's tone."""


def test_desk_phones_call_through_heron_and_hear_each_others_tone(tmp_path: Path) -> None:
    sip_port = free_port()
    settings = {
        "sip": {
            "enabled": True,
            "listen": [f"127.0.0.1:{sip_port}"],
            "tls_listen": [],
            "digest_algorithms": ["MD5"],  # baresip 1.0 fails on SHA-256 challenges
        }
    }
    carol_tone = make_tone(tmp_path / "carol.wav", 8000, TONE_SECONDS, CAROL_HZ)
    dave_tone = make_tone(tmp_path / "dave.wav", 8000, TONE_SECONDS, DAVE_HZ)
    proxy = ("127.0.0.1", sip_port)
    (carol_aor, carol_password), (dave_aor, dave_password) = USERS.items()
    with (
        running_heron(tmp_path, settings, USERS) as heron,
        baresip(tmp_path / "carol", carol_aor, carol_password, proxy, carol_tone) as carol,
        baresip(tmp_path / "dave", dave_aor, dave_password, proxy, dave_tone) as dave,
    ):
        carol.dial(f"sip:{dave_aor}")
        for phone in (carol, dave):
            phone.event("CALL_ESTABLISHED")
            phone.event("CALL_RTPESTAB")  # RTP came in from the other side
        # baresip reports RTCP every few seconds: two reports are a few seconds of audio.
        for phone in (carol, dave):
            phone.event("CALL_RTCP")
            phone.event("CALL_RTCP")

        carol.hold()
        dave.logged("got re-INVITE")  # a=sendonly
        carol.resume()
        dave.logged("got re-INVITE")  # a=sendrecv
        dave.event("CALL_RTCP")

        dave.hangup()
        carol.event("CALL_CLOSED")  # the BYE reached carol (baresip reports no local close)
        assert "Traceback" not in "".join(heron.log)

    for listener, other_hz, own_hz in ((carol, DAVE_HZ, CAROL_HZ), (dave, CAROL_HZ, DAVE_HZ)):
        (recording,) = listener.received()
        heard = tone_report(recording, other_hz)
        assert heard.tone_seconds >= HEARD_SECONDS, (listener.aor, heard)
        assert tone_report(recording, own_hz).tone_seconds == 0, listener.aor
