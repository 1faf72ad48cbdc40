"""A room's discussion history (XEP-0045 §7.2.15), in memory as in Prosody without MAM.

Bounded twice, by messages and by characters, so that a few messages of the largest
stanza size cannot hold what the count allows for many short ones. A newcomer may ask
for less (``maxstanzas``, ``maxchars``, ``seconds``, ``since``); what is left is
replayed with a XEP-0203 delay. Sans-IO: the time is an argument.
"""

from __future__ import annotations

from collections import deque
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, tostring

from heron.xmpp.features import Routed
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, qname

__all__ = ["History"]


@dataclass(frozen=True, slots=True)
class _Entry:
    message: Element  # from room/nick, no 'to'
    sender: JID  # room/nick
    at: float
    chars: int


def _stamp(at: float) -> str:
    """XEP-0082 DateTime in UTC, as XEP-0203 delay wants it."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _count(text: str | None) -> int | None:
    """A non-negative history limit (§7.2.15); nonsense is ignored, as Prosody does."""
    if text is None or not text.isdigit() or len(text) > 9:
        return None
    return int(text)


def _since(text: str | None) -> float | None:
    if text is None or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class History:
    """The last groupchat messages of the room ``room``, within ``messages`` and ``chars``."""

    __slots__ = ("_chars", "_entries", "_max_chars", "_room")

    def __init__(self, room: JID, messages: int, chars: int) -> None:
        self._room = room
        self._entries: deque[_Entry] = deque(maxlen=messages)
        self._chars = 0
        self._max_chars = chars

    def remember(self, message: Element, sender: JID, at: float) -> None:
        """Keep ``message`` from ``sender`` (no 'to' yet), dropping the oldest past either bound."""
        entries = self._entries
        if entries.maxlen == 0:
            return
        entry = _Entry(message, sender, at, len(tostring(message, encoding="unicode")))
        if len(entries) == entries.maxlen:
            self._chars -= entries.popleft().chars
        entries.append(entry)
        self._chars += entry.chars
        while entries and self._chars > self._max_chars:
            self._chars -= entries.popleft().chars

    def replay(self, to: JID, request: Element | None, now: float) -> list[Routed]:
        """The messages a newcomer asked for with its <history/> (all when it did not ask)."""
        entries = list(self._entries)
        if request is not None:
            since = _since(request.get("since"))
            if since is not None:
                entries = [entry for entry in entries if entry.at >= since]
            seconds = _count(request.get("seconds"))
            if seconds is not None:
                entries = [entry for entry in entries if entry.at >= now - seconds]
            maxstanzas = _count(request.get("maxstanzas"))
            if maxstanzas is not None:
                entries = entries[-maxstanzas:] if maxstanzas else []
            maxchars = _count(request.get("maxchars"))
            if maxchars is not None:
                kept: list[_Entry] = []
                total = 0
                for entry in reversed(entries):
                    total += entry.chars
                    if total > maxchars:
                        break
                    kept.append(entry)
                entries = kept[::-1]
        out = []
        for entry in entries:
            message = deepcopy(entry.message)
            message.set("to", str(to))
            delay = {"from": str(self._room), "stamp": _stamp(entry.at)}
            SubElement(message, qname(NS.DELAY, "delay"), delay)  # XEP-0203
            out.append(Routed(message, entry.sender, to))
        return out
