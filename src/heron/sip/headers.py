"""Header fields: names, compact forms and the ordered field list (RFC 3261 §7.3).

:class:`Headers` keeps every field as the peer sent it (name spelling, raw
unfolded value, order), so a proxy forwards what it does not understand
unchanged (RFC 3261 §16.6; RFC 4475 §3.1.1.1). Typed accessors parse on
demand the fields a proxy or registrar acts on, once per field list: a
message is immutable, so each parsed value is kept, and a list derived with
one field changed keeps what was parsed of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, TypeVar

from heron.sip.errors import MalformedValue, SipLocalError
from heron.sip.fields import (
    MAX_UINT32,
    Auth,
    CSeq,
    NameAddr,
    Via,
    parse_address,
    parse_auth,
    parse_call_id,
    parse_cseq,
    parse_via,
)
from heron.sip.grammar import is_token, parse_int, split_commas

__all__ = ["Header", "HeaderName", "Headers", "canonical_name", "checked_header"]

_T = TypeVar("_T")


class HeaderName(StrEnum):
    """Canonical spellings of the fields heron reads or writes."""

    ACCEPT = "Accept"  # RFC 3261 §20.1
    ALLOW = "Allow"  # RFC 3261 §20.5
    AUTHORIZATION = "Authorization"  # RFC 3261 §20.7
    CALL_ID = "Call-ID"  # RFC 3261 §20.8
    CONTACT = "Contact"  # RFC 3261 §20.10
    CONTENT_LENGTH = "Content-Length"  # RFC 3261 §20.14
    CONTENT_TYPE = "Content-Type"  # RFC 3261 §20.15
    CSEQ = "CSeq"  # RFC 3261 §20.16
    DATE = "Date"  # RFC 3261 §20.17
    EXPIRES = "Expires"  # RFC 3261 §20.19
    FROM = "From"  # RFC 3261 §20.20
    MAX_FORWARDS = "Max-Forwards"  # RFC 3261 §20.22
    MIN_EXPIRES = "Min-Expires"  # RFC 3261 §20.23
    PATH = "Path"  # RFC 3327 §4
    PROXY_AUTHENTICATE = "Proxy-Authenticate"  # RFC 3261 §20.27
    PROXY_AUTHORIZATION = "Proxy-Authorization"  # RFC 3261 §20.28
    PROXY_REQUIRE = "Proxy-Require"  # RFC 3261 §20.29
    RECORD_ROUTE = "Record-Route"  # RFC 3261 §20.30
    REQUIRE = "Require"  # RFC 3261 §20.32
    ROUTE = "Route"  # RFC 3261 §20.34
    SERVER = "Server"  # RFC 3261 §20.35
    SUPPORTED = "Supported"  # RFC 3261 §20.37
    TIMESTAMP = "Timestamp"  # RFC 3261 §20.38
    TO = "To"  # RFC 3261 §20.39
    UNSUPPORTED = "Unsupported"  # RFC 3261 §20.40
    USER_AGENT = "User-Agent"  # RFC 3261 §20.41
    VIA = "Via"  # RFC 3261 §20.42
    WARNING = "Warning"  # RFC 3261 §20.43
    WWW_AUTHENTICATE = "WWW-Authenticate"  # RFC 3261 §20.44


# Compact forms: RFC 3261 §7.3.3 and the IANA "Header Fields" registry.
_COMPACT = {
    "a": "accept-contact",  # RFC 3841
    "b": "referred-by",  # RFC 3892
    "c": "content-type",  # RFC 3261
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",  # RFC 3261
    "f": "from",  # RFC 3261
    "i": "call-id",  # RFC 3261
    "j": "reject-contact",  # RFC 3841
    "k": "supported",  # RFC 3261
    "l": "content-length",  # RFC 3261
    "m": "contact",  # RFC 3261
    "n": "identity-info",  # RFC 4474
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "s": "subject",  # RFC 3261
    "t": "to",  # RFC 3261
    "u": "allow-events",  # RFC 6665
    "v": "via",  # RFC 3261
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
}


@lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """The lower-case long form of a field name: ``"v"`` and ``"VIA"`` give ``"via"``.

    Cached: a few dozen names recur in every message; a flood of made-up
    names only evicts them.
    """
    lowered = name.lower()
    return _COMPACT.get(lowered, lowered)


class Header:
    """One field line: the name as spelled, the unfolded value and ``key``, the
    canonical name it is looked up by.

    A plain class with ``Final`` attributes rather than a frozen dataclass: a
    parser makes a dozen per message, and a frozen dataclass's ``__init__``
    costs three times as much. ``key`` derives from ``name``; a parser that
    has already looked it up passes it.
    """

    __slots__ = ("key", "name", "value")

    def __init__(self, name: str, value: str, key: str | None = None) -> None:
        self.name: Final = name
        self.value: Final = value
        self.key: Final = canonical_name(name) if key is None else key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Header):
            return NotImplemented
        return self.name == other.name and self.value == other.value

    def __hash__(self) -> int:
        return hash((self.name, self.value))

    def __repr__(self) -> str:
        return f"Header(name={self.name!r}, value={self.value!r})"


@dataclass(frozen=True, slots=True)
class Headers:
    """The ordered, immutable field list of a message.

    Lookups take any spelling or compact form of a name. Raw access returns
    values as sent; the typed properties raise :class:`MalformedValue` for a
    value that breaks its grammar or a required field that is absent.
    """

    entries: tuple[Header, ...] = ()
    _index: dict[str, tuple[str, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """Values by canonical name, built at the first lookup."""
    _parsed: dict[tuple[str, str], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Typed values by (canonical name, accessor): parsed once, the list being immutable."""

    @classmethod
    def of(cls, fields: Iterable[tuple[str, str]]) -> Headers:
        """Build from ``(name, value)`` pairs, refusing what cannot be sent."""
        return cls(tuple(checked_header(name, value) for name, value in fields))

    def __iter__(self) -> Iterator[Header]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return canonical_name(name) in self._values()

    def encode(self) -> bytes:
        """The field lines, each ending in CRLF; bytes that came in as
        surrogate escapes go out as they came.
        """
        text = "".join([f"{h.name}: {h.value}\r\n" for h in self.entries])
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise SipLocalError("Field value is not text", detail=ascii(text[:80])) from None

    def by_key(self) -> Mapping[str, tuple[str, ...]]:
        """The values of every field present, by canonical name (:func:`canonical_name`):
        one lookup for a caller that checks many fields, as the parser does.
        """
        return self._values()

    def _values(self) -> dict[str, tuple[str, ...]]:
        index = self._index
        if index is None:
            grouped: dict[str, list[str]] = {}
            for h in self.entries:
                values = grouped.get(h.key)
                if values is None:
                    grouped[h.key] = [h.value]
                else:
                    values.append(h.value)
            index = {key: tuple(values) for key, values in grouped.items()}
            object.__setattr__(self, "_index", index)
        return index

    def _memo(self, key: str, what: str, parse: Callable[[], _T]) -> _T:
        """``parse()`` once per list; an error is raised again at every call."""
        parsed = self._parsed
        slot = (key, what)
        if slot in parsed:
            value: _T = parsed[slot]
            return value
        value = parse()
        parsed[slot] = value
        return value

    def _derived(self, entries: tuple[Header, ...], changed: str) -> Headers:
        """A new list in which only ``changed`` fields differ: it keeps the rest
        parsed, and the index of the rest (a proxy edits a request several times).
        """
        headers = Headers(entries)
        kept = {slot: value for slot, value in self._parsed.items() if slot[0] != changed}
        if kept:
            object.__setattr__(headers, "_parsed", kept)
        if self._index is not None:
            index = self._index.copy()
            values = tuple([h.value for h in entries if h.key == changed])
            if values:
                index[changed] = values
            else:
                index.pop(changed, None)
            object.__setattr__(headers, "_index", index)
        return headers

    # Raw access -------------------------------------------------------------

    def get(self, name: str) -> str | None:
        """The value of the first ``name`` field, or None."""
        index = self._values() if self._index is None else self._index
        key = _KEYS.get(name)
        values = index.get(canonical_name(name) if key is None else key)
        return values[0] if values else None

    def get_all(self, name: str) -> tuple[str, ...]:
        """The value of every ``name`` field line, in order."""
        index = self._values() if self._index is None else self._index
        key = _KEYS.get(name)
        return index.get(canonical_name(name) if key is None else key, ())

    def split(self, name: str) -> tuple[str, ...]:
        """Every comma-separated element of the ``name`` lines (RFC 3261 §7.3.1);
        an empty line has none (``Accept:``, ``Supported:``, RFC 3261 §20.1, §20.37).
        """
        return tuple(e for value in self.get_all(name) if value for e in split_commas(value))

    def add(self, name: str, value: str) -> Headers:
        """These fields with ``name: value`` appended."""
        header = checked_header(name, value)
        return self._derived((*self.entries, header), header.key)

    def prepend(self, name: str, value: str) -> Headers:
        """These fields with ``name: value`` above the first ``name`` field, or on
        top: where a proxy puts its Via and Record-Route (RFC 3261 §16.6).
        """
        key = canonical_name(name)
        at = next((i for i, h in enumerate(self.entries) if h.key == key), 0)
        entries = (*self.entries[:at], checked_header(name, value), *self.entries[at:])
        return self._derived(entries, key)

    def remove(self, name: str) -> Headers:
        """These fields without any ``name`` line."""
        key = canonical_name(name)
        return self._derived(tuple(h for h in self.entries if h.key != key), key)

    def replace(self, name: str, value: str) -> Headers:
        """These fields with one ``name: value`` where the first ``name`` was."""
        key = canonical_name(name)
        at = next((i for i, h in enumerate(self.entries) if h.key == key), len(self.entries))
        rest = tuple(h for h in self.entries[at:] if h.key != key)
        return self._derived((*self.entries[:at], checked_header(name, value), *rest), key)

    def replace_first(self, name: str, value: str) -> Headers:
        """These fields with the first element of ``name`` replaced by ``value``, the
        others on its line kept (a server stamping the topmost Via, RFC 3261 §18.2.1).
        """
        key = canonical_name(name)
        at = next((i for i, h in enumerate(self.entries) if h.key == key), None)
        if at is None:
            raise SipLocalError(f"No {name} to replace")
        first = self.entries[at]
        elements = [value, *split_commas(first.value)[1:]]
        line = checked_header(first.name, ", ".join(elements))
        return self._derived((*self.entries[:at], line, *self.entries[at + 1 :]), key)

    def pop_first(self, name: str) -> Headers:
        """These fields without the first element of ``name``, which may share
        its line with others ("the topmost Via value", RFC 3261 §16.7 step 3).
        """
        key = canonical_name(name)
        at = next((i for i, h in enumerate(self.entries) if h.key == key), None)
        if at is None:
            raise SipLocalError(f"No {name} to remove")
        first = self.entries[at]
        elements = split_commas(first.value)[1:]
        kept = (Header(first.name, ", ".join(elements)),) if elements else ()
        return self._derived((*self.entries[:at], *kept, *self.entries[at + 1 :]), key)

    # Typed access -------------------------------------------------------------

    @property
    def vias(self) -> tuple[Via, ...]:
        """Every Via value, topmost first (RFC 3261 §20.42)."""
        return self._memo("via", "all", lambda: tuple(map(parse_via, self._elements("via"))))

    @property
    def top_via(self) -> Via:
        """The topmost Via value, which says where the response goes."""
        every = self._parsed.get(("via", "all"))
        if every:
            return every[0]  # type: ignore[no-any-return]
        return self._memo("via", "top", lambda: parse_via(self._first_element("via")))

    def with_top_via(self, via: Via) -> Headers:
        """These fields with ``via`` as the topmost Via value (a server stamping it,
        RFC 3261 §18.2.1), what was parsed of the Vias kept."""
        headers = self.replace_first(HeaderName.VIA, str(via))
        parsed = headers._parsed
        parsed[("via", "top")] = via
        if (every := self._parsed.get(("via", "all"))) is not None:
            parsed[("via", "all")] = (via, *every[1:])
        return headers

    @property
    def from_(self) -> NameAddr:
        """The From address (RFC 3261 §20.20)."""
        return self._memo("from", "", lambda: parse_address(self._required(HeaderName.FROM)))

    @property
    def to(self) -> NameAddr:
        """The To address (RFC 3261 §20.39)."""
        return self._memo("to", "", lambda: parse_address(self._required(HeaderName.TO)))

    @property
    def call_id(self) -> str:
        """The Call-ID, compared byte for byte (RFC 3261 §20.8)."""
        return self._memo("call-id", "", lambda: parse_call_id(self._required(HeaderName.CALL_ID)))

    @property
    def cseq(self) -> CSeq:
        """The CSeq (RFC 3261 §20.16)."""
        return self._memo("cseq", "", lambda: parse_cseq(self._required(HeaderName.CSEQ)))

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, 0 to 255 (RFC 3261 §20.22); None when absent (RFC 2543)."""
        value = self.get(HeaderName.MAX_FORWARDS)
        if value is None:
            return None
        return self._memo("max-forwards", "", lambda: parse_int(value, 255, "Max-Forwards"))

    @property
    def content_length(self) -> int | None:
        """The declared body length (RFC 3261 §20.14)."""
        value = self.get(HeaderName.CONTENT_LENGTH)
        return None if value is None else parse_int(value, MAX_UINT32, "Content-Length")

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, parameters dropped (RFC 3261 §20.15)."""
        value = self.get(HeaderName.CONTENT_TYPE)
        return None if value is None else value.split(";")[0].strip().lower()

    @property
    def expires(self) -> int | None:
        """The Expires delta in seconds (RFC 3261 §20.19)."""
        value = self.get(HeaderName.EXPIRES)
        return None if value is None else parse_int(value, MAX_UINT32, "Expires")

    @property
    def contact_star(self) -> bool:
        """Whether Contact is the ``*`` that removes all bindings (RFC 3261 §10.2.2)."""
        return self.get_all(HeaderName.CONTACT) == ("*",)

    @property
    def contacts(self) -> tuple[NameAddr, ...]:
        """Every Contact value; empty for ``Contact: *`` (RFC 3261 §20.10)."""
        return self._memo("contact", "", self._parse_contacts)

    def _parse_contacts(self) -> tuple[NameAddr, ...]:
        if self.contact_star:
            return ()
        elements = self._elements(HeaderName.CONTACT)
        if "*" in elements:
            raise MalformedValue("Contact * among other values")
        return tuple(map(parse_address, elements))

    @property
    def routes(self) -> tuple[NameAddr, ...]:
        """The Route set, next hop first (RFC 3261 §20.34)."""
        return self._memo("route", "", lambda: tuple(map(parse_address, self._elements("route"))))

    @property
    def record_routes(self) -> tuple[NameAddr, ...]:
        """The Record-Route set, most recent proxy first (RFC 3261 §20.30)."""
        return self._memo(
            "record-route",
            "",
            lambda: tuple(map(parse_address, self._elements("record-route"))),
        )

    @property
    def require(self) -> tuple[str, ...]:
        """Option tags the UAS must support (RFC 3261 §20.32)."""
        return self._option_tags(HeaderName.REQUIRE)

    @property
    def proxy_require(self) -> tuple[str, ...]:
        """Option tags every proxy must support (RFC 3261 §16.3 step 4, §20.29)."""
        return self._option_tags(HeaderName.PROXY_REQUIRE)

    @property
    def authorizations(self) -> tuple[Auth, ...]:
        """Authorization credentials, one per line (RFC 3261 §20.7)."""
        return self._memo(
            "authorization", "", lambda: tuple(map(parse_auth, self.get_all("authorization")))
        )

    @property
    def proxy_authorizations(self) -> tuple[Auth, ...]:
        """Proxy-Authorization credentials (RFC 3261 §20.28)."""
        return self._memo(
            "proxy-authorization",
            "",
            lambda: tuple(map(parse_auth, self.get_all("proxy-authorization"))),
        )

    @property
    def www_authenticates(self) -> tuple[Auth, ...]:
        """WWW-Authenticate challenges (RFC 3261 §20.44)."""
        return tuple(parse_auth(v) for v in self.get_all(HeaderName.WWW_AUTHENTICATE))

    @property
    def proxy_authenticates(self) -> tuple[Auth, ...]:
        """Proxy-Authenticate challenges (RFC 3261 §20.27)."""
        return tuple(parse_auth(v) for v in self.get_all(HeaderName.PROXY_AUTHENTICATE))

    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise MalformedValue(f"Missing {name}")
        return value

    def _first_element(self, name: str) -> str:
        return split_commas(self._required(name))[0]

    def _elements(self, name: str) -> tuple[str, ...]:
        """Like :meth:`split`, but an empty line is an error: these lists are
        never empty (RFC 3261 §25.1 Via, Contact, Route, Record-Route).
        """
        return tuple(e for value in self.get_all(name) for e in split_commas(value))

    def _option_tags(self, name: str) -> tuple[str, ...]:
        tags = self.split(name)
        if not all(is_token(tag) for tag in tags):
            raise MalformedValue(f"Bad {name}", detail=", ".join(tags)[:80])
        return tags


def checked_header(name: str, value: str) -> Header:
    """A field heron is about to send: a token name and a value without CR or LF,
    so nothing a caller passes can inject a field (RFC 3261 §7.3).
    """
    if not value.isascii():
        try:
            value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise SipLocalError("Field value is not text", detail=repr(value[:80])) from None
    if (name not in _NAMES and not is_token(name)) or "\r" in value or "\n" in value:
        raise SipLocalError("Field cannot be sent", detail=f"{name!r}: {value[:80]!r}")
    return Header(name, value.strip(" \t"))


_KEYS = {
    spelling: canonical_name(spelling)
    for name in HeaderName
    for spelling in (name, canonical_name(name.value))
}
"""The keys of the names heron reads, spelled either way: a dict lookup, where
:func:`canonical_name`'s cache is slower, the more so for a :class:`HeaderName`."""

_NAMES = frozenset(HeaderName)
"""Tokens already: most fields heron writes have these names."""
