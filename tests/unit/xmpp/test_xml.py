"""The restricted XML stream parser (RFC 6120 §4, §11) and the serializer that mirrors it."""

from __future__ import annotations

import tracemalloc
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.xmpp.errors import StreamCondition, StreamError
from heron.xmpp.stanza import NS
from heron.xmpp.xml import (
    ElementParsed,
    StreamClosed,
    StreamOpened,
    XmlEvent,
    XmlStreamParser,
    serialize,
    stream_footer,
    stream_header,
    websocket_close,
    websocket_open,
)

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' to='falcot.com' version='1.0'"
    b" xml:lang='en'>"
)
MESSAGE = (
    b"<message to='roland@falcot.com' type='chat' id='m1'><body>Salut &amp; &lt;3 &#x263A;"
    b"</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def feed_all(data: bytes, chunk: int | None = None, **limits: int) -> list[XmlEvent]:
    parser = XmlStreamParser(**limits)
    if chunk is None:
        return parser.feed(data)
    events: list[XmlEvent] = []
    for start in range(0, len(data), chunk):
        events += parser.feed(data[start : start + chunk])
    return events


def condition_of(data: bytes, **limits: int) -> StreamCondition:
    parser = XmlStreamParser(**limits)
    with pytest.raises(StreamError) as caught:
        parser.feed(data)
        parser.feed(b"")  # events before the error came first
    return caught.value.condition


def dump(events: list[XmlEvent]) -> list[object]:
    """Comparable form: elements by their serialization."""
    return [serialize(e.element) if isinstance(e, ElementParsed) else e for e in events]


# --- events ------------------------------------------------------------------------------


def test_rfc6120_4_2_header_stanza_and_end_are_three_kinds_of_event() -> None:
    events = feed_all(HEADER + MESSAGE + b"</stream:stream>")
    assert events[0] == StreamOpened(
        {"to": "falcot.com", "version": "1.0", XML_LANG: "en"}, f"{{{NS.STREAM}}}stream"
    )
    assert isinstance(events[1], ElementParsed)
    message = events[1].element
    assert message.tag == "{jabber:client}message"
    assert message.get("to") == "roland@falcot.com"
    assert message.findtext("{jabber:client}body") == "Salut & <3 \u263a"
    assert message[1].tag == "{http://jabber.org/protocol/chatstates}active"
    assert events[2] == StreamClosed()


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_partial_input_waits_for_more_and_gives_the_same_events(chunk: int) -> None:
    data = HEADER + MESSAGE + b" " + MESSAGE + b"</stream:stream>"
    assert dump(feed_all(data, chunk)) == dump(feed_all(data))


def test_a_partial_stanza_is_no_event_yet() -> None:
    parser = XmlStreamParser()
    assert len(parser.feed(HEADER)) == 1
    assert parser.feed(MESSAGE[:-3]) == []
    assert [type(e) for e in parser.feed(MESSAGE[-3:])] == [ElementParsed]


def test_whitespace_keepalives_between_stanzas_never_count_against_the_size_limit() -> None:
    parser = XmlStreamParser(max_stanza_bytes=1000)
    parser.feed(HEADER)
    for _ in range(3000):
        assert parser.feed(b" \n") == []
    assert len(parser.feed(MESSAGE)) == 1


def test_the_xml_declaration_may_name_utf8_in_any_case() -> None:
    data = b"<?xml version='1.0' encoding='utf-8'?>" + HEADER.split(b"?>", 1)[1]
    assert isinstance(feed_all(data)[0], StreamOpened)


def test_cdata_is_character_data() -> None:
    events = feed_all(HEADER + b"<message><body><![CDATA[<b>&]]></body></message>")
    assert isinstance(events[1], ElementParsed)
    assert events[1].element.findtext("{jabber:client}body") == "<b>&"


def test_reset_starts_a_new_document_as_a_stream_restart_needs() -> None:
    parser = XmlStreamParser()
    parser.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    parser.reset()
    assert isinstance(parser.feed(HEADER)[0], StreamOpened)


# --- RFC 6120 §11: restricted XML and hostile input --------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (BILLION_LAUGHS, StreamCondition.RESTRICTED_XML),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "restricted-xml"),
        (b'<!DOCTYPE stream SYSTEM "http://evil.example/x.dtd">' + HEADER[21:], "restricted-xml"),
        (b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://evil.example/p">%p;]><x/>', "restricted-xml"),
        (
            b'<!DOCTYPE x [<!NOTATION n SYSTEM "n"><!ENTITY u SYSTEM "u" NDATA n>]><x/>',
            "restricted-xml",
        ),
        (HEADER + b"<message>&xxe;</message>", StreamCondition.RESTRICTED_XML),
        (HEADER + b"<?php evil()?>", StreamCondition.RESTRICTED_XML),
        (HEADER + b"<message><?pi x?></message>", StreamCondition.RESTRICTED_XML),
        (HEADER + b"<!-- hello -->", StreamCondition.RESTRICTED_XML),
        (HEADER + b"<message><!-- x --></message>", StreamCondition.RESTRICTED_XML),
        (b"<?xml version='1.0' encoding='ISO-8859-1'?><a/>", StreamCondition.UNSUPPORTED_ENCODING),
        (b"<?xml version='1.0' encoding='UTF-16'?><a/>", StreamCondition.UNSUPPORTED_ENCODING),
        (HEADER + b"<message><body>\xc3\x28</body></message>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message><body>\xff\xfe</body></message>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message>\x00</message>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message></presence>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<x:message/>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"<message a='1' a='2'/>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"</stream:stream><more/>", StreamCondition.NOT_WELL_FORMED),
        (HEADER + b"hello", StreamCondition.BAD_FORMAT),
    ],
    ids=[
        "billion-laughs",
        "xxe-system-entity",
        "external-dtd",
        "parameter-entity",
        "unparsed-entity",
        "undeclared-entity-reference",
        "pi-between-stanzas",
        "pi-in-stanza",
        "comment-between-stanzas",
        "comment-in-stanza",
        "latin1-declaration",
        "utf16-declaration",
        "invalid-utf8",
        "utf16-bytes",
        "nul",
        "mismatched-tags",
        "unbound-prefix",
        "duplicate-attribute",
        "junk-after-stream",
        "text-in-stream",
    ],
)
def test_rfc6120_11_hostile_input_ends_with_its_condition(data: bytes, condition: str) -> None:
    assert condition_of(data) == condition
    # Byte by byte the same condition comes out: no limit depends on how input is cut.
    parser = XmlStreamParser()
    with pytest.raises(StreamError) as caught:
        for byte in range(len(data)):
            parser.feed(data[byte : byte + 1])
        parser.feed(b"")
    assert caught.value.condition == condition


def test_billion_laughs_fails_fast_without_memory_growth() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(StreamError):
            feed_all(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # fully expanded it would be 3 GB


def test_the_predefined_entities_and_character_references_are_allowed() -> None:
    events = feed_all(
        HEADER + b"<message><body>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;</body></message>"
    )
    assert isinstance(events[1], ElementParsed)
    assert events[1].element.findtext("{jabber:client}body") == "<>&'\"AB"


def test_nesting_up_to_max_depth_passes_and_one_more_is_a_policy_violation() -> None:
    # The stream element is depth 1, so a stanza may hold max_depth - 1 levels.
    fits = HEADER + b"<a>" * 7 + b"</a>" * 7
    assert len(feed_all(fits, max_depth=8)) == 2
    too_deep = HEADER + b"<a>" * 8
    assert condition_of(too_deep, max_depth=8) == StreamCondition.POLICY_VIOLATION


def test_deep_nesting_attack_stops_at_the_limit() -> None:
    assert condition_of(HEADER + b"<a>" * 100_000) == StreamCondition.POLICY_VIOLATION


def test_a_stanza_over_max_stanza_bytes_is_a_policy_violation() -> None:
    body = b"<message><body>" + b"x" * 900 + b"</body></message>"
    assert len(feed_all(HEADER + body, max_stanza_bytes=1000)) == 2
    big = b"<message><body>" + b"x" * 1100 + b"</body></message>"
    assert condition_of(HEADER + big, max_stanza_bytes=1000) == StreamCondition.POLICY_VIOLATION


def test_an_endless_start_tag_is_refused_before_it_is_buffered() -> None:
    parser = XmlStreamParser(max_stanza_bytes=4096)
    parser.feed(HEADER + b"<message a='")
    with pytest.raises(StreamError) as caught:
        for _ in range(100):
            parser.feed(b"x" * 1000)
    assert caught.value.condition == StreamCondition.POLICY_VIOLATION


def test_an_oversized_stanza_in_one_piece_is_refused_while_parsing() -> None:
    huge = HEADER + b"<message><body>" + b"y" * 10_000_000 + b"</body></message>"
    assert condition_of(huge) == StreamCondition.POLICY_VIOLATION


def test_events_before_an_error_come_first_and_the_error_on_the_next_feed() -> None:
    parser = XmlStreamParser()
    events = parser.feed(HEADER + MESSAGE + b"<!-- x -->")
    assert [type(event) for event in events] == [StreamOpened, ElementParsed]
    assert parser.error is not None
    assert parser.error.condition == StreamCondition.RESTRICTED_XML
    with pytest.raises(StreamError):
        parser.feed(b"")


def test_after_an_error_every_feed_raises_it_again() -> None:
    parser = XmlStreamParser()
    parser.feed(HEADER)
    with pytest.raises(StreamError):
        parser.feed(b"<!-- x -->")
    with pytest.raises(StreamError) as caught:
        parser.feed(MESSAGE)
    assert caught.value.condition == StreamCondition.RESTRICTED_XML


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_any_bytes_give_events_or_a_stream_error_and_nothing_else(data: bytes, chunk: int) -> None:
    parser = XmlStreamParser(max_stanza_bytes=200, max_depth=4)
    try:
        for start in range(0, len(data), chunk):
            parser.feed(data[start : start + chunk])
    except StreamError as error:
        assert isinstance(error.condition, StreamCondition)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([HEADER, MESSAGE, b"<", b">", b"/", b"'", b"&", b"]]>", b"<!",
                                 b"<?", b"a", b"\xc3", b" "]), max_size=30))  # fmt: skip
def test_xmlish_fragments_give_events_or_a_stream_error(pieces: list[bytes]) -> None:
    parser = XmlStreamParser()
    try:
        for piece in pieces:
            parser.feed(piece)
    except StreamError as error:
        assert isinstance(error.condition, StreamCondition)


# --- RFC 7395 §3.3: one element per WebSocket message ------------------------------------

FRAMING_OPEN = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="falcot.com" version="1.0"/>'


def test_rfc7395_3_3_open_close_and_stanza_frames() -> None:
    parser = XmlStreamParser()
    assert parser.parse_frame(FRAMING_OPEN) == StreamOpened(
        {"to": "falcot.com", "version": "1.0"}, f"{{{NS.FRAMING}}}open"
    )
    assert parser.parse_frame('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>') == (
        StreamClosed()
    )
    event = parser.parse_frame('<message xmlns="jabber:client" to="a@b"><body>x</body></message>')
    assert isinstance(event, ElementParsed)
    assert event.element.tag == "{jabber:client}message"


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("<a/><b/>", StreamCondition.NOT_WELL_FORMED),
        ("<a>", StreamCondition.NOT_WELL_FORMED),
        ("", StreamCondition.NOT_WELL_FORMED),
        ('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', StreamCondition.RESTRICTED_XML),
        ("<a><!-- c --></a>", StreamCondition.RESTRICTED_XML),
        ("<a>&e;</a>", StreamCondition.RESTRICTED_XML),
        ("<?xml version='1.0' encoding='latin1'?><a/>", StreamCondition.UNSUPPORTED_ENCODING),
        ("<a>\ud800</a>", StreamCondition.NOT_WELL_FORMED),
        ("<a>" * 40 + "</a>" * 40, StreamCondition.POLICY_VIOLATION),
        ("<a>" + "x" * 300_000 + "</a>", StreamCondition.POLICY_VIOLATION),
    ],
    ids=[
        "two",
        "unclosed",
        "empty",
        "dtd",
        "comment",
        "entity",
        "latin1",
        "surrogate",
        "deep",
        "big",
    ],  # fmt: skip
)
def test_rfc7395_3_3_frames_have_the_same_restrictions(text: str, condition: str) -> None:
    with pytest.raises(StreamError) as caught:
        XmlStreamParser().parse_frame(text)
    assert caught.value.condition == condition


# --- serializer --------------------------------------------------------------------------


def test_serialize_declares_a_namespace_only_where_it_changes() -> None:
    iq = Element("{jabber:client}iq", {"type": "get", "id": "1"})
    query = SubElement(iq, "{jabber:iq:roster}query")
    SubElement(query, "{jabber:iq:roster}item", {"jid": "a@b"})
    SubElement(iq, "{jabber:client}error")
    assert serialize(iq) == (
        b'<iq type="get" id="1"><query xmlns="jabber:iq:roster"><item jid="a@b"/></query>'
        b"<error/></iq>"
    )
    assert serialize(iq, "").startswith(b'<iq xmlns="jabber:client" type="get"')


def test_serialize_escapes_text_and_attributes() -> None:
    message = Element("{jabber:client}message", {"to": "a\"<&>'\t\n\r"})
    SubElement(message, "{jabber:client}body").text = "<&>]]>\r\"'"
    assert serialize(message) == (
        b'<message to="a&quot;&lt;&amp;&gt;\'&#9;&#10;&#13;">'
        b"<body>&lt;&amp;&gt;]]&gt;&#13;\"'</body></message>"
    )


def test_serialize_keeps_xml_lang_and_prefixes_other_attribute_namespaces() -> None:
    element = Element("{jabber:client}message", {XML_LANG: "fr", "{urn:x}a": "1"})
    child = SubElement(element, "{urn:y}c", {"{urn:x}b": "2", "{urn:z}d": "3"})
    child.tail = "tail"
    assert serialize(element) == (
        b'<message xmlns:a0="urn:x" xml:lang="fr" a0:a="1">'
        b'<c xmlns="urn:y" xmlns:a1="urn:z" a0:b="2" a1:d="3"/>tail</message>'
    )
    assert b"ns0" not in serialize(element)


def test_serialize_unqualified_elements_undeclare_the_default_namespace() -> None:
    assert serialize(Element("x")) == b'<x xmlns=""/>'
    assert serialize(Element("x"), "") == b"<x/>"


def test_serialize_uses_the_stream_prefix_declared_by_the_header() -> None:
    features = Element(f"{{{NS.STREAM}}}features")
    SubElement(features, f"{{{NS.BIND}}}bind")
    assert serialize(features) == (
        b'<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>'
    )
    assert serialize(features, "", stream_prefix=False) == (
        b'<stream:features xmlns:stream="http://etherx.jabber.org/streams">'
        b'<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>'
    )


def test_serialize_replaces_characters_xml_cannot_carry() -> None:
    body = Element("{jabber:client}body", {"a": "\x01"})
    body.text = "a\x00b\ufffe"
    assert serialize(body) == '<body a="\ufffd">a\ufffdb\ufffd</body>'.encode()


def test_stream_header_and_footer_parse_back() -> None:
    header = stream_header(stream_id="abc", from_="falcot.com", to="roland@falcot.com")
    events = feed_all(header + stream_footer())
    assert events == [
        StreamOpened(
            {
                "id": "abc",
                "from": "falcot.com",
                "to": "roland@falcot.com",
                "version": "1.0",
                XML_LANG: "en",
            },
            f"{{{NS.STREAM}}}stream",
        ),
        StreamClosed(),
    ]


def test_websocket_open_and_close_parse_back() -> None:
    parser = XmlStreamParser()
    opened = parser.parse_frame(websocket_open(stream_id="s1", from_="falcot.com"))
    assert opened == StreamOpened(
        {"id": "s1", "from": "falcot.com", "version": "1.0", XML_LANG: "en"},
        f"{{{NS.FRAMING}}}open",
    )
    assert parser.parse_frame(websocket_close()) == StreamClosed()
    assert 'see-other-uri="wss://x/"' in websocket_close("wss://x/")


# --- round trip (hypothesis) -------------------------------------------------------------

_xml_char = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12"
    "\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff",
)
_text = st.text(_xml_char, max_size=12)
_name = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
_namespace = st.sampled_from(["jabber:client", "urn:a", "urn:b", "http://x/y?z&w", ""])


@st.composite
def _elements(draw: st.DrawFn, depth: int = 0) -> Element:
    attributes = draw(st.dictionaries(_name, _text, max_size=3))
    if draw(st.booleans()):
        attributes[XML_LANG] = draw(_text)
    namespace = draw(_namespace)
    element = Element(f"{{{namespace}}}{draw(_name)}" if namespace else draw(_name), attributes)
    element.text = draw(_text)
    if depth < 3:
        for child in draw(st.lists(_elements(depth + 1), max_size=3)):
            child.tail = draw(_text)
            element.append(child)
    return element


def _shape(element: Element) -> tuple[object, ...]:
    return (
        element.tag,
        sorted(element.attrib.items()),
        element.text or "",
        element.tail or "",
        [_shape(child) for child in element],
    )


@settings(max_examples=200, deadline=None)
@given(_elements())
def test_serialize_then_parse_gives_the_same_tree(element: Element) -> None:
    element.tail = None
    events = feed_all(HEADER + serialize(element))
    assert isinstance(events[1], ElementParsed)
    assert _shape(events[1].element) == _shape(element)
    framed = XmlStreamParser().parse_frame(serialize(element, "").decode())
    assert isinstance(framed, ElementParsed)
    assert _shape(framed.element) == _shape(element)
