"""Typed header field values and the lexical rules under them (RFC 3261 §20, §25.1)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.sip import (
    MalformedValue,
    NameAddr,
    Params,
    SipLocalError,
    SipUri,
    Via,
    parse_address,
    parse_auth,
    parse_uri,
    parse_via,
)
from heron.sip.fields import parse_call_id, parse_cseq, parse_date
from heron.sip.grammar import parse_params, quote, split_commas, unquote
from heron.sip.headers import canonical_name

# -- addresses: From, To, Contact, Route (RFC 3261 §20.10, §20.20, §20.39) ---


def test_rfc3261_25_1_name_addr_with_quoted_display_name() -> None:
    address = parse_address('"A. G. Bell \\"Alec\\"" <sip:agb@bell-telephone.com> ;tag=a48s')
    assert address.display_name == 'A. G. Bell "Alec"'
    assert address.uri == SipUri("bell-telephone.com", "agb")
    assert address.tag == "a48s"


def test_rfc3261_25_1_token_display_name_is_normalized() -> None:
    address = parse_address("Anonymous \t User <sip:c8oqz84zk7z@privacy.org>;tag=hyh8")
    assert address.display_name == "Anonymous User"


def test_rfc3261_20_10_addr_spec_parameters_belong_to_the_header() -> None:
    address = parse_address("sip:alice@example.com;lr;expires=60")
    assert isinstance(address.uri, SipUri) and address.uri.params.items == ()
    assert address.params.items == (("lr", None), ("expires", "60"))
    assert address.expires == 60


def test_rfc3261_20_10_contact_q_and_expires() -> None:
    contact = parse_address("<sip:a@b>;q=0.7;expires=3600")
    assert (contact.q, contact.expires) == (0.7, 3600)
    for bad in ("<sip:a@b>;q=1.5", "<sip:a@b>;q=0.1234", "<sip:a@b>;expires=4294967296"):
        with pytest.raises(MalformedValue):
            _ = parse_address(bad).q, parse_address(bad).expires


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@b>',
        '"Bob" sip:bob@example.com',
        "Bell, Alexander <sip:a.g.bell@example.com>",
        "< sip:t.watson@example.org >",
        "<sip:a@b",
        "<sip:a@b> junk",
        "<sip:a@b> <sip:c@d>",
        "sip:a@b?Route=x",
        "sip:a@b,sip:c@d",
        "<sip:a@b>;",
        "<sip:a@b>;tag=",
        '<sip:a@b>;x="open',
    ],
)
def test_rfc3261_25_1_malformed_addresses(text: str) -> None:
    with pytest.raises(MalformedValue):
        parse_address(text)


def test_address_serializes_as_name_addr() -> None:
    address = NameAddr(parse_uri("sip:a@b;lr"), 'say "hi"', Params((("tag", "1"),)))
    assert str(address) == '"say \\"hi\\"" <sip:a@b;lr>;tag=1'
    assert parse_address(str(address)) == address
    assert str(address.with_tag("2")) == '"say \\"hi\\"" <sip:a@b;lr>;tag=2'


def test_display_name_with_crlf_cannot_be_sent() -> None:
    with pytest.raises(SipLocalError):
        str(NameAddr(parse_uri("sip:a@b"), "evil\r\nVia: x"))


@given(
    display=st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\r\n")),
    tag=st.none() | st.text("abc123-.!%*_+`'~", min_size=1),
)
def test_address_round_trips(display: str | None, tag: str | None) -> None:
    params = Params() if tag is None else Params((("tag", tag),))
    address = NameAddr(SipUri("example.com", "bob"), display, params)
    assert parse_address(str(address)) == address


# -- Via (RFC 3261 §18.2, §20.42; RFC 3581; RFC 5118) --------------------------


def test_rfc3261_20_42_via_with_lws_everywhere() -> None:
    via = parse_via(
        "SIP  /  2.0 /\tTCP   example.com :  5061 ; branch = z9hG4bK776asdhds ;received=10.0.0.1"
    )
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "TCP",
        "example.com",
        5061,
    )
    assert (via.branch, via.received) == ("z9hG4bK776asdhds", "10.0.0.1")
    assert via.has_rfc3261_branch
    assert str(via) == "SIP/2.0/TCP example.com:5061;branch=z9hG4bK776asdhds;received=10.0.0.1"


def test_rfc3581_rport_with_and_without_value() -> None:
    asked = parse_via("SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bKx")
    assert "rport" in asked.params and asked.rport is None
    filled = parse_via("SIP/2.0/UDP 192.0.2.1;rport=5066;branch=z9hG4bKx")
    assert filled.rport == 5066


def test_rfc3581_4_received_and_rport_are_stamped() -> None:
    asked = parse_via("SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bKx")
    assert str(asked.with_received("192.0.2.1", 5066)) == (
        "SIP/2.0/UDP 192.0.2.1;rport=5066;branch=z9hG4bKx;received=192.0.2.1"
    )


def test_rfc3261_18_2_1_received_only_when_the_source_differs() -> None:
    via = parse_via("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKx")
    assert via.with_received("192.0.2.4", 5060).received == "192.0.2.4"
    same = parse_via("SIP/2.0/UDP [2001:DB8::1]:5060;branch=z9hG4bKx")
    assert same.with_received("2001:db8::1", 5060) == same


def test_rfc5118_4_5_received_with_and_without_brackets() -> None:
    assert (
        parse_via("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255]").received
        == "[2001:db8::9:255]"
    )
    assert (
        parse_via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255").host == "[2001:db8::9:1]"
    )


def test_rfc3261_8_1_1_7_branch_magic_cookie() -> None:
    assert not parse_via("SIP/2.0/UDP h;branch=z9hG4bK").has_rfc3261_branch
    assert not parse_via("SIP/2.0/UDP h;branch=1234").has_rfc3261_branch
    assert not Via("UDP", "h").has_rfc3261_branch


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/2.0/UDPhost",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;branch=a:b",
        "SIP/2.0/UDP host;ttl=256",
        "SIP/2.0/UDP host;rport=x",
        "SIP/2.0/UDP host;received=not-an-ip",
        "SIP/2.0/UDP host;maddr=-bad-",
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/2.0/UDP host junk",
    ],
)
def test_rfc3261_25_1_malformed_vias(text: str) -> None:
    with pytest.raises(MalformedValue):
        parse_via(text)


# -- CSeq, Call-ID, Date ----------------------------------------------------------


def test_rfc3261_20_16_cseq() -> None:
    cseq = parse_cseq("0009 \t INVITE")
    assert (cseq.seq, cseq.method, str(cseq)) == (9, "INVITE", "9 INVITE")
    assert parse_cseq("4294967295 ACK").seq == 2**32 - 1
    for bad in ("4294967296 ACK", "1", "INVITE", "-1 INVITE", "1 IN VITE", "١ INVITE"):
        with pytest.raises(MalformedValue):
            parse_cseq(bad)


def test_rfc3261_20_8_call_id() -> None:
    assert parse_call_id("f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com")
    for bad in ("", "a b", "a@b@c", "@b", "a@"):
        with pytest.raises(MalformedValue):
            parse_call_id(bad)


def test_rfc3261_20_17_date_must_be_gmt() -> None:
    assert parse_date("Sat, 13 Nov 2010 23:29:00 GMT") == datetime(2010, 11, 13, 23, 29, tzinfo=UTC)
    for bad in ("Fri, 01 Jan 2010 16:00:00 EST", "Sat, 30 Feb 2010 00:00:00 GMT", "yesterday"):
        with pytest.raises(MalformedValue):
            parse_date(bad)


# -- credentials and challenges (RFC 3261 §20.7, §20.27, §20.28, §20.44) ----------


def test_rfc3261_22_4_digest_credentials() -> None:
    text = (
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        ' uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b",'
        ' response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    credentials = parse_auth(text)
    assert credentials.scheme == "Digest"
    assert credentials.param("USERNAME") == "bob"
    assert credentials.param("uri") == "sip:bob@biloxi.com"
    assert (credentials.param("qop"), credentials.param("nc")) == ("auth", "00000001")
    assert credentials.param("algorithm") is None
    assert parse_auth(str(credentials)) == credentials


def test_rfc3261_20_44_challenge_with_commas_and_escapes_in_quotes() -> None:
    challenge = parse_auth(
        'Digest realm="a, \\"b\\"", qop="auth,auth-int", stale=FALSE, algorithm=MD5'
    )
    assert challenge.param("realm") == 'a, "b"'
    assert challenge.param("qop") == "auth,auth-int"
    assert challenge.params.get("realm") == '"a, \\"b\\""'  # forwarded as sent


@pytest.mark.parametrize(
    "text", ["", "Digest", "Digest realm", 'Digest realm="x",', "Digest a=b c=d"]
)
def test_rfc3261_25_1_malformed_credentials(text: str) -> None:
    with pytest.raises(MalformedValue):
        parse_auth(text)


# -- lexical rules ---------------------------------------------------------------


def test_rfc3261_7_3_1_comma_lists_respect_quotes_and_angle_brackets() -> None:
    value = '"Doe, John" <sip:j@x;a=1,2>;q=0.5 , <sip:k@y>,sip:z@w'
    assert split_commas(value) == ['"Doe, John" <sip:j@x;a=1,2>;q=0.5', "<sip:k@y>", "sip:z@w"]
    for bad in ("a,,b", ",a", "a,", '"open, x', "<sip:open, x"):
        with pytest.raises(MalformedValue):
            split_commas(bad)


def test_rfc3261_25_1_quoted_pairs() -> None:
    assert unquote('"a\\\\b\\"c\\\x00"') == 'a\\b"c\x00'
    assert unquote("token") == "token"
    assert quote('a\\b"c') == '"a\\\\b\\"c"'
    with pytest.raises(SipLocalError):
        quote("a\nb")


def test_rfc3261_25_1_generic_params() -> None:
    params = parse_params(' ; Tag = x ;lr; maddr=[2001:db8::1] ;p="v;w"')
    assert params.get("tag") == "x" and "LR" in params and params.get("lr") is None
    assert params.get("p") == '"v;w"' and params.get("missing") is None
    assert str(params) == ';Tag=x;lr;maddr=[2001:db8::1];p="v;w"'
    assert params.set("tag", "y").items[0] == ("Tag", "y")
    assert params.set("new").items[-1] == ("new", None)
    assert "tag" not in params.remove("TAG") and len(params.remove("tag")) == 3


@pytest.mark.parametrize(
    ("compact", "name"),
    [
        ("a", "accept-contact"),
        ("b", "referred-by"),
        ("c", "content-type"),
        ("d", "request-disposition"),
        ("e", "content-encoding"),
        ("f", "from"),
        ("i", "call-id"),
        ("j", "reject-contact"),
        ("k", "supported"),
        ("l", "content-length"),
        ("m", "contact"),
        ("n", "identity-info"),
        ("o", "event"),
        ("r", "refer-to"),
        ("s", "subject"),
        ("t", "to"),
        ("u", "allow-events"),
        ("v", "via"),
        ("x", "session-expires"),
        ("y", "identity"),
    ],
)
def test_rfc3261_7_3_3_compact_forms(compact: str, name: str) -> None:
    assert canonical_name(compact) == canonical_name(compact.upper()) == name
    assert canonical_name(name.upper()) == name
