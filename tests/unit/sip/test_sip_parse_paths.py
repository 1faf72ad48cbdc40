"""The parser's fast paths say the same as the general ones: the same values,
and for malformed text the same error, reason and detail alike.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.sip import BadRequest, MalformedValue, UnanswerableMessage, parse_datagram
from heron.sip.fields import (
    _AUTH_PARAMS_RE,
    _auth_param,
    _parse_any_address,
    parse_address,
    parse_auth,
    parse_cseq,
    parse_via,
)
from heron.sip.grammar import WSP, parse_params, split_commas
from heron.sip.headers import Header, Headers

# -- parameters: one expression per parameter, errors as before -------------------


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        (";tag=x junk", "Unexpected text before parameters", "junk"),
        ("junk", "Unexpected text before parameters", "junk"),
        ("; ;a", "Empty or malformed parameter", ";a"),
        (";", "Empty or malformed parameter", ""),
        (";a= @", "Malformed parameter value", "@"),
        (';a = "open', "Malformed parameter value", '"open'),
        (";a=1;b=", "Malformed parameter value", ""),
    ],
)
def test_malformed_parameters_say_where(text: str, reason: str, detail: str) -> None:
    with pytest.raises(MalformedValue) as error:
        parse_params(text)
    assert (error.value.reason, error.value.detail) == (reason, detail)


def test_parameters_allow_whitespace_around_semi_and_equal_and_after_the_last() -> None:
    params = parse_params(' ;a = 1\t; b ;c="x;y" \t')
    assert params.items == (("a", "1"), ("b", None), ("c", '"x;y"'))


# -- Via: sent-by from a cache, parameters parsed each time ------------------------


def test_vias_sharing_a_sent_by_keep_their_own_parameters() -> None:
    first = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport")
    second = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK2")
    assert (first.branch, "rport" in first.params) == ("z9hG4bK1", True)
    assert (second.branch, "rport" in second.params) == ("z9hG4bK2", False)
    assert (second.host, second.port, second.transport) == ("192.0.2.1", 5060, "UDP")


def test_ipv6_via_with_a_bracketed_received() -> None:
    via = parse_via("SIP/2.0/TCP [2001:db8::1]:5061;received=[2001:db8::2];branch=z9hG4bKx")
    assert (via.host, via.port, via.received) == ("[2001:db8::1]", 5061, "[2001:db8::2]")
    assert via.branch == "z9hG4bKx"


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        # The ";" inside brackets is part of the host, which is then no IPv6 address.
        ("SIP/2.0/UDP [2001:db8::1;x]:5060;branch=z9hG4bKa", "Bad IPv6 reference", None),
        ("SIP/2.0/UDP host:5060 junk;branch=x", "Unexpected text before parameters", None),
        ("SIP/2.0/UDP ;branch=x", "Bad Via", "SIP/2.0/UDP ;branch=x"),
        ("SIP/2.0/UDP host;branch=a:b", "Bad Via branch", "a:b"),
        ("SIP/2.0/UDP host;BRANCH=ok;branch=a:b", None, None),
        ("SIP/2.0/UDP host;Received=x;rport", "Bad Via received", "x"),
    ],
)
def test_via_errors_as_before(text: str, reason: str | None, detail: str | None) -> None:
    if reason is None:
        # Only the first of a repeated parameter is read, and checked.
        assert parse_via(text).branch == "ok"
        return
    with pytest.raises(MalformedValue) as error:
        parse_via(text)
    assert error.value.reason == reason
    assert detail is None or error.value.detail == detail


# -- addresses: <URI> and display name from a cache --------------------------------

ADDRESS_PIECES = [
    "<sip:a@x>", "<sip:a@x", "sip:a@x", "<>", "<sip:a b@x>", "Bob ", '"Bob" ', "B@b ", " ",
    "\t", ";tag=1", ";tag=", ";tag", ";q=0.5", ";", ">", "<", '"', "x", "=", ",", "?",
]  # fmt: skip


def _outcome(parse: object, text: str) -> object:
    assert callable(parse)
    try:
        return parse(text)
    except MalformedValue as error:
        return (error.reason, error.detail)


@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=6).map("".join))
def test_address_fast_path_agrees_with_the_general_parser(text: str) -> None:
    assert _outcome(parse_address, text) == _outcome(_parse_any_address, text.strip(WSP))


def test_addresses_sharing_a_uri_keep_their_own_tags() -> None:
    first = parse_address("Bob <sip:bob@example.com>;tag=1")
    second = parse_address("Bob <sip:bob@example.com>;tag=2")
    assert (first.tag, second.tag) == ("1", "2")
    assert first.uri is second.uri and first.display_name == "Bob"


# -- comma lists -------------------------------------------------------------------


def test_comma_lists_with_quoted_pairs_and_long_hostile_values() -> None:
    assert split_commas('"a\\",b", <sip:x,y>') == ['"a\\",b"', "<sip:x,y>"]
    for bad in ("a" * 20000 + '"' + "b" * 20000, '"\\' * 5000, "a<" * 5000, "x, " * 3000):
        with pytest.raises(MalformedValue):
            split_commas(bad)


def test_cseq_from_the_cache_is_the_same_and_errors_are_raised_every_time() -> None:
    assert parse_cseq("2 REGISTER") is parse_cseq("2 REGISTER")
    for _ in range(2):
        with pytest.raises(MalformedValue):
            parse_cseq("2 REGISTER junk")


# -- header lines --------------------------------------------------------------------


def test_header_key_is_canonical_and_not_compared() -> None:
    assert Header("v", "x").key == "via" and Header("VIA", "x", "via").key == "via"
    assert Header("Via", "x") == Header("Via", "x", "via") != Header("v", "x")
    assert hash(Header("Via", "x")) == hash(Header("Via", "x"))
    assert not hasattr(Header("Via", "x"), "__dict__")


HEAD = (
    b"OPTIONS sip:x@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\n"
    b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n"
)


@pytest.mark.parametrize("bare", [b"\r", b"\n"])
def test_a_bare_cr_or_lf_in_a_field_is_still_a_400(bare: bytes) -> None:
    with pytest.raises(BadRequest) as error:
        parse_datagram(HEAD + b"Subject: a" + bare + b"b\r\n\r\n")
    assert error.value.reason == "Bare CR or LF"


def test_a_bare_cr_in_the_start_line_is_still_refused() -> None:
    with pytest.raises(UnanswerableMessage):
        parse_datagram(HEAD.replace(b"SIP/2.0\r\n", b"SIP/2.0\r\r\n", 1) + b"\r\n")


def test_folded_lines_join_the_value_of_the_field_above() -> None:
    message = parse_datagram(HEAD + b"Subject: a\r\n \t b\r\nv: SIP/2.0/UDP h\r\n\r\n")
    assert message.headers.get("subject") == "a b"  # type: ignore[union-attr]
    assert len(message.headers.vias) == 2  # type: ignore[union-attr]


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["add", "prepend", "remove", "replace", "pop_first"]),
        st.sampled_from(["Via", "v", "Route", "Max-Forwards", "X-Other"]),
        st.sampled_from(["a", "b, c", "d"]),
    ),
    max_size=8,
)


@given(EDITS)
def test_an_edited_list_indexes_its_fields_as_a_fresh_one_would(
    edits: list[tuple[str, str, str]],
) -> None:
    headers = Headers.of([("Via", "x, y"), ("Route", "<sip:r>"), ("To", "<sip:t>")])
    assert headers.get("via") == "x, y"  # the index is built before the edits
    for edit, name, value in edits:
        if edit in ("remove", "pop_first"):
            if edit == "pop_first" and name not in headers:
                continue
            headers = getattr(headers, edit)(name)
        else:
            headers = getattr(headers, edit)(name, value)
    assert headers.by_key() == Headers(headers.entries).by_key()


AUTH_PARAM = st.tuples(
    st.sampled_from(["username", "realm", "x", "", "a b"]),
    st.sampled_from(["=", " = ", "\t=", ""]),
    st.sampled_from(['"a"', '"a,b"', '"a\\"b"', '"<x>"', "MD5", '""', '"', "a<b", "\\"]),
).map("".join)
AUTH_PARAMS = st.tuples(
    st.lists(AUTH_PARAM, min_size=1, max_size=5),
    st.sampled_from([",", " , ", "\t,", ",,", " "]),
).map(lambda pair: pair[1].join(pair[0]))


@given(AUTH_PARAMS)
def test_auth_params_fast_path_agrees_with_the_element_parser(rest: str) -> None:
    rest = " " + rest
    if _AUTH_PARAMS_RE.fullmatch(rest) is None:
        return
    general = [_auth_param(element) for element in split_commas(rest)]
    assert parse_auth("Digest" + rest).params.items == tuple(general)


def test_credentials_with_quoted_commas_take_the_fast_path() -> None:
    rest = ' realm="a, b" ,\tnonce="x\\"y", algorithm=MD5'
    assert _AUTH_PARAMS_RE.fullmatch(rest) is not None
    auth = parse_auth("Digest" + rest)
    assert auth.params.items == (
        ("realm", '"a, b"'),
        ("nonce", '"x\\"y"'),
        ("algorithm", "MD5"),
    )
    assert auth.param("nonce") == 'x"y'
