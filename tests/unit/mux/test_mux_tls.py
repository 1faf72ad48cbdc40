"""The classifier on TLS ClientHellos: real ones from OpenSSL, cut and re-recorded; hostile ones.

OpenSSL's ClientHellos come from Python's ssl over a MemoryBIO (no socket): the bytes a
real client sends first; Chromium's was captured once (tests/vectors/mux/README.md).
The hand-built ones (:func:`hello`) give every length the parser reads a chance to lie.
"""

from __future__ import annotations

import ssl
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.mux import MAX_PEEK, NeedMore, Refuse, Service, Verdict, classify

NAMES = {"sip.falcot.com": Service.SIP, "turn.falcot.com": Service.TURN}
VECTORS = Path(__file__).parents[2] / "vectors" / "mux"
CHROMIUM = (VECTORS / "chromium-156-client-hello.bin").read_bytes()


def openssl_hello(
    server_name: str | None = "falcot.com",
    alpn: list[str] | None = None,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> bytes:
    """The first flight of an OpenSSL client: one record holding the ClientHello."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = server_name is not None
    context.verify_mode = ssl.CERT_REQUIRED if server_name else ssl.CERT_NONE
    context.maximum_version = maximum
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def records(data: bytes, sizes: list[int], version: int = 0x0301) -> bytes:
    """Re-cut the handshake bytes of ``data`` into handshake records of ``sizes`` (cycled)."""
    handshake = b""
    pos = 0
    while pos < len(data):
        length = struct.unpack_from("!H", data, pos + 3)[0]
        handshake += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    out = b""
    index = 0
    while handshake:
        size = sizes[index % len(sizes)]
        out += struct.pack("!BHH", 22, version, len(handshake[:size])) + handshake[:size]
        handshake = handshake[size:]
        index += 1
    return out


def extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def sni(*names: bytes, name_type: int = 0) -> bytes:
    entries = b"".join(struct.pack("!BH", name_type, len(n)) + n for n in names)
    return extension(0, struct.pack("!H", len(entries)) + entries)


def alpn(*protocols: bytes) -> bytes:
    names = b"".join(bytes([len(p)]) + p for p in protocols)
    return extension(16, struct.pack("!H", len(names)) + names)


def hello(
    *extensions: bytes,
    session_id: bytes = bytes(32),
    suites: bytes = b"\x13\x01\x13\x02",
    raw_extensions: bytes | None = None,
) -> bytes:
    """A hand-built ClientHello in one record (RFC 8446 §4.1.2)."""
    block = b"".join(extensions) if raw_extensions is None else raw_extensions
    body = (
        b"\x03\x03"
        + bytes(32)
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!H", len(suites))
        + suites
        + b"\x01\x00"
        + struct.pack("!H", len(block))
        + block
    )
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(message)) + message


@pytest.mark.parametrize(
    ("protocols", "service", "chosen"),
    [
        (["stun.turn"], Service.TURN, "stun.turn"),
        (["xmpp-client"], Service.XMPP_CLIENT, "xmpp-client"),
        (["xmpp-server"], Service.XMPP_SERVER, "xmpp-server"),
        (["h2", "http/1.1"], Service.WEB, "h2"),
        (["http/1.1"], Service.WEB, "http/1.1"),
        (["acme-tls/1", "xmpp-client", "h2"], Service.XMPP_CLIENT, "xmpp-client"),
        (["h2", "xmpp-client"], Service.XMPP_CLIENT, "xmpp-client"),
        (["sip/2"], Service.SIP, "sip/2"),
        # turnutils_uclient's offer, as captured from coturn 4.6
        (["http/1.1", "stun.turn", "stun.nat-discovery"], Service.TURN, "stun.turn"),
    ],
)
def test_rfc7301_server_preference_a_service_protocol_before_http(
    protocols: list[str], service: Service, chosen: str
) -> None:
    verdict = classify(openssl_hello("sip.falcot.com", protocols), NAMES)
    assert verdict == Verdict(service, True, "sip.falcot.com", chosen, tuple(protocols))


def test_rfc6066_sni_chooses_without_known_alpn() -> None:
    assert classify(openssl_hello("sip.falcot.com"), NAMES) == Verdict(
        Service.SIP, True, "sip.falcot.com"
    )
    assert classify(openssl_hello("turn.falcot.com", ["foo"]), NAMES) == Verdict(
        Service.TURN, True, "turn.falcot.com", None, ("foo",)
    )


def test_rfc6066_sni_is_compared_lower_case() -> None:
    assert classify(hello(sni(b"SIP.Falcot.COM")), NAMES) == Verdict(
        Service.SIP, True, "sip.falcot.com"
    )


def test_without_alpn_or_a_known_name_it_is_a_browser_s_turn_over_tls() -> None:
    """RFC 7350 §5 as WebRTC stacks do it: no ALPN, the page's host name or no SNI."""
    assert classify(openssl_hello("www.falcot.com"), NAMES) == Verdict(
        Service.TURN, True, "www.falcot.com"
    )
    assert classify(openssl_hello(None), NAMES) == Verdict(Service.TURN, True)


def test_unknown_alpn_without_a_known_name_goes_to_the_web() -> None:
    assert classify(openssl_hello("www.falcot.com", ["h3", "spdy/3"]), NAMES) == Verdict(
        Service.WEB, True, "www.falcot.com", alpn_offered=("h3", "spdy/3")
    )
    assert classify(openssl_hello(None, ["acme-tls/1", "h3"]), NAMES) == Verdict(
        Service.WEB, True, alpn_offered=("acme-tls/1", "h3")
    )


def test_rfc8737_3_acme_tls_offered_alone_is_a_ca_validating() -> None:
    """Whatever the name, since the CA asks for every name heron serves (the SIP domain,
    which ``names`` gives to SIP, included)."""
    for name in ("www.falcot.com", "sip.falcot.com"):
        assert classify(openssl_hello(name, ["acme-tls/1"]), NAMES) == Verdict(
            Service.ACME_TLS, True, name, "acme-tls/1", ("acme-tls/1",)
        )


def test_tls12_client_hello() -> None:
    data = openssl_hello("sip.falcot.com", maximum=ssl.TLSVersion.TLSv1_2)
    assert classify(data, NAMES) == Verdict(Service.SIP, True, "sip.falcot.com")


def test_rfc5246_client_hello_without_extensions() -> None:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00"
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    data = struct.pack("!BHH", 22, 0x0301, len(message)) + message
    assert classify(data, NAMES) == Verdict(Service.TURN, True)


def test_browser_shaped_hello_with_grease_padding_and_large_key_share() -> None:
    """Chromium's shape: GREASE extensions first and last, an ML-KEM-sized key share."""
    data = hello(
        extension(0x0A0A, b""),
        sni(b"sip.falcot.com"),
        extension(51, bytes(1250)),  # key_share: X25519MLKEM768 + X25519
        alpn(b"h2", b"http/1.1"),
        extension(21, bytes(200)),  # padding (RFC 7685)
        extension(0xFAFA, b"\x00"),
    )
    assert len(data) > 1500
    assert classify(data, NAMES) == Verdict(
        Service.WEB, True, "sip.falcot.com", "h2", ("h2", "http/1.1")
    )


def test_chromium_hello_goes_to_the_web_by_its_alpn() -> None:
    """A browser always offers h2: its WebSocket and its pages reach the web component."""
    assert classify(CHROMIUM, NAMES) == Verdict(
        Service.WEB, True, "sip.falcot.com", "h2", ("h2", "http/1.1")
    )


def assert_every_prefix_needs_more(data: bytes) -> None:
    """Each cut asks for at least what is missing and never past the limit."""
    for cut in range(len(data)):
        decision = classify(data[:cut], NAMES)
        assert isinstance(decision, NeedMore), cut
        assert len(data) - cut <= decision.at_most <= MAX_PEEK - cut


def test_rfc8446_5_1_hello_cut_at_every_byte() -> None:
    data = openssl_hello("sip.falcot.com", ["xmpp-client"])
    assert_every_prefix_needs_more(data)
    assert classify(data, NAMES) == Verdict(
        Service.XMPP_CLIENT, True, "sip.falcot.com", "xmpp-client", ("xmpp-client",)
    )
    assert_every_prefix_needs_more(CHROMIUM)


@pytest.mark.parametrize("sizes", [[1], [2, 3], [4], [5, 1000], [100], [517, 1]])
def test_rfc8446_5_1_hello_over_several_records(sizes: list[int]) -> None:
    data = records(openssl_hello("sip.falcot.com", ["stun.turn"]), sizes, version=0x0303)
    assert_every_prefix_needs_more(data)
    assert classify(data, NAMES) == Verdict(
        Service.TURN, True, "sip.falcot.com", "stun.turn", ("stun.turn",)
    )
    assert classify(records(CHROMIUM, sizes), NAMES) == classify(CHROMIUM, NAMES)


def test_bytes_after_the_hello_do_not_matter() -> None:
    data = openssl_hello("sip.falcot.com")
    change_cipher_spec = b"\x14\x03\x03\x00\x01\x01"
    assert classify(data + change_cipher_spec + bytes(100), NAMES) == classify(data, NAMES)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x16\x03\x01\x00\x00", "zero-length"),
        (b"\x16\x03\x01\x40\x01", "exceeds 2^14"),
        (b"\x16\x02", "no TLS version"),
        (b"\x16\x03\x05", "no TLS version"),
        (b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", "no ClientHello"),
        (b"\x16\x03\x01\x00\x04\x01\x00\x40\x00", "exceeds 16384"),
        (b"\x16\x03\x01\x00\x02\x01\x00\x17\x03\x03", "record type 23"),
        (b"\x16\x03\x01\x00\x02\x01\x00\x16\x03\x03\x00\x00", "zero-length"),
    ],
)
def test_rfc8446_5_1_record_rules(data: bytes, reason: str) -> None:
    decision = classify(data)
    assert isinstance(decision, Refuse)
    assert reason in decision.reason


def test_a_hello_of_exactly_the_limit_is_read_and_one_past_is_refused() -> None:
    data = hello(sni(b"sip.falcot.com"))
    assert classify(data, NAMES, limit=len(data)) == Verdict(Service.SIP, True, "sip.falcot.com")
    assert isinstance(classify(data, NAMES, limit=len(data) - 1), Refuse)
    assert isinstance(classify(records(data, [1]), NAMES, limit=len(data) * 2), Refuse)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (hello(session_id=bytes(33)), "legacy_session_id of 33"),
        (hello(suites=b""), "cipher_suites of 0"),
        (hello(suites=b"\x13\x01\x13"), "odd"),
        (hello(raw_extensions=b"\x00\x00\x00\x05"), "shorter than its lengths say"),
        (hello(raw_extensions=b"\x00\x00"), "shorter than its lengths say"),
        (hello(extension(43, b"\x02\x03\x04"), extension(43, b"\x02\x03\x04")), "twice"),
        (hello(sni(b"a.example"), sni(b"b.example")), "twice"),
        (hello(sni(b"a.example", b"b.example")), "two host names"),
        (hello(sni(b"a.example", name_type=1)), "unknown server name type"),
        (hello(extension(0, b"\x00\x00")), "server_name_list of 0"),
        (hello(extension(0, b"\x00\x03\x00\x00\x00")), "HostName of 0"),
        (hello(extension(0, b"\x00\x04\x00\x00\x01a\x00")), "bytes after"),
        (hello(extension(0, b"\x00\x04\x00\xff\xffa")), "shorter than its lengths say"),
        (hello(alpn(b"h2", b"")), "ProtocolName of 0"),
        (hello(extension(16, b"\x00\x00")), "protocol_name_list of 0"),
        (hello(extension(16, b"\x00\x03\x02h2\x00")), "bytes after"),
        (hello(extension(16, b"\x00\x03\x05h2")), "shorter than its lengths say"),
        (hello(extension(16, b"\xff\xff")), "shorter than its lengths say"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_rfc8446_4_1_2_lengths_that_lie(data: bytes, reason: str) -> None:
    decision = classify(data, NAMES)
    assert isinstance(decision, Refuse)
    assert reason in decision.reason


def test_bytes_after_the_extensions_are_refused() -> None:
    data = hello(sni(b"a.example"))
    body = data[9:] + b"\x00"
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    decision = classify(struct.pack("!BHH", 22, 0x0301, len(message)) + message)
    assert isinstance(decision, Refuse)
    assert "after the ClientHello extensions" in decision.reason


@pytest.mark.parametrize(
    "name",
    [
        b"falcot.com.",
        b".falcot.com",
        b"a..b",
        b"-a.example",
        b"a-.example",
        b"under_score.example",
        b"192.0.2.1",
        b"[2001:db8::1]",
        b"caf\xc3\xa9.example",
        b"nul\x00.example",
        b"a" * 64 + b".example",
        b".".join([b"a" * 63] * 4),
    ],
)
def test_rfc6066_3_sni_that_is_no_host_name_is_refused(name: bytes) -> None:
    decision = classify(hello(sni(name)), NAMES)
    assert isinstance(decision, Refuse)
    assert "RFC 6066 §3" in decision.reason


def test_rfc6066_3_longest_host_name_is_accepted() -> None:
    name = b".".join([b"a" * 63] * 3 + [b"b" * 61])
    assert len(name) == 253
    assert classify(hello(sni(name))) == Verdict(Service.TURN, True, name.decode())


def test_alpn_names_keep_every_byte() -> None:
    assert classify(hello(alpn(b"\xff\x00"))) == Verdict(
        Service.WEB, True, None, None, ("\xff\x00",)
    )


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_random_bytes_after_a_handshake_record_header_only_decide(tail: bytes) -> None:
    decision = classify(b"\x16\x03\x01" + tail, NAMES)
    assert isinstance(decision, NeedMore | Verdict | Refuse)


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 16, 43, 51, 0x0A0A]), st.binary(max_size=40)), max_size=6
    ),
    st.binary(max_size=40),
)
def test_random_extensions_only_decide(blocks: list[tuple[int, bytes]], junk: bytes) -> None:
    data = hello(*(extension(kind, body) for kind, body in blocks))
    for candidate in (data, data + junk, records(data, [len(junk) + 1])):
        assert isinstance(classify(candidate, NAMES), Verdict | Refuse)


@settings(max_examples=200)
@given(st.data())
def test_flipped_byte_of_a_real_hello_only_decides(data: st.DataObject) -> None:
    real = bytearray(openssl_hello("sip.falcot.com", ["h2"]))
    index = data.draw(st.integers(0, len(real) - 1))
    real[index] = data.draw(st.integers(0, 255))
    decision = classify(bytes(real), NAMES)
    assert isinstance(decision, NeedMore | Verdict | Refuse)
    if isinstance(decision, NeedMore):
        assert decision.at_most <= MAX_PEEK - len(real)
