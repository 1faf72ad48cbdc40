"""SDP parsing and serializing (RFC 8866) with limits: Chromium's real offer, hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.media.sdp import MAX_LINES, MAX_MEDIA, MAX_SIZE, Media, SdpError, parse
from tests.support.media import Phone

CHROMIUM = (Path(__file__).parents[2] / "vectors" / "media" / "chromium_offer.sdp").read_bytes()


def test_rfc8866_chromium_offer_parses_and_serializes_byte_for_byte() -> None:
    description = parse(CHROMIUM)
    assert description.encode() == CHROMIUM
    (audio,) = description.media
    assert (audio.kind, audio.port, audio.proto) == ("audio", 38676, "UDP/TLS/RTP/SAVPF")
    assert audio.formats == ("111", "63", "9", "0", "8", "13", "110", "126")
    assert audio.attribute("ice-ufrag") == "nHXi"
    assert audio.attribute("rtcp-mux") == ""
    assert len(audio.attributes("candidate")) == 8
    assert description.connection_of(audio) is not None
    assert description.attributes("group") == ["BUNDLE 0"]


def test_rfc8866_lf_only_line_ends_are_read_and_crlf_written() -> None:
    text = CHROMIUM.replace(b"\r\n", b"\n")
    assert parse(text).encode() == CHROMIUM


def test_a_desk_phone_sdp_with_session_level_c_line() -> None:
    phone = Phone()
    try:
        description = parse(phone.sdp())
    finally:
        phone.close()
    (audio,) = description.media
    assert audio.connection is None
    connection = description.connection_of(audio)
    assert connection is not None and connection.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"o=- 1 1 IN IP4 1.2.3.4\r\n", "no v=0 first"),
        (b"v=0\r\nm=audio\r\n", "short m= line"),
        (b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "port out of range"),
        (b"v=0\r\nm=audio x RTP/AVP 0\r\n", "port not a number"),
        (b"v=0\r\nc=IN IP4 not-an-address\r\n", "c= not an IP"),
        (b"v=0\r\nc=IN IP6 192.0.2.1\r\n", "c= wrong version"),
        (b"v=0\r\nc=IN IP4\r\n", "c= short"),
        (b"v=0\r\nX=1\r\n", "unknown line type"),
        (b"v=0\r\nnot a line\r\n", "no ="),
        (b"v=0\r\na=x\x00y\r\n", "NUL"),
        (b"v=0\r\n\xff\xfe\r\n", "not UTF-8"),
        (b"v=0\r\na=" + b"x" * 5000 + b"\r\n", "line too long"),
    ],
)
def test_malformed_sdp_is_refused_with_488(body: bytes, why: str) -> None:
    with pytest.raises(SdpError) as raised:
        parse(body)
    assert raised.value.status == 488, why


def test_limits_on_size_lines_and_media() -> None:
    with pytest.raises(SdpError, match="bytes"):
        parse(b"v=0\r\n" + b"a=x\r\n" * (MAX_SIZE // 5))
    with pytest.raises(SdpError, match="lines"):
        parse(b"v=0\r\n" + b"a=x\r\n" * MAX_LINES)
    with pytest.raises(SdpError, match="m= lines"):
        parse(b"v=0\r\n" + b"m=audio 1 RTP/AVP 0\r\n" * (MAX_MEDIA + 1))


_value = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n\0"),
    max_size=40,
)
_line = st.tuples(st.sampled_from("abiuek"), _value)


@given(
    st.lists(_line, max_size=10),
    st.lists(
        st.tuples(
            st.sampled_from(["audio", "video", "application"]),
            st.integers(0, 65535),
            st.sampled_from(["RTP/AVP", "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP"]),
            st.lists(st.integers(0, 127).map(str), min_size=1, max_size=5),
            st.lists(_line, max_size=8),
        ),
        max_size=4,
    ),
)
def test_serialized_descriptions_parse_back_equal(
    session: list[tuple[str, str]],
    media: list[tuple[str, int, str, list[str], list[tuple[str, str]]]],
) -> None:
    lines = (("v", "0"), ("o", "- 1 1 IN IP4 192.0.2.1"), ("s", "-"), *session)
    built = [Media(k, p, proto, tuple(f), tuple(ls)) for k, p, proto, f, ls in media]
    text = "".join(f"{t}={v}\r\n" for t, v in lines) + "".join(m.encode() for m in built)
    description = parse(text.encode())
    assert description.encode() == text.encode()
    assert [m.port for m in description.media] == [m.port for m in built]


@given(st.binary(max_size=600))
def test_random_bytes_parse_or_raise_sdp_error(data: bytes) -> None:
    try:
        parse(data)
    except SdpError:
        pass


@given(
    st.lists(
        st.sampled_from(
            [
                b"v=0",
                b"m=audio 9 RTP/AVP 0",
                b"c=IN IP4 ::1",
                b"a=",
                b"=",
                b"c=IN IP6 ::1",
                b"m=audio 99999 x",
                b"a=rtcp:0",
                b"",
            ]
        ),
        max_size=20,
    )
)
def test_shuffled_plausible_lines_parse_or_raise_sdp_error(lines: list[bytes]) -> None:
    try:
        parse(b"\r\n".join(lines))
    except SdpError:
        pass
