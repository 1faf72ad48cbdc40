"""Bytes to SIP messages: one datagram, or a TCP/TLS byte stream (RFC 3261 §7, §18.3).

Both paths share one head parser and one validator, so a message means the
same whatever carried it. The header section is UTF-8 decoded with
``surrogateescape``: a stray Latin-1 byte in a field heron does not read is
forwarded as it came instead of failing the message, and the grammar of the
fields heron does read rejects it there (RFC 3261 §7.3.1, §25.1).

Validated on arrival, so a proxy can trust them: the start line, Via, From,
To, Call-ID, CSeq (and that its method matches, RFC 3261 §8.1.1.5), Max-Forwards,
Contact, Route, Record-Route, Expires, Date, Require and Proxy-Require, and
that From, To, Call-ID, CSeq, Max-Forwards and Expires occur at most once
(RFC 4475 §3.3.8). Every other field is kept raw and parsed on access.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NoReturn

from heron.sip.errors import (
    BadRequest,
    LimitExceeded,
    MalformedValue,
    SipRemoteError,
    Status,
    UnanswerableMessage,
)
from heron.sip.fields import (
    MAX_UINT32,
    parse_address,
    parse_call_id,
    parse_cseq,
    parse_date,
)
from heron.sip.grammar import WSP, is_token, parse_int
from heron.sip.headers import Header, HeaderName, Headers, canonical_name
from heron.sip.message import SIP_VERSION, Method, Request, Response
from heron.sip.uri import SipUri, parse_uri

__all__ = ["PONG", "Event", "MessageLimits", "Ping", "StreamFramer", "parse_datagram"]

PONG = b"\r\n"  # RFC 5626 §3.5.1: the answer to a CRLFCRLF ping on a stream


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """Hard limits: anything larger is refused, never buffered. 64 KiB is the
    largest UDP datagram, and bounds a message on a stream just the same.
    """

    max_message_size: int = 65536
    """Start line, header fields and body together, in bytes."""
    max_header_count: int = 256
    """Header field lines, after unfolding."""
    max_line_length: int = 8192
    """One line of the head in bytes; an unfolded field may not exceed it either."""


DEFAULT_LIMITS = MessageLimits()


@dataclass(frozen=True, slots=True)
class Ping:
    """A CRLFCRLF keep-alive; on a stream, answer it with :data:`PONG` (RFC 5626 §3.5.1)."""


Event = Request | Response | Ping

_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
# The SP before an empty Reason-Phrase may be missing: a liberal receiver
# takes that (RFC 4475 §3.1.1.13). The phrase admits no controls but HTAB.
_STATUS_LINE_RE = re.compile(r"SIP/2\.0 ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?", re.I)


@dataclass(frozen=True, slots=True)
class _Fault:
    reason: str
    detail: str = ""
    status: int = Status.BAD_REQUEST
    framing: bool = False


@dataclass(frozen=True, slots=True)
class _Head:
    start: str
    headers: Headers
    fault: _Fault | None

    @property
    def method(self) -> str | None:
        """The method of a start line that looks like a request, else None."""
        method, space, rest = self.start.partition(" ")
        version = rest.rstrip(WSP).rpartition(" ")[2]
        return method if space and is_token(method) and _VERSION_RE.fullmatch(version) else None

    @property
    def is_response(self) -> bool:
        return self.start[:4].upper() == "SIP/"


def parse_datagram(data: bytes, limits: MessageLimits = DEFAULT_LIMITS) -> Event:
    """The message in one UDP datagram (RFC 3261 §18.3), or one WebSocket
    message, which frames a SIP message the same way (RFC 7118 §5).

    Content-Length is optional: without it the body is the rest of the
    datagram (RFC 4475 §3.4.1); a shorter one cuts trailing octets off
    (RFC 4475 §3.1.1.8); a longer one is an error (RFC 4475 §3.1.2.2).
    """
    if len(data) > limits.max_message_size:
        raise LimitExceeded("Message too large", detail=f"{len(data)} bytes")
    if not data:
        raise UnanswerableMessage("Empty datagram")
    while data.startswith(b"\r\n"):
        data = data[2:]
    if not data:
        return Ping()
    end = data.find(b"\r\n\r\n")
    if end < 0:
        head = _parse_head(data.removesuffix(b"\r\n"), limits)
        return _build(head, b"", _Fault("Missing empty line after header fields", framing=True))
    head = _parse_head(data[:end], limits)
    rest = data[end + 4 :]
    fault = None
    try:
        length = _content_length(head)
    except MalformedValue as error:
        length, fault = None, _Fault(error.reason, error.detail, framing=True)
    if length is not None and length > len(rest):
        fault = _Fault(
            "Content-Length larger than datagram", f"{length} > {len(rest)}", framing=True
        )
    return _build(head, rest if length is None else rest[:length], fault)


class StreamFramer:
    """Cuts a TCP or TLS byte stream into SIP messages (RFC 3261 §18.3).

    Feed bytes as they come, then call :meth:`next_event` until it returns
    None, which means "need more". Content-Length is required on a stream.
    A :class:`SipRemoteError` with ``framing`` set means the stream can no
    longer be cut: every later call raises it again and the connection must
    close. Any other error concerns one message, which is then skipped.
    """

    def __init__(self, limits: MessageLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._searched = 0
        self._pending: tuple[_Head, int, int] | None = None
        self._error: SipRemoteError | None = None

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        self._buffer += data

    def next_event(self) -> Event | None:
        """The next message or keep-alive, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except SipRemoteError as error:
            if error.framing:
                self._error = error
            raise

    def _next(self) -> Event | None:
        buffer, limits = self._buffer, self._limits
        if self._pending is None:
            # CRLFs before a start line are ignored (RFC 3261 §7.5), except the
            # CRLFCRLF ping of RFC 5626 §3.5.1, which may still be arriving.
            while buffer.startswith(b"\r\n"):
                if buffer.startswith(b"\r\n\r\n"):
                    del buffer[:4]
                    return Ping()
                if b"\r\n\r\n".startswith(buffer):
                    return None
                del buffer[:2]
            if buffer == b"\r":
                return None
            end = buffer.find(b"\r\n\r\n", max(self._searched - 3, 0))
            if end < 0:
                self._searched = len(buffer)
                self._check_partial()
                return None
            if end + 4 > limits.max_message_size:
                raise LimitExceeded("Message too large", detail=f"header section of {end} bytes")
            head = _parse_head(bytes(buffer[:end]), limits)
            length = _stream_length(head)
            if end + 4 + length > limits.max_message_size:
                raise LimitExceeded("Message too large", detail=f"Content-Length {length}")
            self._pending = (head, end + 4, length)
        head, start, length = self._pending
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start : start + length])
        del buffer[: start + length]
        self._pending, self._searched = None, 0
        return _build(head, body, None)

    def _check_partial(self) -> None:
        buffer, limits = self._buffer, self._limits
        if len(buffer) > limits.max_message_size:
            raise LimitExceeded("Message too large", detail=f"{len(buffer)} bytes, no end")
        last = buffer.rfind(b"\r\n")
        # +1: the CR of a line end whose LF has not arrived yet.
        if len(buffer) - (0 if last < 0 else last + 2) > limits.max_line_length + 1:
            raise LimitExceeded("Header line too long")


def _parse_head(data: bytes, limits: MessageLimits) -> _Head:
    """Split the start line and header fields, unfolding LWS (RFC 3261 §7.3.1).

    A malformed field line is skipped and remembered, so the fields that did
    parse can still address the 400 (RFC 4475 §3.1.2).
    """
    if len(data) > limits.max_line_length and any(
        len(line) > limits.max_line_length for line in data.split(b"\r\n")
    ):
        raise LimitExceeded("Header line too long")
    # Decoded whole, then split: CRLF never sits inside a UTF-8 sequence, and
    # surrogateescape maps every other byte alike either way.
    text = data.decode("utf-8", "surrogateescape")
    start, *rest = text.split("\r\n")
    # Counted once in C, so the common clean head skips a test per line.
    bare = text.count("\r") != len(rest) or text.count("\n") != len(rest)
    fields: list[list[str]] = []  # name as spelled, key, value
    fault = None
    for line in rest:
        if bare and ("\r" in line or "\n" in line):
            fault = fault or _Fault("Bare CR or LF", repr(line[:80]))
        elif line[:1] in (" ", "\t") and fields:
            field = fields[-1]
            field[2] = f"{field[2].rstrip(WSP)} {line.strip(WSP)}"
            if len(field[2]) > limits.max_line_length:
                raise LimitExceeded("Header line too long")
        else:
            name, colon, value = line.partition(":")
            named = _field_name(name) if colon else None
            if named is not None:
                fields.append([*named, value])
            else:
                fault = fault or _Fault("Malformed header field", repr(line[:80]))
        if len(fields) > limits.max_header_count:
            raise LimitExceeded("Too many header fields")
    return _Head(start, Headers(tuple([Header(n, v.strip(WSP), k) for n, k, v in fields])), fault)


@lru_cache(maxsize=1024)
def _field_name(raw: str) -> tuple[str, str] | None:
    """The name of a field line as spelled and its canonical key, or None when
    it is not a token. Cached: a few dozen names recur in every message.
    """
    name = raw.rstrip(WSP)
    return (name, canonical_name(name)) if is_token(name) else None


def _content_length(head: _Head) -> int | None:
    values = head.headers.get_all(HeaderName.CONTENT_LENGTH)
    if len(values) > 1:
        raise MalformedValue("Multiple Content-Length", detail=", ".join(values)[:80])
    return parse_int(values[0], MAX_UINT32, "Content-Length") if values else None


def _stream_length(head: _Head) -> int:
    """The body length of a stream message; any doubt loses the framing."""
    if head.method is None and not head.is_response:
        _reject(head, _Fault("Not a SIP message", repr(head.start[:80]), framing=True))
    try:
        length = _content_length(head)
    except MalformedValue as error:
        _reject(head, _Fault(error.reason, error.detail, framing=True))
    if length is None:
        # RFC 3261 §20.14: stream transports MUST carry Content-Length.
        _reject(head, _Fault("Missing Content-Length", framing=True))
    return length


def _build(head: _Head, body: bytes, framing: _Fault | None) -> Request | Response:
    """The message, or the error with the first fault found, in this order:
    start line, field lines, field values, then framing.
    """
    outcome = _start_line(head, body)
    if isinstance(outcome, _Fault):
        _reject(head, outcome if framing is None else replace(outcome, framing=True))
    fault = head.fault or _check_fields(head.headers, outcome) or framing
    if fault is None:
        return outcome
    _reject(head, fault if framing is None else replace(fault, framing=True))


def _start_line(head: _Head, body: bytes) -> Request | Response | _Fault:
    start = head.start
    if head.is_response:
        status = _STATUS_LINE_RE.fullmatch(start)
        if status is None or not 100 <= int(status.group(1)) <= 699:
            # RFC 4475 §3.1.2.19: an overlarge status code is simply dropped.
            return _Fault("Bad Status-Line", repr(start[:80]))
        return Response(int(status.group(1)), status.group(2) or "", head.headers, body)
    if head.method is None:
        return _Fault("Not a SIP message", repr(start[:80]))
    version = start.rstrip(WSP).rpartition(" ")[2]
    if version.upper() != SIP_VERSION:
        return _Fault("Version Not Supported", version, Status.VERSION_NOT_SUPPORTED)
    parts = start.split(" ")
    if len(parts) != 3 or not parts[1]:
        # One SP between the three elements (RFC 3261 §7.1; RFC 4475 §3.1.2.8-10).
        return _Fault("Bad Request-Line", repr(start[:80]))
    try:
        uri = parse_uri(parts[1])
    except MalformedValue as error:
        return _Fault("Bad Request-URI", error.detail)
    if isinstance(uri, SipUri) and uri.headers:
        # Headers are not allowed in a Request-URI (RFC 3261 §19.1.1; RFC 4475 §3.1.2.11).
        return _Fault("Bad Request-URI", parts[1][:80])
    return Request(parts[0], uri, head.headers, body)


def _check_call_id(headers: Headers) -> object:
    return parse_call_id(headers.get(HeaderName.CALL_ID) or "")


def _check_date(headers: Headers) -> object:
    return parse_date(headers.get(HeaderName.DATE) or "")


# (field, its canonical key, whether required, whether single, check). The
# checks run when the field is present; each raises MalformedValue.
_CHECKS: tuple[tuple[HeaderName, str, bool, bool, Callable[[Headers], object]], ...] = tuple(
    (name, canonical_name(name), required, single, check)
    for name, required, single, check in (
        (HeaderName.VIA, True, False, lambda h: h.vias),
        (HeaderName.FROM, True, True, lambda h: h.from_),
        (HeaderName.TO, True, True, lambda h: h.to),
        (HeaderName.CALL_ID, True, True, _check_call_id),
        (HeaderName.CSEQ, True, True, lambda h: h.cseq),
        (HeaderName.MAX_FORWARDS, False, True, lambda h: h.max_forwards),
        (HeaderName.CONTACT, False, False, lambda h: [(c.q, c.expires) for c in h.contacts]),
        (HeaderName.ROUTE, False, False, lambda h: h.routes),
        (HeaderName.RECORD_ROUTE, False, False, lambda h: h.record_routes),
        (HeaderName.EXPIRES, False, True, lambda h: h.expires),
        (HeaderName.DATE, False, True, _check_date),
        (HeaderName.REQUIRE, False, False, lambda h: h.require),
        (HeaderName.PROXY_REQUIRE, False, False, lambda h: h.proxy_require),
    )
)


def _check_fields(headers: Headers, message: Request | Response) -> _Fault | None:
    present = headers.by_key()
    for name, key, required, single, check in _CHECKS:
        values = present.get(key)
        if values is None:
            if required:
                return _Fault(f"Missing {name}")
            continue
        if single and len(values) > 1:
            return _Fault(f"Multiple {name}")
        try:
            check(headers)
        except MalformedValue as error:
            return _Fault(f"Bad {name}", f"{error.reason}: {error.detail}")
    if isinstance(message, Request) and headers.cseq.method != message.method:
        return _Fault("CSeq method does not match", f"{headers.cseq.method} {message.method}")
    return None


def _reject(head: _Head, fault: _Fault) -> NoReturn:
    """Raise ``fault`` as a BadRequest when the request can be answered along
    its Via (never an ACK, RFC 3261 §17.2.1), else as an UnanswerableMessage.
    """
    answer = _answer_fields(head.headers)
    if head.method not in (None, Method.ACK) and answer is not None:
        raise BadRequest(
            fault.reason, answer, status=fault.status, detail=fault.detail, framing=fault.framing
        )
    raise UnanswerableMessage(
        fault.reason, status=fault.status, detail=fault.detail, framing=fault.framing
    )


_ANSWER_CHECKS: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("from", parse_address),
    ("to", parse_address),
    ("call-id", parse_call_id),
    ("cseq", parse_cseq),
)


def _answer_fields(headers: Headers) -> Headers | None:
    """The Via fields, if they all parse, and the first From, To, Call-ID and
    CSeq that parse: what RFC 3261 §8.2.6.2 copies into the answer.
    """
    try:
        if not headers.vias:
            return None
    except MalformedValue:
        return None
    kept = [h for h in headers if h.key == "via"]
    for key, check in _ANSWER_CHECKS:
        first = next((h for h in headers if h.key == key), None)
        try:
            if first is not None:
                check(first.value)
                kept.append(first)
        except MalformedValue:
            continue
    return Headers(tuple(kept))
