"""Lexical rules shared by the SIP field parsers (RFC 3261 §25.1).

Everything here works on already unfolded text (RFC 3261 §7.3.1) and raises
only :class:`MalformedValue`. The regular expressions have no nested
quantifiers that can backtrack (the nested ones are possessive), so hostile
input costs linear time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from heron.sip.errors import MalformedValue, SipLocalError

__all__ = [
    "Params",
    "is_token",
    "parse_host",
    "parse_int",
    "parse_params",
    "quote",
    "skip_ws",
    "split_commas",
    "unquote",
]

WSP = " \t"
_TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_RE = re.compile(f"[{_TOKEN_CLASS}]+")
# gen-value = token / host / quoted-string (RFC 3261 §25.1); ":" admits the
# unbracketed IPv6 "received" value robust parsers must take (RFC 5118 §4.5).
_GEN_VALUE_RE = re.compile(f"[{_TOKEN_CLASS}\\[\\]:]+")
# quoted-pair may not carry CR or LF; qdtext has no other controls but HTAB.
# Possessive (Python 3.11): a run of qdtext in one step, and never given back,
# which could not end the string anywhere else anyway.
QUOTED_RE = re.compile(r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]++|\\[^\r\n])*+"')
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_NEEDS_PAIR_RE = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f"\\]')
# Possessive: each alternative starts with its own character, so giving text
# back could never make another match; linear even on hostile input.
_LIST_ELEMENT_RE = re.compile(r'(?:"(?:[^"\\]++|\\.)*+"|<[^>]*+>|[^,"<]++)*+', re.DOTALL)
_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?")


def is_token(text: str) -> bool:
    """Whether ``text`` is a non-empty RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None


def skip_ws(text: str, pos: int) -> int:
    """The first index at or after ``pos`` that is not SP or HTAB."""
    while pos < len(text) and text[pos] in WSP:
        pos += 1
    return pos


def parse_int(text: str, maximum: int, what: str) -> int:
    """A decimal ``1*DIGIT`` no larger than ``maximum``.

    Leading zeros are legal (RFC 4475 §3.1.1.1) but the digits are capped
    before ``int()`` so a googol never becomes a bignum (RFC 4475 §3.1.2.4).
    """
    if not (text.isascii() and text.isdigit()):
        raise MalformedValue(f"Bad {what}", detail=repr(text[:40]))
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise MalformedValue(f"{what} out of range", detail=text[:40])
    return int(digits)


def unquote(raw: str) -> str:
    """The content of a quoted-string, quoted-pairs resolved; other text as is."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return _QUOTED_PAIR_RE.sub(r"\1", raw[1:-1])
    return raw


def quote(text: str) -> str:
    """``text`` as a quoted-string, controls as quoted-pairs; CR and LF cannot
    be quoted at all (RFC 3261 §25.1).
    """
    if "\r" in text or "\n" in text:
        raise SipLocalError("CR or LF in a quoted string", detail=repr(text))
    return '"' + _NEEDS_PAIR_RE.sub(r"\\\g<0>", text) + '"'


def split_commas(value: str) -> list[str]:
    """Split a header value into its comma-separated elements (RFC 3261 §7.3.1).

    Commas inside quoted strings and ``<...>`` do not split; elements are
    stripped and must not be empty (RFC 4475 §3.1.2.1).
    """
    if "," not in value and '"' not in value and "<" not in value:
        # One element and nothing to match up: most Via, Route and Supported lines.
        element = value.strip()
        if not element:
            raise MalformedValue("Empty list element", detail=value[:80])
        return [element]
    if len(value) <= _CACHED_LIST_LENGTH:
        return list(_split_cached(value))
    return _split(value)


_CACHED_LIST_LENGTH = 512
"""Contact, Route and Record-Route lines recur message after message of a dialog."""


@lru_cache(maxsize=1024)
def _split_cached(value: str) -> tuple[str, ...]:
    return tuple(_split(value))


def _split(value: str) -> list[str]:
    elements: list[str] = []
    pos, end = 0, len(value)
    while True:
        # Always matches, maybe nothing: it stops at a comma, the end, or the
        # '"' or '<' that opens what is never closed.
        element = _LIST_ELEMENT_RE.match(value, pos)
        assert element is not None
        elements.append(element.group().strip())
        pos = element.end()
        if pos == end:
            break
        if value[pos] != ",":
            raise MalformedValue("Unterminated quoted string or <", detail=value[:80])
        pos += 1
    if not all(elements):
        raise MalformedValue("Empty list element", detail=value[:80])
    return elements


@lru_cache(maxsize=1024)
def parse_host(text: str) -> str:
    """Validate ``host = hostname / IPv4address / IPv6reference`` and return it.

    Cached: a proxy sees the same few hosts in every message.
    """
    if text.startswith("[") and text.endswith("]") and "%" not in text:
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise MalformedValue("Bad IPv6 reference", detail=text[:80]) from None
        return text
    if _IPV4_RE.fullmatch(text):
        if all(int(octet) <= 255 for octet in text.split(".")):
            return text
        raise MalformedValue("Bad IPv4 address", detail=text)
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    # toplabel starts with ALPHA, so "1.2.3" is neither IPv4 nor a hostname.
    if all(_LABEL_RE.fullmatch(label) for label in labels) and labels[-1][0].isalpha():
        return text
    raise MalformedValue("Bad host", detail=text[:80])


@dataclass(frozen=True, slots=True)
class Params:
    """An ordered ``;name[=value]`` list with case-insensitive names.

    Header parameters keep their values as on the wire (a quoted-string keeps
    its quotes, see :func:`unquote`); URI parameters are stored unescaped.
    A parameter without ``=`` has the value ``None``.
    """

    items: tuple[tuple[str, str | None], ...] = ()

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lowered = name.lower()
        return any(n == name or n.lower() == lowered for n, _ in self.items)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __str__(self) -> str:
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.items)

    def get(self, name: str) -> str | None:
        """The first value of ``name``; ``None`` when absent or valueless."""
        lowered = name.lower()
        for n, v in self.items:
            if n == name or n.lower() == lowered:
                return v
        return None

    def set(self, name: str, value: str | None = None) -> Params:
        """These parameters with ``name`` replaced in place, or appended."""
        lowered = name.lower()
        if name not in self:
            return Params((*self.items, (name, value)))
        return Params(tuple((n, value) if n.lower() == lowered else (n, v) for n, v in self.items))

    def remove(self, name: str) -> Params:
        """These parameters without ``name``."""
        return Params(tuple((n, v) for n, v in self.items if n.lower() != name.lower()))


_PARAM_RE = re.compile(
    f"[ \t]*;[ \t]*({TOKEN_RE.pattern})"
    f"[ \t]*(?:=[ \t]*({QUOTED_RE.pattern}|{_GEN_VALUE_RE.pattern}))?"
)
"""One well-formed parameter, with the whitespace SEMI and EQUAL allow around them."""


def parse_params(text: str, pos: int = 0) -> Params:
    """``*( SEMI generic-param )`` from ``pos`` to the end of ``text``.

    SEMI and EQUAL allow whitespace on both sides (RFC 3261 §25.1), which is
    what RFC 4475 §3.1.1.1 spreads over folded lines. One regular expression
    match per parameter; a failed one is explained by :func:`_param_error`.
    """
    items: list[tuple[str, str | None]] = []
    end = len(text)
    while pos < end:
        match = _PARAM_RE.match(text, pos)
        if match is None:
            pos = skip_ws(text, pos)
            if pos == end:
                break
            _param_error(text, pos)
        pos = match.end()
        if text.startswith("=", pos):
            # The name matched but its value did not.
            pos = skip_ws(text, pos + 1)
            raise MalformedValue("Malformed parameter value", detail=text[pos : pos + 40])
        items.append((match.group(1), match.group(2)))
    return Params(tuple(items))


def _param_error(text: str, pos: int) -> NoReturn:
    """Why the parameter at ``pos`` (not whitespace) is malformed."""
    if text[pos] != ";":
        raise MalformedValue("Unexpected text before parameters", detail=text[pos : pos + 40])
    pos = skip_ws(text, pos + 1)
    raise MalformedValue("Empty or malformed parameter", detail=text[pos : pos + 40])
