"""Which service a new TCP connection on the shared port is for, from its first bytes.

This is the sans-IO core of the port-443 demultiplexer (issue 13): no socket, no
clock, no TLS library. The listener around it owns the deadline, the per-address
limit on pending connections and the I/O; one :class:`Classifier` per connection::

    classifier = Classifier(names)                      # names: SNI host name -> Service
    decision = classifier.decision                      # NeedMore(limit) at first
    while isinstance(decision, NeedMore):
        chunk = await read(decision.at_most)            # within the deadline, else close
        if not chunk:
            return close()                              # EOF before a decision
        decision = classifier.feed(chunk)
    if isinstance(decision, Refuse):
        return close()                                  # count decision.reason in /metrics
    hand_off(decision, classifier.received)             # the service replays these bytes

:meth:`Classifier.feed` takes each read as it comes and answers for everything fed so
far; :func:`classify` is the same decision, in one call, for bytes already in hand.
Both answer one of

- :class:`NeedMore`: no decision yet; ``at_most`` more bytes are all it can still
  use, so the bytes fed plus ``at_most`` never pass ``limit`` (:data:`MAX_PEEK` unless the
  caller gives another) and a listener that reads no more than that is bounded;
- :class:`Verdict`: the :class:`Service`, whether the bytes are a TLS ClientHello
  (the service then terminates TLS itself, from the bytes already read) and what the
  ClientHello named: the SNI host name (RFC 6066 §3, lower-cased) and the ALPN
  protocols offered (RFC 7301 §3.1), with the one that chose the service, which the
  service's TLS context should select;
- :class:`Refuse`: not something heron serves, malformed, or no decision within
  ``limit`` bytes; ``reason`` is one line for logs and counters.

A decision is final: bytes fed after it change nothing, so the listener stops reading.

How the bytes decide (the first byte picks the candidate, RFC 7983 §7 style):

- ``0x16`` (TLS handshake record): the ClientHello is reassembled from as many
  records as it came in (RFC 8446 §5.1) and parsed (§4.1.2). A known ALPN protocol
  chooses, in heron's order of preference (:data:`ALPN_SERVICES`): ``stun.turn``
  TURN, ``xmpp-client`` XMPP c2s (XEP-0368), ``xmpp-server`` XMPP s2s, ``sip/2`` SIP, ``h2`` and
  ``http/1.1`` the web component; ``acme-tls/1`` offered alone (a CA validating a name,
  RFC 8737 §3) the ACME responder. Otherwise the SNI looked up in ``names`` chooses (the
  SIP domain mapped to :attr:`Service.SIP`, for instance); otherwise a ClientHello that
  offers no ALPN is TURN (a browser's relay over TLS) and one that offers others the web.
  Under Encrypted Client Hello the SNI seen is the outer, public name.
- ``0x00``-``0x03``: a STUN header with the magic cookie (RFC 8489 §5) is TURN over TCP.
- ``<``: ``<?xml`` or ``<stream:stream`` is XMPP c2s, to be secured with STARTTLS.
- anything else is read as a text request line, after any CRLFs (RFC 3261 §7.5):
  ``METHOD SP Request-URI SP SIP/2.0 CRLF`` (§7.1) is SIP over TCP; an HTTP method,
  SP and ``/`` (RFC 9112 §3) is plain HTTP, for the web component to redirect to HTTPS.
  :attr:`Verdict.tls` is False for all of these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from types import MappingProxyType

from heron.sip.grammar import TOKEN_RE
from heron.stun.attributes import MAGIC_COOKIE

__all__ = [
    "ALPN_SERVICES",
    "MAX_PEEK",
    "Classifier",
    "Decision",
    "NeedMore",
    "Refuse",
    "Service",
    "Verdict",
    "classify",
]

ACME_ALPN = "acme-tls/1"
"""RFC 8737 §6.2; §3: the CA's ClientHello "MUST include ... an ALPN extension containing
only acme-tls/1", so a client that offers more is no validation and is not answered so."""
MAX_PEEK = 16 * 1024
"""Bytes read at most before a decision: a ClientHello with post-quantum key shares is
under 2 KiB; a larger one is refused rather than buffered for an unknown peer."""


class Service(Enum):
    """The services a connection on the shared port can be handed to."""

    TURN = "turn"
    SIP = "sip"
    XMPP_CLIENT = "xmpp-client"
    XMPP_SERVER = "xmpp-server"
    WEB = "web"
    ACME_TLS = "acme-tls"


ALPN_SERVICES: Mapping[str, Service] = MappingProxyType(
    {
        "stun.turn": Service.TURN,  # RFC 7443 §5
        "xmpp-client": Service.XMPP_CLIENT,  # XEP-0368 §4
        "xmpp-server": Service.XMPP_SERVER,  # XEP-0368 §4
        "sip/2": Service.SIP,  # not in the IANA registry: what heron's own SIP TLS names
        "h2": Service.WEB,  # RFC 9113 §3.2
        "http/1.1": Service.WEB,  # RFC 7301 §6
    }
)
"""The ALPN protocol ids (RFC 7301 §6 registry) that choose a service on their own, in
heron's order of preference: a service's own protocol before HTTP, since a client that
offers it is that service's client whatever else it offers (coturn's ``turnutils_uclient``
offers ``http/1.1`` first, then ``stun.turn``); no browser offers one of them."""


@dataclass(frozen=True, slots=True)
class NeedMore:
    """No decision yet: read again, no more than ``at_most`` bytes."""

    at_most: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The connection is for ``service``; hand it the bytes read so far.

    ``alpn`` is the offered protocol that chose the service (None when the SNI or the
    default did); ``alpn_offered`` is every protocol offered, in the client's order.
    """

    service: Service
    tls: bool
    server_name: str | None = None
    alpn: str | None = None
    alpn_offered: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refuse:
    """Close the connection: heron serves no such thing."""

    reason: str


Decision = NeedMore | Verdict | Refuse


class Classifier:
    """One pending connection, fed the bytes as they arrive.

    It keeps what it was fed (:attr:`received`, for the hand-off) and walks each TLS
    record once, however many reads bring it: a peer trickling a ClientHello in
    one-byte records costs linear work, not a rescan per read.
    """

    def __init__(
        self, names: Mapping[str, Service] = MappingProxyType({}), *, limit: int = MAX_PEEK
    ) -> None:
        self._names = names
        self._limit = limit
        self._received = bytearray()
        self._hello = _HelloAssembler(limit)
        self._decision: Decision = NeedMore(limit)

    @property
    def received(self) -> bytes:
        """Every byte fed so far: the service replays them before reading the socket."""
        return bytes(self._received)

    @property
    def decision(self) -> Decision:
        """The answer to the bytes fed so far (``NeedMore(limit)`` before any)."""
        return self._decision

    def feed(self, data: bytes) -> Decision:
        """Add ``data`` to what the connection sent and decide again; a decision is final."""
        self._received += data
        if isinstance(self._decision, NeedMore) and self._received:
            self._decision = self._decide(bytes(self._received[: self._limit]))
        return self._decision

    def _decide(self, view: bytes) -> Decision:
        if view[0] == _ContentType.HANDSHAKE:
            decision = self._hello.feed(view, self._names)
        elif view[0] <= _STUN_LAST_FIRST_BYTE:
            decision = _stun(view)
        elif view[0] == ord("<"):
            decision = _xmpp(view)
        else:
            decision = _request_line(view)
        if isinstance(decision, NeedMore):  # bounded here, so candidates may say _UNKNOWN
            if len(view) >= self._limit:
                return Refuse(f"no decision within {self._limit} bytes")
            return NeedMore(min(decision.at_most, self._limit - len(view)))
        return decision


def classify(
    data: bytes,
    names: Mapping[str, Service] = MappingProxyType({}),
    *,
    limit: int = MAX_PEEK,
) -> Decision:
    """Decide from ``data``, every byte the connection has sent so far.

    ``names`` maps lower-case host names to the service a ClientHello without a known
    ALPN protocol goes to when its SNI names them. Bytes past ``limit`` are not looked
    at: a decision must come from the first ``limit``.
    """
    return Classifier(names, limit=limit).feed(data)


_UNKNOWN = 2**31  # a candidate's NeedMore when only the limit bounds what it may take


# --- STUN (RFC 8489 §5, RFC 7983 §7) -------------------------------------------------

_STUN_LAST_FIRST_BYTE = 3  # RFC 7983 §7: a first byte of 0-3 is STUN
_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")
_COOKIE_END = 8


def _stun(data: bytes) -> Decision:
    """A STUN header: the length a multiple of 4, then the magic cookie."""
    if len(data) >= 4 and int.from_bytes(data[2:4], "big") % 4:
        return Refuse("STUN length not a multiple of 4 (RFC 8489 §5)")
    seen = data[4:_COOKIE_END]
    if not _COOKIE.startswith(seen):
        return Refuse("no STUN magic cookie (RFC 8489 §5)")
    if len(data) < _COOKIE_END:
        return NeedMore(_COOKIE_END - len(data))
    return Verdict(Service.TURN, tls=False)


# --- XMPP (RFC 6120 §4.2) -------------------------------------------------------------

_XMPP_STARTS = (b"<?xml", b"<stream:stream")


def _xmpp(data: bytes) -> Decision:
    """An XML declaration or a stream header: a client about to ask for STARTTLS."""
    if any(data.startswith(start) for start in _XMPP_STARTS):
        return Verdict(Service.XMPP_CLIENT, tls=False)
    missing = [len(start) - len(data) for start in _XMPP_STARTS if start.startswith(data)]
    return NeedMore(max(missing)) if missing else Refuse("XML that opens no XMPP stream")


# --- SIP and HTTP request lines (RFC 3261 §7.1, RFC 9112 §3) ---------------------------

# RFC 9110 §9.1 and RFC 5789 (PATCH): what a browser or a crawler sends to port 443 in clear.
_HTTP_METHODS = frozenset(b"GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH".split())
_SIP_VERSION_END = b"SIP/2.0\r\n"  # the version is case-insensitive (RFC 3261 §7.1)
_METHOD = re.compile(TOKEN_RE.pattern.encode())
# absoluteURI (RFC 3261 §25.1): a scheme, a colon, then visible characters up to SP.
_URI_PREFIX = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*(?::[\x21-\x7e]*)?")


def _request_line(data: bytes) -> Decision:
    """``SIP`` for a SIP request line, ``WEB`` for an HTTP one with an origin-form target."""
    line = data.lstrip(b"\r\n")
    method = _METHOD.match(line)
    if method is None:
        return Refuse("not a request line") if line else NeedMore(_UNKNOWN)
    rest = line[method.end() :]
    if not rest:
        return NeedMore(_UNKNOWN)
    if rest[:1] != b" ":
        return Refuse("request method not followed by SP")
    target = rest[1:]
    if not target:
        return NeedMore(_UNKNOWN)
    if method.group() in _HTTP_METHODS and target[:1] == b"/":
        return Verdict(Service.WEB, tls=False)
    uri, space, version = target.partition(b" ")
    if _URI_PREFIX.fullmatch(uri) is None or (space and b":" not in uri):
        return Refuse("Request-URI is not an absolute URI (RFC 3261 §7.1)")
    if not space:
        return NeedMore(_UNKNOWN)
    version = version.upper()
    if version.startswith(_SIP_VERSION_END):
        return Verdict(Service.SIP, tls=False)
    if _SIP_VERSION_END.startswith(version):
        return NeedMore(len(_SIP_VERSION_END) - len(version))
    return Refuse("request line does not end in SIP/2.0 (RFC 3261 §7.1)")


# --- TLS ClientHello (RFC 8446 §4.1.2, §5.1; RFC 6066 §3; RFC 7301 §3.1) ---------------


class _ContentType(IntEnum):
    HANDSHAKE = 22  # RFC 8446 §5.1


class _HandshakeType(IntEnum):
    CLIENT_HELLO = 1  # RFC 8446 §4


class _ExtensionType(IntEnum):
    SERVER_NAME = 0  # RFC 6066 §3
    APPLICATION_LAYER_PROTOCOL_NEGOTIATION = 16  # RFC 7301 §3.1


class _NameType(IntEnum):
    HOST_NAME = 0  # RFC 6066 §3


_RECORD_HEADER = 5
_HANDSHAKE_HEADER = 4
_MAX_FRAGMENT = 2**14  # RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes."
_LABEL = re.compile(rb"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")


class _Malformed(Exception):
    """A ClientHello that breaks its grammar; never leaves this module."""


class _HelloAssembler:
    """The ClientHello reassembled from its records (RFC 8446 §5.1), each walked once."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pos = 0  # the first record not yet whole
        self._fragments: list[bytes] = []  # the bodies of the whole records before it
        self._have = 0
        self._needed: int | None = None  # the whole handshake message, header included

    def feed(self, data: bytes, names: Mapping[str, Service]) -> Decision:
        """Walk the records of ``data`` from the first one not yet whole."""
        while True:
            header = data[self._pos : self._pos + _RECORD_HEADER]
            refusal = _record_header_refusal(header)
            if refusal:
                return Refuse(refusal)
            missing = _RECORD_HEADER - len(header)
            if missing:
                return NeedMore(_tls_at_most(self._needed, self._have, missing, 0))
            length = int.from_bytes(header[3:5], "big")
            start = self._pos + _RECORD_HEADER
            body = data[start : start + length]
            have = self._have + len(body)
            if self._needed is None and have >= _HANDSHAKE_HEADER:
                head = b"".join([*self._fragments, body])[:_HANDSHAKE_HEADER]
                if head[0] != _HandshakeType.CLIENT_HELLO:
                    return Refuse(f"handshake message {head[0]} is no ClientHello (RFC 8446 §4)")
                self._needed = _HANDSHAKE_HEADER + int.from_bytes(head[1:4], "big")
                if self._needed + _RECORD_HEADER > self._limit:
                    return Refuse(f"ClientHello of {self._needed} bytes exceeds {self._limit}")
            if self._needed is not None and have >= self._needed:
                hello = b"".join([*self._fragments, body])[_HANDSHAKE_HEADER : self._needed]
                try:
                    server_name, alpn = _parse_client_hello(hello)
                except _Malformed as exc:
                    return Refuse(str(exc))
                return _tls_verdict(server_name, alpn, names)
            if len(body) < length:
                return NeedMore(_tls_at_most(self._needed, have, 0, length - len(body)))
            self._fragments.append(body)
            self._have = have
            self._pos = start + length


def _record_header_refusal(header: bytes) -> str | None:
    """Why a (possibly partial) record header cannot carry a ClientHello, if it cannot."""
    if header[:1] not in (b"", bytes([_ContentType.HANDSHAKE])):
        return f"record type {header[0]} inside the ClientHello (RFC 8446 §5.1)"
    # legacy_record_version: 0x0301 or 0x0303 in practice, TLS 1.0 to 1.3 accepted.
    if len(header) >= 2 and header[1] != 3:
        return "record version is no TLS version"
    if len(header) >= 3 and header[2] > 4:
        return "record version is no TLS version"
    if len(header) == _RECORD_HEADER:
        length = int.from_bytes(header[3:5], "big")
        if length == 0:
            return "zero-length handshake record (RFC 8446 §5.1)"
        if length > _MAX_FRAGMENT:
            return f"record of {length} bytes exceeds 2^14 (RFC 8446 §5.1)"
    return None


def _tls_at_most(needed: int | None, have: int, header_missing: int, record_pending: int) -> int:
    """The most bytes the rest of the ClientHello can take: each handshake byte past the
    current record may come in a record of its own, 6 bytes on the wire."""
    if needed is None:
        return _UNKNOWN
    remaining = needed - have
    if header_missing:
        return header_missing + 6 * remaining - _RECORD_HEADER
    if remaining <= record_pending:
        return remaining
    return record_pending + 6 * (remaining - record_pending)


class _Reader:
    """Bounds-checked reads of TLS presentation-language vectors (RFC 8446 §3.4)."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def empty(self) -> bool:
        return self._pos == len(self._data)

    def take(self, size: int) -> bytes:
        if self._pos + size > len(self._data):
            raise _Malformed(f"{self._what} shorter than its lengths say")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int, floor: int, ceiling: int, what: str) -> bytes:
        """``opaque what<floor..ceiling>`` with a ``length_size``-byte length."""
        length = self.number(length_size)
        if not floor <= length <= ceiling:
            raise _Malformed(f"{what} of {length} bytes, outside {floor}..{ceiling}")
        return self.take(length)


def _parse_client_hello(hello: bytes) -> tuple[str | None, tuple[str, ...]]:
    """The SNI host name and the ALPN protocols of a ClientHello body (RFC 8446 §4.1.2)."""
    reader = _Reader(hello, "ClientHello")
    reader.take(2 + 32)  # legacy_version, random
    reader.vector(1, 0, 32, "legacy_session_id")
    suites = reader.vector(2, 2, 2**16 - 2, "cipher_suites")
    if len(suites) % 2:
        raise _Malformed("cipher_suites of an odd length")
    reader.vector(1, 1, 2**8 - 1, "legacy_compression_methods")
    if reader.empty():  # a TLS 1.2 ClientHello may carry no extensions (RFC 5246 §7.4.1.2)
        return None, ()
    extensions = reader.vector(2, 0, 2**16 - 1, "extensions")
    if not reader.empty():
        raise _Malformed("bytes after the ClientHello extensions")
    return _walk_extensions(extensions)


# The hot loop of every TLS connection on the shared port: plain ints and slices, no
# enum lookups or reader calls (a Chromium ClientHello has 19 extensions).
_SNI, _ALPN = (
    int(_ExtensionType.SERVER_NAME),
    int(_ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION),
)


def _walk_extensions(data: bytes) -> tuple[str | None, tuple[str, ...]]:
    """SNI and ALPN from ``Extension extensions<8..2^16-1>``'s contents (RFC 8446 §4.2)."""
    seen: set[int] = set()
    server_name: str | None = None
    alpn: tuple[str, ...] = ()
    pos, end = 0, len(data)
    while pos < end:
        if pos + 4 > end:
            raise _Malformed("extensions shorter than its lengths say")
        kind = data[pos] << 8 | data[pos + 1]
        start = pos + 4
        pos = start + (data[pos + 2] << 8 | data[pos + 3])
        if pos > end:
            raise _Malformed("extensions shorter than its lengths say")
        if kind in seen:
            # RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type"
            raise _Malformed(f"extension {kind} twice (RFC 8446 §4.2)")
        seen.add(kind)
        if kind == _SNI:
            server_name = _server_name(data[start:pos])
        elif kind == _ALPN:
            alpn = _alpn(data[start:pos])
    return server_name, alpn


def _server_name(body: bytes) -> str:
    """The host_name of a server_name extension (RFC 6066 §3), lower-cased."""
    outer = _Reader(body, "server_name")
    names = _Reader(outer.vector(2, 1, 2**16 - 1, "server_name_list"), "server_name_list")
    if not outer.empty():
        raise _Malformed("bytes after the server_name_list")
    found: str | None = None
    while not names.empty():
        if names.number(1) != _NameType.HOST_NAME:
            raise _Malformed("unknown server name type (RFC 6066 §3)")
        name = names.vector(2, 1, 2**16 - 1, "HostName")
        if found is not None:
            # RFC 6066 §3: "The ServerNameList MUST NOT contain more than one name of
            # the same name_type."
            raise _Malformed("two host names in server_name (RFC 6066 §3)")
        found = _host_name(name)
    if found is None:
        raise _Malformed("empty server_name_list")
    return found


def _host_name(name: bytes) -> str:
    """A DNS host name: "without a trailing dot", and no IP literal (RFC 6066 §3)."""
    lowered = name.lower()
    labels = lowered.split(b".")
    if (
        len(lowered) > 253
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise _Malformed("server name is no DNS host name (RFC 6066 §3)")
    return lowered.decode("ascii")


def _alpn(body: bytes) -> tuple[str, ...]:
    """The protocol names of an ALPN extension, in the client's order (RFC 7301 §3.1)."""
    outer = _Reader(body, "application_layer_protocol_negotiation")
    protocols = _Reader(outer.vector(2, 2, 2**16 - 1, "protocol_name_list"), "ALPN")
    if not outer.empty():
        raise _Malformed("bytes after the protocol_name_list")
    offered: list[str] = []
    while not protocols.empty():
        # ProtocolName is opaque; latin-1 keeps every byte and never fails.
        offered.append(protocols.vector(1, 1, 2**8 - 1, "ProtocolName").decode("latin-1"))
    return tuple(offered)


def _tls_verdict(
    server_name: str | None, alpn: tuple[str, ...], names: Mapping[str, Service]
) -> Verdict:
    """A known ALPN protocol first, in heron's order of preference (RFC 7301 §3.2: the
    server's); then the SNI; then, for a ClientHello that offers no ALPN at all, TURN;
    else the web.

    Browsers' WebRTC stacks open TURN over TLS (RFC 7350 §5) offering no ALPN, with no SNI
    for an address and with the page's own host name otherwise, while every browser and
    HTTP library offers ALPN for HTTPS: so a hotel guest's relay needs no name of its own.
    """
    if alpn == (ACME_ALPN,):
        return Verdict(Service.ACME_TLS, True, server_name, ACME_ALPN, alpn)
    for protocol, service in ALPN_SERVICES.items():
        if protocol in alpn:
            return Verdict(service, True, server_name, protocol, alpn)
    by_name = names.get(server_name) if server_name is not None else None
    if by_name is not None:
        return Verdict(by_name, True, server_name, alpn_offered=alpn)
    return Verdict(Service.WEB if alpn else Service.TURN, True, server_name, alpn_offered=alpn)
