"""XML streams in and out (RFC 6120 §4, §11; RFC 7395 §3.3): expat, restricted, bounded.

:class:`XmlStreamParser` turns TCP bytes into events: the stream header
(depth 1), each complete stanza (depth 2, an ElementTree element in Clark
notation) and the stream's end. For an RFC 7395 WebSocket, where every
message is one whole element, :meth:`XmlStreamParser.parse_frame` parses one
message the same way.

RFC 6120 §11.1 restricts what may appear: no DTD, no comments, no processing
instructions, no entity references but the five predefined ones, so no
entity is ever expanded and "billion laughs" stops at ``<!DOCTYPE``. Only
UTF-8 is accepted (§11.6). Every failure is a :class:`StreamError` carrying
the condition to send, and nothing else is raised, whatever the bytes:

- restricted-xml: DTD, entity declaration or reference, PI, comment;
- unsupported-encoding: an XML declaration naming anything but UTF-8;
- not-well-formed: anything expat rejects, including invalid UTF-8;
- policy-violation: more than ``max_stanza_bytes`` since the last complete
  stanza (a stanza, or a start tag that never ends), or deeper than ``max_depth``;
- bad-format: text directly inside the stream (only whitespace may be there).

:func:`serialize` writes an element back compactly, declaring a namespace
only where it changes, so that the parser reads back the same tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn
from xml.etree.ElementTree import Element, SubElement, TreeBuilder
from xml.parsers import expat
from xml.parsers.expat import errors as expat_errors

from heron.xmpp.errors import StreamCondition, StreamError
from heron.xmpp.stanza import NS

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_STANZA_BYTES",
    "ElementParsed",
    "StreamClosed",
    "StreamOpened",
    "XmlEvent",
    "XmlStreamParser",
    "check_version",
    "serialize",
    "stream_error_element",
    "stream_footer",
    "stream_header",
    "websocket_close",
    "websocket_open",
]

DEFAULT_MAX_STANZA_BYTES = 262144  # what Prosody's c2s_stanza_size_limit defaults to
DEFAULT_MAX_DEPTH = 32
_SLICE = 16384  # expat is fed in slices so a limit is checked before much is buffered
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_STREAM_TAG = f"{{{NS.STREAM}}}stream"
_OPEN_TAG = f"{{{NS.FRAMING}}}open"
_CLOSE_TAG = f"{{{NS.FRAMING}}}close"
_UNDEFINED_ENTITY = expat_errors.codes[expat_errors.XML_ERROR_UNDEFINED_ENTITY]
_UTF8 = frozenset({"utf-8", "utf8"})


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The stream header (``<stream:stream>``, or a WebSocket ``<open/>``) with its attributes."""

    attributes: dict[str, str]
    tag: str


@dataclass(frozen=True, slots=True)
class ElementParsed:
    """One complete first-level element of the stream: a stanza or a negotiation element."""

    element: Element


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """``</stream:stream>``, or a WebSocket ``<close/>``."""


XmlEvent = StreamOpened | ElementParsed | StreamClosed


def _clark(name: str) -> str:
    """expat gives ``ns}local`` with our separator; ElementTree wants ``{ns}local``."""
    return "{" + name if "}" in name else name


def _fail(condition: StreamCondition, text: str) -> NoReturn:
    raise StreamError(condition, text)


def _restricted(what: str) -> Callable[..., NoReturn]:
    def handler(*_: object) -> NoReturn:
        _fail(StreamCondition.RESTRICTED_XML, f"{what} is not allowed (RFC 6120 §11.1)")

    return handler


_RESTRICTED = {
    "StartDoctypeDeclHandler": _restricted("a DTD"),
    "EntityDeclHandler": _restricted("an entity declaration"),
    "UnparsedEntityDeclHandler": _restricted("an entity declaration"),
    "NotationDeclHandler": _restricted("a notation declaration"),
    "ExternalEntityRefHandler": _restricted("an external entity"),
    "SkippedEntityHandler": _restricted("an entity reference"),
    "ProcessingInstructionHandler": _restricted("a processing instruction"),
    "CommentHandler": _restricted("a comment"),
}
"""What RFC 6120 §11.1 forbids, by expat handler; shared by every parser."""


class _Document:
    """One expat parser and its handlers; ``stanza_depth`` is 2 on a stream, 1 in a frame."""

    def __init__(self, stanza_depth: int, max_bytes: int, max_depth: int) -> None:
        self._stanza_depth = stanza_depth
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._depth = 0
        self._builder: TreeBuilder | None = None
        self._mark = 0  # byte index of the last point where nothing was pending
        self._fed = 0
        self.events: list[XmlEvent] = []
        # No intern dict: pyexpat's default keeps one per parser, so per connection, holding
        # every name the peer ever used; a fresh string per event costs less than that.
        parser = expat.ParserCreate(encoding="UTF-8", namespace_separator="}", intern=None)
        parser.XmlDeclHandler = self._declaration
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        for name, handler in _RESTRICTED.items():
            setattr(parser, name, handler)
        self._parser = parser

    def feed(self, data: bytes, final: bool) -> None:
        """Parse ``data``; a handler's StreamError stops expat and propagates from Parse."""
        try:
            for start in range(0, max(len(data), 1), _SLICE):
                chunk = data[start : start + _SLICE]
                self._fed += len(chunk)
                self._parser.Parse(chunk, final and start + _SLICE >= len(data))
                if self._fed - self._mark > self._max_bytes:
                    self._too_big()
        except expat.ExpatError as exc:
            if exc.code == _UNDEFINED_ENTITY:
                _fail(StreamCondition.RESTRICTED_XML, "only the predefined entities are allowed")
            _fail(StreamCondition.NOT_WELL_FORMED, expat_errors.messages[exc.code])

    def _too_big(self) -> NoReturn:
        _fail(StreamCondition.POLICY_VIOLATION, f"stanza larger than {self._max_bytes} bytes")

    def _here(self) -> int:
        return max(self._parser.CurrentByteIndex, 0)

    def _declaration(self, version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower() not in _UTF8:
            _fail(StreamCondition.UNSUPPORTED_ENCODING, "only UTF-8 is supported (RFC 6120 §11.6)")

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            _fail(StreamCondition.POLICY_VIOLATION, f"nested deeper than {self._max_depth}")
        if self._here() - self._mark > self._max_bytes:
            self._too_big()
        tag = _clark(name)
        attrs = {_clark(key): value for key, value in attributes.items()}
        if self._depth < self._stanza_depth:
            self.events.append(StreamOpened(attrs, tag))
            self._mark = self._here()
            return
        if self._depth == self._stanza_depth:
            self._builder = TreeBuilder()
            self._mark = self._here()  # the stanza's size counts from its first byte
        if self._builder is not None:
            self._builder.start(tag, attrs)

    def _end(self, name: str) -> None:
        self._depth -= 1
        if self._builder is None:
            self.events.append(StreamClosed())
            return
        self._builder.end(_clark(name))
        if self._depth < self._stanza_depth:
            element = self._builder.close()
            self._builder = None
            if self._here() - self._mark > self._max_bytes:
                self._too_big()
            self._mark = self._here()
            self.events.append(ElementParsed(element))

    def _text(self, data: str) -> None:
        if self._builder is not None:
            self._builder.data(data)
            return
        if data.strip(" \t\r\n"):
            _fail(StreamCondition.BAD_FORMAT, "text outside stanzas")
        self._mark = self._here() + len(data)  # whitespace: one byte a character


class XmlStreamParser:
    """Incremental, restricted XML stream parser (RFC 6120 §4, §11).

    ``feed`` takes whatever bytes arrived and returns the events they
    completed; a partial stanza waits for more. ``max_depth`` counts the
    stream element as depth 1, so a stanza may nest ``max_depth - 1`` deep,
    on a stream and in a WebSocket message alike. After a StreamError every
    further ``feed`` raises it, until :meth:`reset`.
    """

    def __init__(
        self,
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self.max_depth = max_depth
        self._document = _Document(2, max_stanza_bytes, max_depth)
        self._error: StreamError | None = None

    def reset(self) -> None:
        """Start a new document: the stream restarts after STARTTLS and SASL (RFC 6120 §4.3.3)."""
        self._document = _Document(2, self.max_stanza_bytes, self.max_depth)
        self._error = None

    @property
    def error(self) -> StreamError | None:
        """The error that ended the document, if one did."""
        return self._error

    def feed(self, data: bytes) -> list[XmlEvent]:
        """Parse more of the stream; raises :class:`StreamError` and nothing else.

        Events completed before an error are returned first, so that a stanza
        followed by garbage in one read is still seen; :attr:`error` is then
        set and the next ``feed`` raises it.
        """
        if self._error is not None:
            raise self._error
        document = self._document
        try:
            document.feed(data, final=False)
        except StreamError as exc:
            self._error = exc
            if not document.events:
                raise
        events, document.events = document.events, []
        return events

    def parse_frame(self, text: str) -> XmlEvent:
        """One RFC 7395 WebSocket message, which holds exactly one complete element (§3.3.3).

        ``<open/>`` and ``<close/>`` of the framing namespace become
        StreamOpened and StreamClosed; anything else is an ElementParsed.
        """
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > self.max_stanza_bytes:
            _fail(
                StreamCondition.POLICY_VIOLATION,
                f"stanza larger than {self.max_stanza_bytes} bytes",
            )
        # The message's element is at depth 1 where a stanza would be at depth 2.
        document = _Document(1, self.max_stanza_bytes, self.max_depth - 1)
        document.feed(data, final=True)
        (event,) = document.events  # a complete document has exactly one root element
        assert isinstance(event, ElementParsed)  # at stanza depth 1 every element is built
        if event.element.tag == _OPEN_TAG:
            return StreamOpened(dict(event.element.attrib), _OPEN_TAG)
        if event.element.tag == _CLOSE_TAG:
            return StreamClosed()
        return event


# --- serializer --------------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all (§2.2); replaced so that one bad string
# from a feature cannot make the whole stream ill-formed for the peer.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }  # fmt: skip
)


def _escape_text(text: str) -> str:
    if text.isascii() and text.isprintable():  # the common case: nothing _INVALID matches
        return text.translate(_TEXT_ESCAPES)
    return _INVALID.sub("\ufffd", text).translate(_TEXT_ESCAPES)


def _escape_attr(value: str) -> str:
    if value.isascii() and value.isprintable():
        return value.translate(_ATTR_ESCAPES)
    return _INVALID.sub("\ufffd", value).translate(_ATTR_ESCAPES)


def _split(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _write(
    element: Element,
    default: str,
    declared: Mapping[str, str],
    prefixes: Mapping[str, str],
    out: list[str],
) -> None:
    """``declared``: element prefixes in scope (``stream:``, s2s ``db:``); ``prefixes``: the
    attribute prefixes this serializer declared."""
    if not isinstance(element.tag, str):
        return  # a Comment or ProcessingInstruction node: RFC 6120 §11.1 forbids sending them
    namespace, local = _split(element.tag)
    declarations: list[str] = []
    if namespace in declared:
        name = f"{declared[namespace]}:{local}"
    elif namespace == NS.STREAM:
        name = f"stream:{local}"
        declarations.append(f' xmlns:stream="{NS.STREAM}"')
        declared = {**declared, NS.STREAM: "stream"}
    else:
        name = local
        if namespace != default:
            declarations.append(f' xmlns="{_escape_attr(namespace)}"')
            default = namespace
    attributes: list[str] = []
    scoped = prefixes  # copied when a declaration adds to it: most elements add none
    for key, value in element.attrib.items():
        if not key.startswith("{"):
            qualified = key
        else:
            attr_ns, attr_local = _split(key)
            if attr_ns == _XML_NS:
                qualified = f"xml:{attr_local}"
            else:
                prefix = scoped.get(attr_ns)
                if prefix is None:
                    prefix = f"a{len(scoped)}"
                    scoped = {**scoped, attr_ns: prefix}
                    declarations.append(f' xmlns:{prefix}="{_escape_attr(attr_ns)}"')
                qualified = f"{prefix}:{attr_local}"
        attributes.append(f' {qualified}="{_escape_attr(value)}"')
    out.append(f"<{name}{''.join(declarations)}{''.join(attributes)}")
    if not element.text and not len(element):
        out.append("/>")
    else:
        out.append(">")
        if element.text:
            out.append(_escape_text(element.text))
        for child in element:
            _write(child, default, declared, scoped, out)
            if child.tail:
                out.append(_escape_text(child.tail))
        out.append(f"</{name}>")


def serialize(
    element: Element,
    default_namespace: str = NS.CLIENT,
    *,
    stream_prefix: bool = True,
    declared: Mapping[str, str] | None = None,
) -> bytes:
    """Compact UTF-8 XML for ``element`` as it appears inside a stream.

    ``default_namespace`` is the namespace in scope where the element is
    written (``jabber:client`` inside a TCP stream; ``""`` on a WebSocket,
    where each message stands alone, RFC 7395 §3.3.3). Elements of the
    streams namespace get the ``stream:`` prefix, declared unless
    ``stream_prefix`` says the stream header already did. ``declared`` maps
    other namespaces the header declared to their prefix (an s2s header's
    ``db:`` for ``jabber:server:dialback``, XEP-0220 §2: some servers accept
    dialback elements only so prefixed). ``xml:lang`` stays ``xml:lang``; the
    element's tail is not written.
    """
    scope = dict(declared or {})
    if stream_prefix:
        scope[NS.STREAM] = "stream"
    out: list[str] = []
    _write(element, default_namespace, scope, {}, out)
    return "".join(out).encode()


def stream_header(
    *, stream_id: str, from_: str, to: str = "", lang: str = "en", namespace: str = NS.CLIENT
) -> bytes:
    """A stream header (RFC 6120 §4.7), with the XML declaration before it.

    ``namespace`` is the content namespace: ``jabber:client``, or ``jabber:server``
    for s2s, whose header also declares the ``db:`` prefix (XEP-0220 §2.4.1).
    An initiating entity has no ``stream_id`` to give: it is left out when empty.
    """
    dialback = f' xmlns:db="{NS.DIALBACK}"' if namespace == NS.SERVER else ""
    id_attr = f' id="{_escape_attr(stream_id)}"' if stream_id else ""
    to_attr = f' to="{_escape_attr(to)}"' if to else ""
    return (
        "<?xml version='1.0'?>"
        f'<stream:stream xmlns="{_escape_attr(namespace)}" xmlns:stream="{NS.STREAM}"{dialback}'
        f'{id_attr} from="{_escape_attr(from_)}"{to_attr}'
        f' version="1.0" xml:lang="{_escape_attr(lang)}">'
    ).encode()


def check_version(attributes: Mapping[str, str]) -> None:
    """RFC 6120 §4.7.5: no version means 0.9; we speak 1.x and answer 1.0."""
    major, dot, minor = attributes.get("version", "").partition(".")
    if not (dot and major == "1" and minor.isascii() and minor.isdigit()):
        raise StreamError(StreamCondition.UNSUPPORTED_VERSION, "version 1.0 is required")


def stream_error_element(error: StreamError) -> Element:
    """RFC 6120 §4.9.2: <stream:error><condition xmlns=streams/><text/>?</stream:error>."""
    element = Element(f"{{{NS.STREAM}}}error")
    SubElement(element, f"{{{NS.STREAMS}}}{error.condition.value}")
    if error.text:
        SubElement(element, f"{{{NS.STREAMS}}}text").text = error.text
    return element


def stream_footer() -> bytes:
    """The end of the stream (RFC 6120 §4.4)."""
    return b"</stream:stream>"


def websocket_open(*, stream_id: str, from_: str, to: str = "", lang: str = "en") -> str:
    """The server's ``<open/>`` answering the client's (RFC 7395 §3.4)."""
    to_attr = f' to="{_escape_attr(to)}"' if to else ""
    return (
        f'<open xmlns="{NS.FRAMING}" id="{_escape_attr(stream_id)}"'
        f' from="{_escape_attr(from_)}"{to_attr} version="1.0" xml:lang="{_escape_attr(lang)}"/>'
    )


def websocket_close(see_other_uri: str = "") -> str:
    """``<close/>`` ends a WebSocket XMPP session (RFC 7395 §3.6), optionally redirecting."""
    uri = f' see-other-uri="{_escape_attr(see_other_uri)}"' if see_other_uri else ""
    return f'<close xmlns="{NS.FRAMING}"{uri}/>'
