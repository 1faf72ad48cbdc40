"""The read rate of one XMPP connection, client or server (Prosody's mod_limits)."""

from __future__ import annotations

from heron.xmpp.read_rate import ReadRate


def test_the_read_rate_pauses_a_connection_past_its_burst() -> None:
    rate = ReadRate(1000, 4000)
    assert rate.pause(4000, now=10.0) == 0.0  # the burst
    assert rate.pause(1000, now=10.0) == 1.0  # one second's worth over it
    assert rate.pause(0, now=11.0) == 0.0  # drained meanwhile
    assert rate.pause(500, now=20.0) == 0.0
    assert ReadRate(0, 0).pause(10**9, now=0.0) == 0.0  # 0: unlimited


def test_the_burst_holds_four_seconds_or_one_largest_stanza() -> None:
    assert ReadRate.for_stanzas(1000, 100).pause(4000, now=0.0) == 0.0
    assert ReadRate.for_stanzas(1000, 100).pause(4001, now=0.0) > 0.0
    assert ReadRate.for_stanzas(1000, 10_000).pause(10_000, now=0.0) == 0.0
