"""SASLprep, RFC 4013 §3 examples."""

from __future__ import annotations

import pytest

from heron.accounts import saslprep


@pytest.mark.parametrize(
    ("raw", "prepared"),
    [
        ("I\u00adX", "IX"),  # SOFT HYPHEN mapped to nothing
        ("user", "user"),
        ("USER", "USER"),  # case is preserved
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),  # NFKC
        ("a\u00a0b", "a b"),  # non-ASCII space mapped to SPACE
    ],
)
def test_rfc4013_3_examples_prepare(raw: str, prepared: str) -> None:
    assert saslprep(raw) == prepared


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("\u0007", "prohibited"),  # control character
        ("\u0627\u0031", "right-to-left"),  # RandALCat not at both ends
        ("\u00ad", "empty"),
        ("a\u0627b", "mixes"),
    ],
)
def test_rfc4013_3_examples_refused(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        saslprep(raw)
