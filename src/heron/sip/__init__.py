"""The sans-IO SIP message layer (RFC 3261 §7, §18.3, §19, §20, §25).

Bytes in, immutable messages out, and back: :func:`parse_datagram` for UDP,
:class:`StreamFramer` for TCP and TLS, ``encode()`` on every message. No
sockets, no clock, no randomness: tags and branches come from the caller.
"""

from heron.sip.errors import (
    BadRequest,
    LimitExceeded,
    MalformedValue,
    SipError,
    SipLocalError,
    SipRemoteError,
    Status,
    UnanswerableMessage,
    reason_phrase,
)
from heron.sip.fields import (
    MAGIC_COOKIE,
    Auth,
    CSeq,
    NameAddr,
    Transport,
    Via,
    parse_address,
    parse_auth,
    parse_via,
)
from heron.sip.grammar import Params
from heron.sip.headers import Header, HeaderName, Headers
from heron.sip.message import SIP_VERSION, Message, Method, Request, Response
from heron.sip.parser import PONG, Event, MessageLimits, Ping, StreamFramer, parse_datagram
from heron.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

__all__ = [
    "MAGIC_COOKIE",
    "PONG",
    "SIP_VERSION",
    "AbsoluteUri",
    "NameAddr",
    "Auth",
    "BadRequest",
    "CSeq",
    "Event",
    "Header",
    "HeaderName",
    "Headers",
    "LimitExceeded",
    "MessageLimits",
    "MalformedValue",
    "Message",
    "Method",
    "Params",
    "Ping",
    "Request",
    "Response",
    "SipError",
    "SipLocalError",
    "SipRemoteError",
    "SipUri",
    "Status",
    "StreamFramer",
    "Transport",
    "UnanswerableMessage",
    "Uri",
    "Via",
    "parse_address",
    "parse_auth",
    "parse_datagram",
    "parse_uri",
    "parse_via",
    "reason_phrase",
]
