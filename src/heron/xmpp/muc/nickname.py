"""Room nicknames: the Nickname profile of PRECIS (RFC 8266, on RFC 8264's FreeformClass).

XEP-0045 §7.2 asks a service to treat nicknames this way, so that "Ｒoland",
"roland" and "Roland  " cannot sit in one room as three people who look alike.
Enforcement gives the nickname a room shows; comparison, which adds case
mapping, tells whether two nicknames are the same one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, ValuesView
from functools import lru_cache
from typing import Generic, TypeVar

from heron.xmpp.errors import StanzaCondition, StanzaError

__all__ = ["ByNickname", "nickname_key", "prepare_nickname"]

V = TypeVar("V")

_DISALLOWED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
"""FreeformClass (RFC 8264 §4.3) refuses controls, unassigned and private-use code points,
and default-ignorable ones (nearly all format characters, Cf: zero-width joiners and the
like, which would make two nicknames look identical)."""


def _collapse(text: str) -> str:
    return " ".join(part for part in text.split(" ") if part)


def prepare_nickname(text: str) -> str:
    """RFC 8266 §2.2 enforcement: every space becomes U+0020, leading and trailing spaces
    go, runs of spaces become one (additional mapping rule), then NFKC (normalization rule).

    Raises a not-acceptable :class:`StanzaError` (XEP-0045 §7.2.9) for a disallowed code
    point, and jid-malformed (§7.2.1) for a nickname left empty.
    """
    mapped = "".join(" " if unicodedata.category(char) == "Zs" else char for char in text)
    # NFKC can itself make spaces (U+00A8 is U+0020 U+0308): collapse after it too.
    prepared = _collapse(unicodedata.normalize("NFKC", _collapse(mapped)))
    if not prepared:
        raise StanzaError(StanzaCondition.JID_MALFORMED, "a nickname is required")
    for char in prepared:
        if unicodedata.category(char) in _DISALLOWED:
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE, f"nickname contains U+{ord(char):04X}"
            )
    return prepared


@lru_cache(maxsize=4096)
def nickname_key(text: str) -> str:
    """RFC 8266 §2.4 comparison: enforcement, then lower case (case mapping rule) and NFKC
    again; two nicknames are the same when their keys are. Never raises: a nickname that
    fails enforcement is its own key (no occupant can hold it)."""
    try:
        prepared = prepare_nickname(text)
    except StanzaError:
        return text
    return unicodedata.normalize("NFKC", prepared.lower())


class ByNickname(Generic[V]):
    """A room's occupants by nickname, where spellings that compare equal (RFC 8266 §2.4)
    are one key: "Roland" is taken once "roland" is in the room."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, V] = {}

    def __getitem__(self, nick: str) -> V:
        return self._items[nickname_key(nick)]

    def __setitem__(self, nick: str, value: V) -> None:
        self._items[nickname_key(nick)] = value

    def __delitem__(self, nick: str) -> None:
        del self._items[nickname_key(nick)]

    def __contains__(self, nick: object) -> bool:
        return isinstance(nick, str) and nickname_key(nick) in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def get(self, nick: str) -> V | None:
        return self._items.get(nickname_key(nick))

    def values(self) -> ValuesView[V]:
        return self._items.values()

    def clear(self) -> None:
        self._items.clear()
