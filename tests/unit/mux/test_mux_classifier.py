"""The per-connection Classifier: fed read by read, it answers what classify() answers whole."""

from __future__ import annotations

import ssl
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from heron.mux import MAX_PEEK, Classifier, NeedMore, Refuse, Service, Verdict, classify

NAMES = {"sip.falcot.com": Service.SIP}


def _pieces(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    out, index = [], 0
    while data:
        out.append(data[: sizes[index % len(sizes)]])
        data = data[sizes[index % len(sizes)] :]
        index += 1
    return out


CHROMIUM = (
    Path(__file__).parents[2] / "vectors" / "mux" / "chromium-156-client-hello.bin"
).read_bytes()
SAMPLES = [
    CHROMIUM,
    # the same ClientHello re-cut into records of 1, 2 and 3 bytes in turn
    b"".join(
        b"\x16\x03\x03\x00" + bytes([len(piece)]) + piece
        for piece in _pieces(CHROMIUM[5:], (1, 2, 3))
    ),
    b"\x00\x03\x00\x08\x21\x12\xa4\x42" + bytes(20),
    b"\r\nREGISTER sip:falcot.com SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n",
    b"GET /phone HTTP/1.1\r\n",
    b"<?xml version='1.0'?><stream:stream>",
    b"\x16\x03\x01\x00\x00",
    b"INVITE sip:x SIP/3.0\r\n",
]


def cuts(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(data)), max_size=12).map(sorted)


@settings(max_examples=300)
@given(st.data())
def test_feeding_read_by_read_answers_as_classify_does(data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(SAMPLES))
    points = [0, *data.draw(cuts(sample)), len(sample)]
    classifier = Classifier(NAMES)
    for start, end in zip(points, points[1:], strict=False):
        decision = classifier.feed(sample[start:end])
        assert decision == classify(sample[:end], NAMES)
        assert classifier.decision == decision
    assert classifier.received == sample


def test_a_hello_in_one_byte_records_fed_a_byte_at_a_time() -> None:
    """The slowloris shape: every read brings one byte of a one-byte record."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(["stun.turn"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="turn.falcot.com")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    record = outgoing.read()
    data = b"".join(b"\x16\x03\x01\x00\x01" + bytes([byte]) for byte in record[5:])
    classifier = Classifier()
    for index in range(len(data) - 1):
        decision = classifier.feed(data[index : index + 1])
        assert isinstance(decision, NeedMore)
        assert len(data) - index - 1 <= decision.at_most <= MAX_PEEK - index - 1
    assert classifier.feed(data[-1:]) == Verdict(
        Service.TURN, True, "turn.falcot.com", "stun.turn", ("stun.turn",)
    )


def test_a_decision_is_final_and_later_bytes_are_kept_for_the_hand_off() -> None:
    classifier = Classifier()
    assert classifier.decision == NeedMore(MAX_PEEK)
    assert classifier.feed(b"") == NeedMore(MAX_PEEK)
    assert classifier.feed(b"GET / HTTP/1.1\r\n") == Verdict(Service.WEB, tls=False)
    assert classifier.feed(b"Host: falcot.com\r\n\r\n") == Verdict(Service.WEB, tls=False)
    assert classifier.received == b"GET / HTTP/1.1\r\nHost: falcot.com\r\n\r\n"


def test_the_limit_counts_every_read() -> None:
    classifier = Classifier(limit=10)
    assert classifier.feed(b"\r\n" * 4) == NeedMore(2)
    assert classifier.feed(b"\r\n") == Refuse("no decision within 10 bytes")


def test_the_samples_decide() -> None:
    assert classify(SAMPLES[1], NAMES) == classify(CHROMIUM, NAMES)
    assert all(not isinstance(classify(sample, NAMES), NeedMore) for sample in SAMPLES)
