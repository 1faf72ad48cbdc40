"""SIP and other URIs (RFC 3261 §19.1, §25.1), IPv6 references (RFC 5118)."""

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.sip import AbsoluteUri, MalformedValue, Params, SipLocalError, SipUri, parse_uri


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_rfc3261_19_1_1_every_component() -> None:
    uri = sip(
        "sips:alice:secret@atlanta.com:5061;transport=TCP;lr?subject=project%20x&priority=urgent"
    )
    assert uri == SipUri(
        "atlanta.com",
        "alice",
        "secret",
        5061,
        Params((("transport", "TCP"), ("lr", None))),
        (("subject", "project x"), ("priority", "urgent")),
        "sips",
    )
    assert uri.transport == "tcp" and uri.lr and uri.maddr is None


def test_rfc3261_19_1_1_scheme_is_case_insensitive() -> None:
    uri = sip("SIP:bob@Biloxi.example.com")
    assert uri.scheme == "sip" and uri.host == "Biloxi.example.com"
    assert str(uri) == "SIP:bob@Biloxi.example.com"  # forwarded as received


def test_rfc3261_19_1_1_user_may_hold_telephone_subscriber() -> None:
    uri = sip("sip:+1-212-555-1212;phone-context=example.com@gw.example.com;user=phone")
    assert uri.user == "+1-212-555-1212;phone-context=example.com"
    assert uri.params.get("user") == "phone"


def test_rfc3261_19_1_1_empty_password() -> None:
    assert sip("sip:alice:@example.com").password == ""
    assert sip("sip:alice@example.com").password is None


def test_rfc3261_19_1_4_escapes_are_resolved_once() -> None:
    uri = sip("sip:%61lice@example.com;n%61me=v%61lue%25%34%31")
    assert uri.user == "alice"
    assert uri.params.get("name") == "value%41"


def test_rfc3261_19_1_2_non_utf8_escapes_survive() -> None:
    uri = sip("sip:%FF%00x@example.com")
    assert uri.user == "\udcff\x00x"
    assert str(replace(uri, port=5060)) == "sip:%FF%00x@example.com:5060"


def test_rfc5118_4_1_ipv6_reference() -> None:
    uri = sip("sip:[2001:db8::10]")
    assert (uri.host, uri.port) == ("[2001:db8::10]", None)


def test_rfc5118_4_2_ipv6_without_brackets_is_invalid() -> None:
    with pytest.raises(MalformedValue):
        parse_uri("sip:2001:db8::10")


def test_rfc5118_4_3_port_inside_brackets_is_part_of_the_address() -> None:
    uri = sip("sip:[2001:db8::10:5070]")
    assert (uri.host, uri.port) == ("[2001:db8::10:5070]", None)


def test_rfc5118_4_4_port_after_brackets() -> None:
    uri = sip("sip:[2001:db8::10]:5070")
    assert (uri.host, uri.port) == ("[2001:db8::10]", 5070)


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:alice@",
        "sip:example.com:",
        "sip:example.com:65536",
        "sip:example.com:5060x",
        "sip:example.com;",
        "sip:example.com;=x",
        "sip:example.com;a=",
        "sip:example.com?",
        "sip:example.com?a",
        "sip:al ice@example.com",
        "sip:al%4@example.com",
        "sip:alice@bob@example.com",
        "sip:[2001:db8::1",
        "sip:[fe80::1%25eth0]",
        "sip:256.1.1.1",
        "sip:-host.example.com",
        "sip:host..example.com",
        "<sip:alice@example.com>",
        "1sip:alice",
        "alice",
        "mailto:",
        "http:white space",
    ],
)
def test_rfc3261_25_1_malformed_uris(text: str) -> None:
    with pytest.raises(MalformedValue):
        parse_uri(text)


def test_rfc3261_25_1_absolute_uri_is_opaque() -> None:
    assert parse_uri("tel:+1-201-555-0123") == AbsoluteUri("tel", "+1-201-555-0123")
    assert str(parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")).startswith("urn:uuid:")


def test_parsed_uri_serializes_to_its_source() -> None:
    text = "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
    assert str(parse_uri(text)) == text


def test_built_uri_is_escaped_canonically() -> None:
    uri = SipUri("example.com", "user;par=u@example.net", params=Params((("lr", None),)))
    assert str(uri) == "sip:user;par=u%40example.net@example.com;lr"
    assert str(SipUri("h.example", "a b", "p:w")) == "sip:a%20b:p%3Aw@h.example"
    assert (
        str(SipUri("h.example", headers=(("Route", "<sip:x>"),)))
        == "sip:h.example?Route=%3Csip:x%3E"
    )
    assert str(SipUri("h.example", "Ünï")) == "sip:%C3%9Cn%C3%AF@h.example"


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "example.com:5060"},
        {"host": ""},
        {"host": "h", "user": ""},
        {"host": "h", "scheme": "tel"},
        {"host": "h", "port": 65536},
    ],
)
def test_built_uri_must_be_sendable(fields: dict[str, Any]) -> None:
    with pytest.raises(SipLocalError):
        SipUri(**fields)


def test_replace_drops_the_source_text() -> None:
    uri = replace(sip("sip:%61lice@example.com"), port=5070)
    assert str(uri) == "sip:alice@example.com:5070"
    assert sip("sip:%61lice@example.com") == sip("sip:alice@example.com")


_USERS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_TOKENS = st.text("abcXYZ019-_.!~*'()[]/:&+$%\"<> ", min_size=1, max_size=8)


@given(
    user=st.none() | _USERS,
    password=st.none() | st.text(max_size=6),
    host=st.sampled_from(["example.com", "10.0.0.1", "[2001:db8::1]", "a-b.c.example."]),
    port=st.none() | st.integers(0, 65535),
    params=st.lists(st.tuples(_TOKENS, st.none() | _TOKENS), max_size=3),
    headers=st.lists(st.tuples(_TOKENS, st.text(max_size=6)), max_size=2),
    scheme=st.sampled_from(["sip", "sips"]),
)
def test_sip_uri_round_trips(
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
    headers: list[tuple[str, str]],
    scheme: str,
) -> None:
    password = None if user is None else password
    uri = SipUri(host, user, password, port, Params(tuple(params)), tuple(headers), scheme)
    assert parse_uri(str(uri)) == uri
