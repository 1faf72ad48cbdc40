"""The one exception tree of the SIP message layer.

Every failure carries the SIP status to answer with (RFC 3261 §21.4) and a
reason phrase naming the fault, so the transport never has to guess::

    SipError                      .status, .reason (wire-safe), .detail (for logs)
    ├── SipLocalError             heron asked to build or send something RFC 3261
    │                             forbids: a bug on our side, never the peer's
    └── SipRemoteError            the peer's bytes are not a valid SIP message;
        │                         .framing: the message boundaries are lost
        ├── MalformedValue        one header value or URI breaks its grammar
        │                         (raised by the field parsers; the message
        │                         parser turns it into one of the two below)
        ├── BadRequest            a request that can be answered: .headers holds
        │                         the Via, From, To, Call-ID and CSeq that parsed,
        │                         enough for Response.from_error()
        └── UnanswerableMessage   can only be dropped: not SIP, a malformed
            │                     response (RFC 4475 §3.1.2.19), an ACK, or a
            │                     request without a usable Via to answer along
            └── LimitExceeded     a hard size or count limit was hit

When ``framing`` is true a stream transport cannot find the next message
(missing, negative or repeated Content-Length, a limit hit): it answers if it
can, then closes the connection (RFC 4475 §3.1.2.3, §3.3.9). On UDP only the
datagram is lost. A parser raises nothing but this tree, whatever the bytes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heron.sip.headers import Headers

__all__ = [
    "BadRequest",
    "LimitExceeded",
    "MalformedValue",
    "SipError",
    "SipLocalError",
    "SipRemoteError",
    "Status",
    "UnanswerableMessage",
    "reason_phrase",
]


class Status(IntEnum):
    """Response status codes (RFC 3261 §21 and the IANA "Response Codes" registry)."""

    TRYING = 100  # RFC 3261 §21.1.1
    RINGING = 180  # RFC 3261 §21.1.2
    CALL_IS_BEING_FORWARDED = 181  # RFC 3261 §21.1.3
    QUEUED = 182  # RFC 3261 §21.1.4
    SESSION_PROGRESS = 183  # RFC 3261 §21.1.5
    OK = 200  # RFC 3261 §21.2.1
    ACCEPTED = 202  # RFC 6665 §8.3.1 (deprecated, still seen)
    MULTIPLE_CHOICES = 300  # RFC 3261 §21.3.1
    MOVED_PERMANENTLY = 301  # RFC 3261 §21.3.2
    MOVED_TEMPORARILY = 302  # RFC 3261 §21.3.3
    USE_PROXY = 305  # RFC 3261 §21.3.4
    ALTERNATIVE_SERVICE = 380  # RFC 3261 §21.3.5
    BAD_REQUEST = 400  # RFC 3261 §21.4.1
    UNAUTHORIZED = 401  # RFC 3261 §21.4.2
    FORBIDDEN = 403  # RFC 3261 §21.4.4
    NOT_FOUND = 404  # RFC 3261 §21.4.5
    METHOD_NOT_ALLOWED = 405  # RFC 3261 §21.4.6
    NOT_ACCEPTABLE = 406  # RFC 3261 §21.4.7
    PROXY_AUTHENTICATION_REQUIRED = 407  # RFC 3261 §21.4.8
    REQUEST_TIMEOUT = 408  # RFC 3261 §21.4.9
    GONE = 410  # RFC 3261 §21.4.10
    REQUEST_ENTITY_TOO_LARGE = 413  # RFC 3261 §21.4.11
    REQUEST_URI_TOO_LONG = 414  # RFC 3261 §21.4.12
    UNSUPPORTED_MEDIA_TYPE = 415  # RFC 3261 §21.4.13
    UNSUPPORTED_URI_SCHEME = 416  # RFC 3261 §21.4.14
    BAD_EXTENSION = 420  # RFC 3261 §21.4.15
    EXTENSION_REQUIRED = 421  # RFC 3261 §21.4.16
    SESSION_INTERVAL_TOO_SMALL = 422  # RFC 4028 §6
    INTERVAL_TOO_BRIEF = 423  # RFC 3261 §21.4.17
    TEMPORARILY_UNAVAILABLE = 480  # RFC 3261 §21.4.18
    CALL_DOES_NOT_EXIST = 481  # RFC 3261 §21.4.19
    LOOP_DETECTED = 482  # RFC 3261 §21.4.20
    TOO_MANY_HOPS = 483  # RFC 3261 §21.4.21
    ADDRESS_INCOMPLETE = 484  # RFC 3261 §21.4.22
    AMBIGUOUS = 485  # RFC 3261 §21.4.23
    BUSY_HERE = 486  # RFC 3261 §21.4.24
    REQUEST_TERMINATED = 487  # RFC 3261 §21.4.25
    NOT_ACCEPTABLE_HERE = 488  # RFC 3261 §21.4.26
    BAD_EVENT = 489  # RFC 6665 §8.3.2
    REQUEST_PENDING = 491  # RFC 3261 §21.4.27
    UNDECIPHERABLE = 493  # RFC 3261 §21.4.28
    SERVER_INTERNAL_ERROR = 500  # RFC 3261 §21.5.1
    NOT_IMPLEMENTED = 501  # RFC 3261 §21.5.2
    BAD_GATEWAY = 502  # RFC 3261 §21.5.3
    SERVICE_UNAVAILABLE = 503  # RFC 3261 §21.5.4
    SERVER_TIMEOUT = 504  # RFC 3261 §21.5.5
    VERSION_NOT_SUPPORTED = 505  # RFC 3261 §21.5.6
    MESSAGE_TOO_LARGE = 513  # RFC 3261 §21.5.7
    BUSY_EVERYWHERE = 600  # RFC 3261 §21.6.1
    DECLINE = 603  # RFC 3261 §21.6.2
    DOES_NOT_EXIST_ANYWHERE = 604  # RFC 3261 §21.6.3
    GLOBAL_NOT_ACCEPTABLE = 606  # RFC 3261 §21.6.4


_IRREGULAR_PHRASES = {
    Status.OK: "OK",
    Status.REQUEST_URI_TOO_LONG: "Request-URI Too Long",
    Status.UNSUPPORTED_URI_SCHEME: "Unsupported URI Scheme",
    Status.CALL_DOES_NOT_EXIST: "Call/Transaction Does Not Exist",
    Status.SERVER_TIMEOUT: "Server Time-out",
    Status.VERSION_NOT_SUPPORTED: "Version Not Supported",
    Status.GLOBAL_NOT_ACCEPTABLE: "Not Acceptable",
}


def reason_phrase(status: int) -> str:
    """The RFC 3261 §21 reason phrase for ``status``, or a class default for others."""
    if status in _IRREGULAR_PHRASES:
        return _IRREGULAR_PHRASES[Status(status)]
    try:
        return Status(status).name.replace("_", " ").title()
    except ValueError:
        return _CLASS_PHRASES.get(status // 100, "Unknown")


_CLASS_PHRASES = {1: "Progress", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error"}


class SipError(Exception):
    """Root of the SIP message layer's exceptions.

    ``reason`` is safe to send as a Reason-Phrase: it names the fault with our
    own words, never with the peer's bytes, which go to ``detail`` for logs.
    """

    def __init__(self, reason: str, *, status: int = Status.BAD_REQUEST, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.status = status
        self.detail = detail


class SipLocalError(SipError):
    """heron asked for a message RFC 3261 forbids; answered, if at all, with a 500."""

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason, status=Status.SERVER_INTERNAL_ERROR, detail=detail)


class SipRemoteError(SipError):
    """The peer sent bytes that are not a valid SIP message."""

    def __init__(
        self,
        reason: str,
        *,
        status: int = Status.BAD_REQUEST,
        detail: str = "",
        framing: bool = False,
    ) -> None:
        super().__init__(reason, status=status, detail=detail)
        self.framing = framing


class MalformedValue(SipRemoteError):
    """One header field value or URI does not match its RFC 3261 §25 grammar."""


class BadRequest(SipRemoteError):
    """A malformed request the transport should answer with ``status``.

    ``headers`` holds the request's Via, From, To, Call-ID and CSeq fields that
    parsed, which is what RFC 3261 §8.2.6.2 copies into a response.
    """

    def __init__(
        self,
        reason: str,
        headers: Headers,
        *,
        status: int = Status.BAD_REQUEST,
        detail: str = "",
        framing: bool = False,
    ) -> None:
        super().__init__(reason, status=status, detail=detail, framing=framing)
        self.headers = headers


class UnanswerableMessage(SipRemoteError):
    """Bytes that can only be dropped: there is nothing to answer, or no way back."""


class LimitExceeded(UnanswerableMessage):
    """The message broke a hard limit (size, header count, line length)."""

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason, status=Status.MESSAGE_TOO_LARGE, detail=detail, framing=True)
