"""SIP requests and responses (RFC 3261 §7) and what a proxy does to them.

Messages are immutable; every helper returns a new one. ``encode()`` always
writes one Content-Length equal to the body, so the bytes are fit for a
stream whatever the message came from (RFC 3261 §18.3, §20.14).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from heron.sip.errors import BadRequest, SipLocalError, Status, reason_phrase
from heron.sip.fields import NameAddr, Via, parse_address
from heron.sip.grammar import is_token
from heron.sip.headers import Header, HeaderName, Headers, canonical_name, checked_header
from heron.sip.uri import Uri

__all__ = ["SIP_VERSION", "Message", "Method", "Request", "Response", "stateless_tag"]

SIP_VERSION = "SIP/2.0"  # RFC 3261 §7.1


class Method(StrEnum):
    """Methods heron knows; any other token is a legal extension (RFC 3261 §7.1)."""

    ACK = "ACK"  # RFC 3261 §17.1.1.3
    BYE = "BYE"  # RFC 3261 §15
    CANCEL = "CANCEL"  # RFC 3261 §9
    INFO = "INFO"  # RFC 6086
    INVITE = "INVITE"  # RFC 3261 §13
    MESSAGE = "MESSAGE"  # RFC 3428
    NOTIFY = "NOTIFY"  # RFC 6665
    OPTIONS = "OPTIONS"  # RFC 3261 §11
    PRACK = "PRACK"  # RFC 3262
    PUBLISH = "PUBLISH"  # RFC 3903
    REFER = "REFER"  # RFC 3515
    REGISTER = "REGISTER"  # RFC 3261 §10
    SUBSCRIBE = "SUBSCRIBE"  # RFC 6665
    UPDATE = "UPDATE"  # RFC 3311


_METHODS = frozenset(Method)
"""Tokens already: a proxy copies a request several times on its way through."""


@dataclass(frozen=True, slots=True)
class Request:
    """A request: method, Request-URI, fields and body (RFC 3261 §7.1)."""

    method: str
    uri: Uri
    headers: Headers = Headers()
    body: bytes = b""

    def __post_init__(self) -> None:
        if self.method not in _METHODS and not is_token(self.method):
            raise SipLocalError("Method is not a token", detail=repr(self.method))

    def with_headers(self, headers: Headers) -> Request:
        """This request with ``headers`` instead of its own (cheaper than
        ``dataclasses.replace``, which a proxy would pay on every edit).
        """
        return Request(self.method, self.uri, headers, self.body)

    def encode(self) -> bytes:
        """The request on the wire."""
        return _encode(f"{self.method} {self.uri} {SIP_VERSION}", self.headers, self.body)

    def response(
        self,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """A response to this request (RFC 3261 §8.2.6), ``headers`` appended.

        Via, From, Call-ID and CSeq are copied as received; To too, with
        ``to_tag`` added when it has none, which RFC 3261 §8.2.6.2 requires of
        every response but 100 (the tag is random, so the caller supplies it).
        An ACK is never answered (RFC 3261 §17.1.1.3).
        """
        if self.method == Method.ACK:
            raise SipLocalError("An ACK is never answered")
        return _answer(self.headers, status, reason, to_tag, headers)

    def received_from(self, host: str, port: int) -> Request:
        """This request with its top Via stamped by the server transport that got it
        from ``host``:``port`` (RFC 3261 §18.2.1, RFC 3581 §4): ``received`` when sent-by
        names another address, ``received`` and ``rport`` when the client asked with a
        bare ``rport``. The same request when there is nothing to add.
        """
        return _stamped(self, host, port)

    def push_via(self, via: Via) -> Request:
        """This request with ``via`` on top, as a proxy forwards it (RFC 3261 §16.6 step 8)."""
        return self.with_headers(self.headers.prepend(HeaderName.VIA, str(via)))

    def push_record_route(self, address: NameAddr) -> Request:
        """This request with ``address`` as the topmost Record-Route (RFC 3261 §16.6 step 4)."""
        return self.with_headers(self.headers.prepend(HeaderName.RECORD_ROUTE, str(address)))

    def pop_route(self) -> Request:
        """This request without its topmost Route value (RFC 3261 §16.4)."""
        return self.with_headers(self.headers.pop_first(HeaderName.ROUTE))

    def decrement_max_forwards(self) -> Request:
        """This request with Max-Forwards one lower, or 70 if it had none
        (RFC 3261 §16.6 step 3). At zero the proxy answers 483 instead
        (RFC 3261 §16.3 step 3; RFC 4475 §3.3.11), so zero is refused here.
        """
        hops = self.headers.max_forwards
        if hops == 0:
            raise SipLocalError("Max-Forwards is 0: answer 483 instead of forwarding")
        hops = 70 if hops is None else hops - 1
        return self.with_headers(self.headers.replace(HeaderName.MAX_FORWARDS, str(hops)))


@dataclass(frozen=True, slots=True)
class Response:
    """A response: status, reason phrase, fields and body (RFC 3261 §7.2)."""

    status: int
    reason: str = ""
    headers: Headers = Headers()
    body: bytes = b""

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 699 or "\r" in self.reason or "\n" in self.reason:
            raise SipLocalError("Bad status line", detail=f"{self.status} {self.reason[:80]!r}")

    @classmethod
    def from_error(
        cls,
        error: BadRequest,
        *,
        to_tag: str | None = None,
        source: tuple[str, int] | None = None,
    ) -> Response:
        """The answer to a request that failed to parse (RFC 3261 §8.2.6, §21.4.1).

        Without ``to_tag`` the tag is :func:`stateless_tag` of the fields that
        parsed, as a stateless UAS must choose it (RFC 3261 §8.2.7); ``source``
        stamps the top Via as :meth:`Request.received_from` does.
        """
        headers = error.headers
        if source is not None and headers.get(HeaderName.VIA) is not None:
            top = headers.top_via
            stamped = top.with_received(*source)
            if stamped is not top:
                headers = headers.with_top_via(stamped)
        if to_tag is None:
            to_tag = stateless_tag(headers)
        return _answer(headers, error.status, error.reason, to_tag, ())

    def with_headers(self, headers: Headers) -> Response:
        """This response with ``headers`` instead of its own."""
        return Response(self.status, self.reason, headers, self.body)

    def encode(self) -> bytes:
        """The response on the wire."""
        return _encode(f"{SIP_VERSION} {self.status} {self.reason}", self.headers, self.body)

    def pop_via(self) -> Response:
        """This response without the topmost Via value, which named this proxy
        (RFC 3261 §16.7 step 3).
        """
        return self.with_headers(self.headers.pop_first(HeaderName.VIA))


Message = Request | Response

# What RFC 3261 §8.2.6 copies into a response, in the order it is written.
_COPIED = (HeaderName.VIA, HeaderName.FROM, HeaderName.TO, HeaderName.CALL_ID, HeaderName.CSEQ)
_COPIED_KEYS = tuple((name, canonical_name(name)) for name in _COPIED)


def _answer(
    request: Headers,
    status: int,
    reason: str | None,
    to_tag: str | None,
    extra: Iterable[tuple[str, str]],
) -> Response:
    # Values copied as they are were fit to send already; only what is new is checked.
    fields: list[Header] = []
    for name, key in _COPIED_KEYS:
        values = request.get_all(key)
        if name is HeaderName.TO and values:
            tagged = _tagged(values[0], status, to_tag)
            fields.append(
                Header(name, tagged, key) if tagged is values[0] else checked_header(name, tagged)
            )
            continue
        if name is not HeaderName.VIA:
            values = values[:1]
        fields.extend([Header(name, value, key) for value in values])
    if status == Status.TRYING and (stamp := request.get(HeaderName.TIMESTAMP)) is not None:
        fields.append(Header(HeaderName.TIMESTAMP, stamp))  # RFC 3261 §8.2.6.1
    fields.extend([checked_header(name, value) for name, value in extra])
    phrase = reason_phrase(status) if reason is None else reason
    return Response(status, phrase, Headers(tuple(fields)))


def stateless_tag(headers: Headers) -> str:
    """A To tag that a stateless answer repeats for every copy of one request
    (RFC 3261 §8.2.7): a hash of the fields a response copies."""
    seed = "\0".join(v for name in _COPIED for v in headers.get_all(name))
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _stamped(request: Request, host: str, port: int) -> Request:
    headers = request.headers
    top = headers.top_via
    stamped = top.with_received(host, port)
    if stamped is top:
        return request
    return request.with_headers(headers.with_top_via(stamped))


def _tagged(to: str, status: int, to_tag: str | None) -> str:
    if status == Status.TRYING or parse_address(to).tag is not None:
        return to
    if to_tag is None:
        raise SipLocalError("A response needs a To tag (RFC 3261 §8.2.6.2)")
    return f"{to};tag={to_tag}"


def _encode(start_line: str, headers: Headers, body: bytes) -> bytes:
    lengths = headers.get_all(HeaderName.CONTENT_LENGTH)
    if len(lengths) != 1 or lengths[0].lstrip("0") != str(len(body)).lstrip("0"):
        # Keep a correct Content-Length where the peer put it, else write our own.
        headers = Headers(
            (
                *(h for h in headers if h.key != "content-length"),
                Header(HeaderName.CONTENT_LENGTH, str(len(body))),
            )
        )
    try:
        start = start_line.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise SipLocalError("Start line is not text", detail=ascii(start_line[:80])) from None
    return b"".join((start, b"\r\n", headers.encode(), b"\r\n", body))
