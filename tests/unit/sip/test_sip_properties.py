"""Property tests: whatever the bytes, only the SIP error tree comes out, a
parsed message is an encoding fixed point, and chunking never changes a stream.
"""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from heron.sip import MalformedValue, Ping, SipError, SipRemoteError, StreamFramer, parse_datagram
from heron.sip.parser import Event

VECTORS = Path(__file__).parents[2] / "vectors" / "rfc4475"
MESSAGES = [path.read_bytes() for path in sorted(VECTORS.glob("*.dat"))]
PIECES = [
    b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\\", b"%",
    b"%00", b"\x00", b"\xff", b"\xc3", b"@", b"=", b"[", b"]", b"?", b"/", b"\r\n ",
    b"SIP/2.0", b"0" * 30, b"\r\n\r\n", b"Content-Length: 3\r\n", b"v: x\r\n",
]  # fmt: skip
TYPED = (
    "vias", "top_via", "from_", "to", "call_id", "cseq", "max_forwards", "content_length",
    "content_type", "expires", "contact_star", "contacts", "routes", "record_routes", "require",
    "proxy_require", "authorizations", "proxy_authorizations", "www_authenticates",
    "proxy_authenticates",
)  # fmt: skip


def encoded_valid_messages() -> list[bytes]:
    """Every RFC 4475 message that parses, re-encoded: all carry Content-Length."""
    encoded = []
    for data in MESSAGES:
        try:
            message = parse_datagram(data)
        except SipError:
            continue
        assert not isinstance(message, Ping)
        encoded.append(message.encode())
    return encoded


STREAMABLE = encoded_valid_messages()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """An RFC 4475 message with a few bytes replaced, inserted or deleted."""
    data = bytearray(draw(st.sampled_from(MESSAGES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        piece = draw(st.sampled_from(PIECES) | st.binary(min_size=1, max_size=3))
        match draw(st.sampled_from(("replace", "insert", "delete"))):
            case "replace":
                data[at : at + len(piece)] = piece
            case "insert":
                data[at:at] = piece
            case _:
                del data[at : at + draw(st.integers(1, 12))]
    return bytes(data)


def check_datagram(data: bytes) -> None:
    """Only SipError escapes; what parses re-encodes to a fixed point and its
    typed fields raise nothing but MalformedValue.
    """
    try:
        message = parse_datagram(data)
    except SipError:
        return
    if isinstance(message, Ping):
        return
    encoded = message.encode()
    again = parse_datagram(encoded)
    assert not isinstance(again, Ping)
    assert again.encode() == encoded
    for name in TYPED:
        try:
            getattr(message.headers, name)
        except MalformedValue:
            pass


def stream(data: bytes, cuts: list[int]) -> list[Event | str]:
    """Events from feeding ``data`` cut at ``cuts``; errors become their reason."""
    framer, found = StreamFramer(), list[Event | str]()
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        framer.feed(data[start:end])
        while True:
            try:
                event = framer.next_event()
            except SipRemoteError as error:
                found.append(error.reason)
                if error.framing:
                    return found
                continue
            if event is None:
                break
            found.append(event)
    return found


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_datagrams_raise_only_the_sip_tree(data: bytes) -> None:
    check_datagram(data)


@settings(max_examples=400)
@given(mutated())
def test_mutated_rfc4475_datagrams_raise_only_the_sip_tree(data: bytes) -> None:
    check_datagram(data)


@settings(max_examples=200)
@given(mutated(), st.lists(st.integers(0, 4000), max_size=8))
def test_mutated_streams_raise_only_the_sip_tree(data: bytes, cuts: list[int]) -> None:
    stream(data, sorted(c for c in cuts if c <= len(data)))


@settings(max_examples=100)
@given(
    st.lists(st.sampled_from([*STREAMABLE, b"\r\n\r\n", b"\r\n"]), min_size=1, max_size=6),
    st.lists(st.integers(0, 20_000), max_size=12),
)
def test_chunking_never_changes_a_stream(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    whole = stream(data, [])
    assert stream(data, sorted({c for c in cuts if c <= len(data)})) == whole
    messages = [p for p in parts if p not in (b"\r\n\r\n", b"\r\n")]
    assert [e.encode() for e in whole if not isinstance(e, Ping | str)] == messages
