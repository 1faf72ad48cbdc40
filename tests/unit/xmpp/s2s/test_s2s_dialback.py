"""XEP-0185 dialback keys, checked against the XEPs' own examples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.s2s import dialback_key, key_matches


def test_xep0185_3_the_example_key() -> None:
    key = dialback_key(b"s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F")
    assert key == "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"


def test_xep0220_2_1_1_the_initiating_servers_key() -> None:
    key = dialback_key(b"s3cr3tf0rd14lb4ck", "montague.example", "capulet.example", "D60000229F")
    assert key == "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"


def test_xep0220_2_2_2_the_authoritative_server_checks_the_key() -> None:
    key = "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"
    # The key travels as element text, with the whitespace the examples show around it.
    assert key_matches(b"d14lb4ck43v3r", "capulet.example", "montague.example", "417GAF25", key)
    assert key_matches(
        b"d14lb4ck43v3r", "capulet.example", "montague.example", "417GAF25", f"\n  {key}\n"
    )
    assert not key_matches(b"other", "capulet.example", "montague.example", "417GAF25", key)
    assert not key_matches(b"d14lb4ck43v3r", "capulet.example", "montague.example", "X", key)
    # Swapping the roles gives another key: receiving and originating are not symmetric.
    assert not key_matches(b"d14lb4ck43v3r", "montague.example", "capulet.example", "417GAF25", key)


@given(st.text(max_size=80))
def test_any_offered_key_is_compared_without_raising(offered: str) -> None:
    assert key_matches(b"s", "a.example", "b.example", "id", offered) is (
        offered.strip() == dialback_key(b"s", "a.example", "b.example", "id")
    )
