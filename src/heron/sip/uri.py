"""SIP, SIPS and other URIs (RFC 3261 §19.1, §25.1).

A :class:`SipUri` holds its parts unescaped, which is what comparisons and
lookups need (RFC 3261 §19.1.4; RFC 4475 §3.1.1.3, §3.1.1.4). A parsed URI
still serializes to exactly the text it came from, so a proxy forwards what
it did not change byte for byte; a built or replaced one is escaped anew.
Any other scheme is an opaque :class:`AbsoluteUri` (RFC 4475 §3.3.2).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import lru_cache

from heron.sip.errors import MalformedValue, SipLocalError
from heron.sip.grammar import Params, parse_host, parse_int

__all__ = ["CACHED_LENGTH", "AbsoluteUri", "SipUri", "Uri", "parse_uri"]

_UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
_USER = _UNRESERVED + "&=+$,;?/"  # user-unreserved
_PASSWORD = _UNRESERVED + "&=+$,"
_PARAM = _UNRESERVED + "[]/:&+$"  # param-unreserved
_HNV = _UNRESERVED + "[]/?:+$"  # hnv-unreserved
_URIC = _UNRESERVED + ";/?:@&=+$,"  # reserved / unreserved


def _escaped(chars: str, empty: bool = False) -> re.Pattern[str]:
    """``*`` or ``1*`` of ``chars`` or ``escaped`` (RFC 3261 §25.1)."""
    return re.compile(f"(?:[{re.escape(chars)}]|%[0-9A-Fa-f]{{2}}){'*' if empty else '+'}")


_USER_RE = _escaped(_USER)
_PASSWORD_RE = _escaped(_PASSWORD, empty=True)
_PARAM_RE = _escaped(_PARAM)
_HNAME_RE = _escaped(_HNV)
_HVALUE_RE = _escaped(_HNV, empty=True)
_URIC_RE = _escaped(_URIC)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOST_END_RE = re.compile(r"[^A-Za-z0-9.\-]")
_PORT_RE = re.compile(r"[0-9]+")
_PCT_RE = re.compile(rb"%([0-9A-Fa-f]{2})")


def _unescape(text: str) -> str:
    """Resolve ``%HH`` escapes, once (RFC 3986 §2.4); bytes that are not UTF-8
    survive as surrogate escapes, so ``%00`` and ``%FF`` never shorten a name.
    """
    if "%" not in text:
        return text
    raw = _PCT_RE.sub(lambda m: bytes([int(m[1], 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def _escape(text: str, safe: str) -> str:
    """``%HH``-escape every character of ``text`` not in ``safe``."""
    return "".join(
        c if c in safe else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
        for c in text
    )


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI, parts unescaped (RFC 3261 §19.1.1).

    ``host`` keeps the brackets of an IPv6 reference. URI parameter names and
    values are unescaped; a flag parameter such as ``lr`` has the value None.
    """

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = Params()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Refuse what would serialize to a URI no one can parse, such as a
        # port written into the host or an empty user.
        try:
            parse_host(self.host)
        except MalformedValue:
            raise SipLocalError("Bad URI host", detail=repr(self.host[:80])) from None
        if self.scheme not in ("sip", "sips") or self.user == "":
            raise SipLocalError("Bad SIP URI", detail=f"{self.scheme!r} {self.user!r}")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise SipLocalError("Bad URI port", detail=str(self.port))

    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        text = f"{self.scheme}:"
        if self.user is not None:
            text += _escape(self.user, _USER)
            if self.password is not None:
                text += ":" + _escape(self.password, _PASSWORD)
            text += "@"
        text += self.host if self.port is None else f"{self.host}:{self.port}"
        for name, value in self.params:
            text += ";" + _escape(name, _PARAM)
            if value is not None:
                text += "=" + _escape(value, _PARAM)
        if self.headers:
            text += "?" + "&".join(
                f"{_escape(n, _HNV)}={_escape(v, _HNV)}" for n, v in self.headers
            )
        return text

    @property
    def lr(self) -> bool:
        """Loose routing (RFC 3261 §19.1.1, §16.12)."""
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        """The maddr parameter, which overrides the host (RFC 3261 §19.1.1)."""
        return self.params.get("maddr")

    @property
    def transport(self) -> str | None:
        """The transport parameter, lower-cased (RFC 3261 §19.1.1)."""
        value = self.params.get("transport")
        return None if value is None else value.lower()


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of any other scheme, kept opaque (RFC 3261 §25.1 absoluteURI)."""

    scheme: str
    body: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.body}"


Uri = SipUri | AbsoluteUri


CACHED_LENGTH = 256
"""Texts up to this long are remembered by the parsers that cache: the same
URIs, addresses and Vias come back in message after message of a dialog, and
the bound keeps what a flood of long values can pin to a few hundred KiB."""


def parse_uri(text: str) -> Uri:
    """Parse ``SIP-URI / SIPS-URI / absoluteURI`` (RFC 3261 §25.1).

    A URI is immutable, so the same text gives the same object from a cache.
    """
    if len(text) <= CACHED_LENGTH:
        return _parse_uri_cached(text)
    return _parse_uri(text)


def _parse_uri(text: str) -> Uri:
    scheme, colon, body = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise MalformedValue("Bad URI scheme", detail=text[:80])
    if scheme.lower() in ("sip", "sips"):
        uri = _parse_sip(scheme.lower(), body)
        object.__setattr__(uri, "_text", text)
        return uri
    if not _URIC_RE.fullmatch(body):
        raise MalformedValue("Bad URI", detail=text[:80])
    return AbsoluteUri(scheme, body)


_parse_uri_cached = lru_cache(maxsize=2048)(_parse_uri)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user = password = None
    # "@" is legal only as the end of userinfo; the user part may hold ";",
    # "?" and "/" (RFC 4475 §3.1.1.2, §3.1.1.9), so it ends the userinfo.
    userinfo, at, hostpart = rest.partition("@")
    if not at:
        hostpart = rest
    else:
        user_text, colon, password_text = userinfo.partition(":")
        if not _USER_RE.fullmatch(user_text) or not _PASSWORD_RE.fullmatch(password_text):
            raise MalformedValue("Bad URI user", detail=userinfo[:80])
        user = _unescape(user_text)
        password = _unescape(password_text) if colon else None
    if hostpart.startswith("["):
        end = hostpart.find("]") + 1
        if not end:
            raise MalformedValue("Bad IPv6 reference", detail=hostpart[:80])
    else:
        stop = _HOST_END_RE.search(hostpart)
        end = stop.start() if stop else len(hostpart)
    host = parse_host(hostpart[:end])
    port = None
    if hostpart.startswith(":", end):
        digits = _PORT_RE.match(hostpart, end + 1)
        if digits is None:
            raise MalformedValue("Bad URI port", detail=hostpart[:80])
        port = parse_int(digits.group(), 65535, "URI port")
        end = digits.end()
    param_text, question, header_text = hostpart[end:].partition("?")
    return SipUri(
        host,
        user,
        password,
        port,
        _parse_uri_params(param_text),
        _parse_uri_headers(header_text) if question else (),
        scheme,
    )


def _parse_uri_params(text: str) -> Params:
    if not text:
        return Params()
    if not text.startswith(";"):
        raise MalformedValue("Bad URI", detail=text[:80])
    items: list[tuple[str, str | None]] = []
    for piece in text[1:].split(";"):
        name, equals, value = piece.partition("=")
        if not _PARAM_RE.fullmatch(name) or (equals and not _PARAM_RE.fullmatch(value)):
            raise MalformedValue("Bad URI parameter", detail=piece[:80])
        items.append((_unescape(name), _unescape(value) if equals else None))
    return Params(tuple(items))


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers = []
    for piece in text.split("&"):
        name, equals, value = piece.partition("=")
        if not equals or not _HNAME_RE.fullmatch(name) or not _HVALUE_RE.fullmatch(value):
            raise MalformedValue("Bad URI header", detail=piece[:80])
        headers.append((_unescape(name), _unescape(value)))
    return tuple(headers)
