"""Text a peer chose never breaks a log line (issue 10: CR/LF in logged values)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import loggable


def test_line_breaks_and_controls_are_escaped() -> None:
    assert loggable("PLAIN\r\n2026-01-01 CRITICAL forged\x00") == (
        "PLAIN\\r\\n2026-01-01 CRITICAL forged\\x00"
    )
    assert loggable("a\u2028b\x85c") == "a\\u2028b\\x85c"
    assert loggable("é ü 中") == "é ü 中"


@given(st.text())
def test_nothing_a_peer_sends_makes_two_lines(text: str) -> None:
    assert len(loggable(text, limit=10_000).splitlines()) <= 1
