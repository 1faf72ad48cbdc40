"""JIDs (RFC 7622): splitting, preparation of each part, and comparison."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_jid


def test_rfc7622_3_1_split_into_local_domain_and_resource() -> None:
    assert parse_jid("roland@falcot.com/laptop") == JID("roland", "falcot.com", "laptop")
    assert parse_jid("falcot.com") == JID("", "falcot.com")
    assert parse_jid("falcot.com/admin") == JID("", "falcot.com", "admin")
    assert parse_jid("roland@falcot.com") == JID("roland", "falcot.com")


def test_rfc7622_3_1_the_resource_starts_at_the_first_slash_and_may_hold_more() -> None:
    jid = parse_jid("room@conference.falcot.com/a/b@c")
    assert jid.resource == "a/b@c"
    assert jid.domain == "conference.falcot.com"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@falcot.com",
        "roland@",
        "roland@falcot.com/",
        "/laptop",
        "a@b@falcot.com",
        "rol and@falcot.com",
        'rol"and@falcot.com',
        "rol:and@falcot.com",
        "rol<and@falcot.com",
        "roland@falcot com",
        "roland@falcot.com/lap\x00top",
        "roland@falcot.com/\u0085",
        "roland@\ud800.com",
        "x" * 1024 + "@falcot.com",
        "roland@" + "x" * 1024,
        "roland@falcot.com/" + "é" * 512,
        "a" * 4000,
    ],
)
def test_rfc7622_malformed_addresses_are_jid_malformed(text: str) -> None:
    with pytest.raises(StanzaError) as caught:
        parse_jid(text)
    assert caught.value.condition == StanzaCondition.JID_MALFORMED


def test_rfc7622_3_3_the_localpart_is_case_mapped_and_width_mapped() -> None:
    assert parse_jid("Roland@falcot.com") == parse_jid("roland@falcot.com")
    assert parse_jid("ＲＯＬＡＮＤ@falcot.com").local == "roland"  # fullwidth letters


def test_rfc7622_3_2_the_domainpart_is_lowercased_and_loses_a_final_dot() -> None:
    assert parse_jid("roland@FALCOT.com.") == JID("roland", "falcot.com")
    assert parse_jid("roland@ÉCOLE.fr").domain == "école.fr"


def test_rfc7622_3_4_the_resourcepart_keeps_its_case_and_is_nfc() -> None:
    assert parse_jid("a@b/Laptop").resource == "Laptop"
    assert parse_jid("a@b/Laptop") != parse_jid("a@b/laptop")
    assert parse_jid("a@b/e\u0301").resource == "\u00e9"
    assert parse_jid("a@b/ my phone ").resource == " my phone "


def test_the_size_limit_is_1023_bytes_per_part() -> None:
    assert len(parse_jid("x" * 1023 + "@falcot.com").local) == 1023
    assert parse_jid("a@b/" + "é" * 511).resource == "é" * 511


def test_bare_with_resource_and_str() -> None:
    full = parse_jid("roland@falcot.com/laptop")
    assert full.bare == JID("roland", "falcot.com")
    assert full.bare.is_bare and not full.is_bare
    assert full.bare.with_resource("phone") == parse_jid("roland@falcot.com/phone")
    assert str(full) == "roland@falcot.com/laptop"
    assert str(JID("", "falcot.com", "x")) == "falcot.com/x"
    assert JID.make("Roland", "Falcot.COM", "r") == full.bare.with_resource("r")
    bare = full.bare
    assert bare.bare is bare
    with pytest.raises(StanzaError):
        full.with_resource("")


def test_jids_are_hashable_values() -> None:
    assert len({parse_jid("Roland@falcot.com"), parse_jid("roland@FALCOT.com")}) == 1


def test_rfc8265_3_3_2_case_mapping_is_tolowercase_not_case_folding() -> None:
    assert parse_jid("Straße@falcot.com").local == "straße"


def test_rfc8264_compatibility_characters_are_refused_in_the_localpart() -> None:
    with pytest.raises(StanzaError):
        parse_jid("\u211doland@falcot.com")  # DOUBLE-STRUCK CAPITAL R


_local = st.from_regex(r"[a-zA-Z0-9._-]{1,20}", fullmatch=True)
_domain = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)
_resource = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn")), min_size=1, max_size=20
)


@given(_local, _domain, _resource)
def test_str_then_parse_gives_the_same_jid(local: str, domain: str, resource: str) -> None:
    jid = JID.make(local, domain, resource)
    assert parse_jid(str(jid)) == jid
    assert parse_jid(str(jid.bare)) == jid.bare


@given(st.text(max_size=60))
def test_parse_jid_raises_only_jid_malformed(text: str) -> None:
    try:
        jid = parse_jid(text)
    except StanzaError as error:
        assert error.condition == StanzaCondition.JID_MALFORMED
    else:
        assert parse_jid(str(jid)) == jid
