"""Typed header field values and their parsers (RFC 3261 §20, §25.1).

Each parser takes one unfolded element (a Via or Contact list is split with
:func:`heron.sip.grammar.split_commas` first) and raises only
:class:`MalformedValue`. The values serialize with ``str()`` in canonical
form; a message keeps the peer's raw text for forwarding, so these are views.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

from heron.sip.errors import MalformedValue
from heron.sip.grammar import (
    QUOTED_RE,
    TOKEN_RE,
    WSP,
    Params,
    is_token,
    parse_host,
    parse_int,
    parse_params,
    quote,
    skip_ws,
    split_commas,
    unquote,
)
from heron.sip.uri import CACHED_LENGTH, Uri, parse_uri

__all__ = [
    "MAGIC_COOKIE",
    "NameAddr",
    "Auth",
    "CSeq",
    "Transport",
    "Via",
    "parse_address",
    "parse_auth",
    "parse_call_id",
    "parse_cseq",
    "parse_date",
    "parse_via",
]

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
MAX_UINT32 = 2**32 - 1  # CSeq, Expires, delta-seconds (RFC 3261 §20.16, §20.19)


class Transport(StrEnum):
    """Via transport tokens; any other token is legal too (RFC 3261 §20.42)."""

    UDP = "UDP"  # RFC 3261 §18
    TCP = "TCP"  # RFC 3261 §18
    TLS = "TLS"  # RFC 3261 §18, §26.2
    SCTP = "SCTP"  # RFC 4168 §5
    WS = "WS"  # RFC 7118 §5
    WSS = "WSS"  # RFC 7118 §5


_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_WORDS_RE = re.compile(r"[ \t]+")
_TOKEN = TOKEN_RE.pattern
_SENT_PROTOCOL_RE = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+"
)
_HOST_RE = re.compile(r"\[[^\]]*\]|[A-Za-z0-9.\-]+")
_PORT_RE = re.compile(r"[ \t]*:[ \t]*([0-9]+)")
_CSEQ_RE = re.compile(rf"([0-9]+)[ \t]+({_TOKEN})")
_AUTH_PARAM_RE = re.compile(rf"({_TOKEN})[ \t]*=[ \t]*({QUOTED_RE.pattern}|{_TOKEN})")
_AUTH_PARAM = rf"{_TOKEN}[ \t]*=[ \t]*(?:{QUOTED_RE.pattern}|{_TOKEN})"
_AUTH_PARAMS_RE = re.compile(rf"[ \t]+{_AUTH_PARAM}(?:[ \t]*,[ \t]*{_AUTH_PARAM})*[ \t]*")
# word ["@" word]: %, quotes and brackets carry no meaning here (RFC 4475 §3.1.1.2).
_WORD = r"""[A-Za-z0-9\-.!%*_+`'~()<>:\\"/\[\]?{}]+"""
_CALL_ID_RE = re.compile(f"{_WORD}(?:@{_WORD})?")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ("
    + "|".join(_MONTHS)
    + r") ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``name-addr / addr-spec`` with header parameters: From, To, Contact,
    Route, Record-Route (RFC 3261 §20.10, §20.20, §20.30, §20.34, §20.39).

    ``display_name`` is the text a user sees: quotes and quoted-pairs resolved.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = Params()

    def __str__(self) -> str:
        name = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{name}<{self.uri}>{self.params}"

    @property
    def tag(self) -> str | None:
        """The dialog tag of From and To (RFC 3261 §19.3)."""
        return self.params.get("tag")

    @property
    def q(self) -> float | None:
        """A Contact's preference, 0 to 1 (RFC 3261 §20.10)."""
        value = self.params.get("q")
        if value is None:
            return None
        if not _QVALUE_RE.fullmatch(value):
            raise MalformedValue("Bad Contact q value", detail=value[:40])
        return float(value)

    @property
    def expires(self) -> int | None:
        """A Contact's expires parameter in seconds (RFC 3261 §10.2.1.1)."""
        value = self.params.get("expires")
        return None if value is None else parse_int(value, MAX_UINT32, "Contact expires")

    def with_tag(self, tag: str) -> NameAddr:
        """This address with ``tag`` set, as a UAS adds it to To (RFC 3261 §8.2.6.2)."""
        return replace(self, params=self.params.set("tag", tag))


def parse_address(text: str) -> NameAddr:
    """One ``(name-addr / addr-spec) *(SEMI generic-param)`` element.

    Without angle brackets every ``;`` starts a header parameter and the URI
    may not hold ``,`` ``?`` or spaces (RFC 3261 §20.10; RFC 4475 §3.1.2.13,
    §3.3.12). A token display name may touch the ``<`` (RFC 4475 §3.1.1.6).
    An NameAddr is immutable: the same text gives the same object from a cache.
    """
    if len(text) <= CACHED_LENGTH:
        return _parse_address_cached(text)
    return _parse_address(text)


def _parse_address(text: str) -> NameAddr:
    text = text.strip(WSP)
    lt = text.find("<")
    gt = text.find(">", lt)
    if lt >= 0 and gt >= 0 and '"' not in text:
        # The display name and <URI> before any parameter, from a cache keyed
        # without the tag that makes every From and To text new.
        head = _bracketed(text[: gt + 1])
        if head is not None:
            return NameAddr(head[0], head[1], parse_params(text, gt + 1))
    return _parse_any_address(text)


@lru_cache(maxsize=1024)
def _bracketed(text: str) -> tuple[Uri, str | None] | None:
    """The URI and display name of ``[tokens] <URI>`` with nothing after the
    ``>``, or None when it does not parse (the caller then says why).
    """
    try:
        address = _parse_any_address(text)
    except MalformedValue:
        return None
    return address.uri, address.display_name


def _parse_any_address(text: str) -> NameAddr:
    if text.startswith('"'):
        quoted = QUOTED_RE.match(text)
        if quoted is None:
            raise MalformedValue("Bad quoted display name", detail=text[:80])
        lt = skip_ws(text, quoted.end())
        if not text.startswith("<", lt):
            raise MalformedValue("Display name without <URI>", detail=text[:80])
        return _name_addr(text, lt, unquote(quoted.group()))
    lt = text.find("<")
    if lt >= 0:
        words = _WORDS_RE.split(text[:lt].strip(WSP))
        if words != [""] and not all(is_token(word) for word in words):
            raise MalformedValue("Display name is neither tokens nor quoted", detail=text[:80])
        return _name_addr(text, lt, " ".join(words) or None)
    semi = text.find(";")
    uri_text = (text if semi < 0 else text[:semi]).rstrip(WSP)
    if not uri_text or any(c in uri_text for c in ",? \t"):
        raise MalformedValue("URI needs <> around it", detail=text[:80])
    return NameAddr(parse_uri(uri_text), None, parse_params(text, len(uri_text)))


_parse_address_cached = lru_cache(maxsize=2048)(_parse_address)


def _name_addr(text: str, lt: int, display_name: str | None) -> NameAddr:
    gt = text.find(">", lt)
    uri_text = text[lt + 1 : gt]
    if gt < 0 or any(c in uri_text for c in " \t<"):
        # LAQUOT addr-spec RAQUOT has no room for spaces (RFC 4475 §3.1.2.14).
        raise MalformedValue("Bad <URI>", detail=text[:80])
    return NameAddr(parse_uri(uri_text), display_name, parse_params(text, gt + 1))


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: where to send the response (RFC 3261 §18.2.2, §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = Params()
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{self.params}"

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as the sender wrote it."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def branch(self) -> str | None:
        """The transaction id (RFC 3261 §8.1.1.7)."""
        return self.params.get("branch")

    @property
    def has_rfc3261_branch(self) -> bool:
        """A branch with the magic cookie and an id after it (RFC 4475 §3.2.1)."""
        branch = self.branch
        return branch is not None and branch.startswith(MAGIC_COOKIE) and branch != MAGIC_COOKIE

    @property
    def received(self) -> str | None:
        """The source address the previous hop saw (RFC 3261 §18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The source port filled in for a client that asked with a bare
        ``rport`` (RFC 3581 §4); ``"rport" in via.params`` tells if it asked.
        """
        value = self.params.get("rport")
        return None if value is None else parse_int(value, 65535, "Via rport")

    @property
    def maddr(self) -> str | None:
        """Where the response goes instead of sent-by (RFC 3261 §18.2.2)."""
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        """Multicast TTL (RFC 3261 §20.42)."""
        value = self.params.get("ttl")
        return None if value is None else parse_int(value, 255, "Via ttl")

    def with_received(self, host: str, port: int) -> Via:
        """Stamp the packet's source: ``received`` when sent-by differs
        (RFC 3261 §18.2.1), and both whenever the client asked with ``rport``
        (RFC 3581 §4). ``host`` is a bare IPv4 or IPv6 address.
        """
        params = self.params
        if "rport" in params:
            params = params.set("received", host).set("rport", str(port))
        elif self.host.strip("[]").lower() != host.lower():
            params = params.set("received", host)
        else:
            return self
        return Via(self.transport, self.host, self.port, params, self.protocol)


def parse_via(text: str) -> Via:
    """One ``via-parm`` (RFC 3261 §25.1); LWS may surround "/" and ":"
    (RFC 4475 §3.1.1.1), the transport may be any token (RFC 4475 §3.1.1.10).
    Cached like :func:`parse_address`: a request, its responses and its ACK
    carry the same Via.
    """
    if len(text) <= CACHED_LENGTH:
        return _parse_via_cached(text)
    return _parse_via(text)


def _parse_via(text: str) -> Via:
    # sent-protocol and sent-by end at the first ";" past any "]" of an IPv6
    # reference: no match below reaches past it, so they parse from a cache,
    # keyed without the branch that makes every Via text new.
    cut = text.find(";", text.find("]") + 1)
    sent = _sent_by(text if cut < 0 else text[:cut])
    if sent is None:
        raise MalformedValue("Bad Via", detail=text[:80])
    protocol, transport, host, port, pos = sent
    via = Via(transport, host, port, parse_params(text, pos), protocol)
    _check_via_params(via)
    return via


@lru_cache(maxsize=1024)
def _sent_by(text: str) -> tuple[str, str, str, int | None, int] | None:
    """Protocol, transport, host, port and where parameters start, or None
    when there is no sent-protocol and host.
    """
    protocol = _SENT_PROTOCOL_RE.match(text)
    host = protocol and _HOST_RE.match(text, protocol.end())
    if not protocol or not host:
        return None
    pos = host.end()
    port = None
    if digits := _PORT_RE.match(text, pos):
        port = parse_int(digits.group(1), 65535, "Via port")
        pos = digits.end()
    name, version, transport = protocol.groups()
    return f"{name}/{version}", transport, parse_host(host.group()), port, pos


_parse_via_cached = lru_cache(maxsize=2048)(_parse_via)


def _check_via_params(via: Via) -> None:
    # The first value of each name, as Params.get finds it, in one pass.
    first: dict[str, str | None] = {}
    for name, value in via.params:
        first.setdefault(name.lower(), value)
    if "branch" in first and not is_token(first["branch"] or ""):
        raise MalformedValue("Bad Via branch", detail=str(first["branch"])[:80])
    if (maddr := first.get("maddr")) is not None:
        parse_host(maddr)
    if (received := first.get("received")) is not None:
        try:
            ipaddress.ip_address(received.strip("[]"))
        except ValueError:
            raise MalformedValue("Bad Via received", detail=received[:80]) from None
    for name, maximum in (("rport", 65535), ("ttl", 255)):
        if (value := first.get(name)) is not None:
            parse_int(value, maximum, f"Via {name}")


@dataclass(frozen=True, slots=True)
class CSeq:
    """Sequence number and method of a request (RFC 3261 §20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """``1*DIGIT LWS Method``, the number a 32-bit unsigned (RFC 4475 §3.1.2.4).
    Cached: "1 INVITE", "2 REGISTER" and the like recur in call after call.
    """
    if len(text) <= CACHED_LENGTH:
        return _parse_cseq_cached(text)
    return _parse_cseq(text)


def _parse_cseq(text: str) -> CSeq:
    match = _CSEQ_RE.fullmatch(text)
    if match is None:
        raise MalformedValue("Bad CSeq", detail=text[:80])
    return CSeq(parse_int(match.group(1), MAX_UINT32, "CSeq"), match.group(2))


_parse_cseq_cached = lru_cache(maxsize=1024)(_parse_cseq)


@dataclass(frozen=True, slots=True)
class Auth:
    """Credentials or a challenge: a scheme and auth-params (RFC 3261 §20.7,
    §20.27, §20.28, §20.44; RFC 8760 for Digest).

    Values are kept as sent, quotes included, so a proxy forwards them as
    they were; :meth:`param` gives them unquoted.
    """

    scheme: str
    params: Params = Params()
    _unquoted: dict[str, str | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __str__(self) -> str:
        return f"{self.scheme} " + ", ".join(f"{n}={v}" for n, v in self.params)

    def param(self, name: str) -> str | None:
        """The value of ``name``, unquoted; None when absent."""
        values = self._unquoted
        if values is None:
            # A verifier reads each of a dozen parameters once or twice.
            values = {}
            for key, value in self.params:
                values.setdefault(key.lower(), None if value is None else unquote(value))
            object.__setattr__(self, "_unquoted", values)
        return values.get(name.lower())


def parse_auth(text: str) -> Auth:
    """``auth-scheme LWS auth-param *(COMMA auth-param)`` (RFC 3261 §25.1)."""
    scheme = TOKEN_RE.match(text.strip(WSP))
    rest = text.strip(WSP)[scheme.end() :] if scheme else ""
    if scheme is None or not rest.startswith((" ", "\t")):
        raise MalformedValue("Bad credentials or challenge", detail=text[:80])
    params: list[tuple[str, str | None]]
    if _AUTH_PARAMS_RE.fullmatch(rest):
        # The common well-formed list, checked whole in one match; its
        # elements are then where the per-element path would find them.
        params = [(p.group(1), p.group(2)) for p in _AUTH_PARAM_RE.finditer(rest)]
    else:
        params = [_auth_param(element) for element in split_commas(rest)]
    return Auth(scheme.group(), Params(tuple(params)))


def _auth_param(element: str) -> tuple[str, str | None]:
    param = _AUTH_PARAM_RE.fullmatch(element)
    if param is None:
        raise MalformedValue("Bad auth-param", detail=element[:80])
    return param.group(1), param.group(2)


def parse_call_id(text: str) -> str:
    """``word ["@" word]`` (RFC 3261 §25.1), returned as is."""
    if _CALL_ID_RE.fullmatch(text) is None:
        raise MalformedValue("Bad Call-ID", detail=text[:80])
    return text


def parse_date(text: str) -> datetime:
    """An RFC 1123 date in GMT, the only zone SIP allows (RFC 3261 §20.17;
    RFC 4475 §3.1.2.12).
    """
    match = _DATE_RE.fullmatch(text)
    if match is None:
        raise MalformedValue("Bad Date", detail=text[:80])
    day, month, year, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year),
            _MONTHS.index(month) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=UTC,
        )
    except ValueError:
        raise MalformedValue("Bad Date", detail=text) from None
