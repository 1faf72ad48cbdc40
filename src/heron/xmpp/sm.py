"""Stream Management (XEP-0198 1.6.1), sans-IO: acks, the unacked queue and resumption.

Two pieces, as Prosody 0.12's mod_smacks has them:

- :class:`Acks` is one session's side of §4: ``h`` for what the client sent (the server
  reports it in ``<a/>`` and ``<resumed/>``), the stanzas sent to the client and not yet
  acknowledged (bounded in count and bytes: over the bound the stream ends with
  resource-constraint), and when to ask for an ack with ``<r/>``. Counters are mod 2^32
  (§4: "the value of 'h' ... MUST be reset to zero ... after 2^32-1").
- :class:`Hibernation` is the server's table of resumable sessions (§5): each is bound to
  its account and an unguessable id; a session whose connection dropped waits there
  (hibernates) until it is resumed or its deadline passes. It holds at most a number of
  hibernating sessions per account and in total: a newer one pushes the oldest out.

What happens to the stanzas a session never acknowledged, when it finally ends, is
:func:`fate`'s rule (Prosody's and RFC 6120 §10.5.3's): a message with a body goes to
offline storage unless another of the account's sessions already has it; other messages
and iq requests are answered with an error; the rest is dropped.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StreamCondition, StreamError
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, qname

__all__ = [
    "DEFAULT_HIBERNATED_PER_ACCOUNT",
    "DEFAULT_HIBERNATED_TOTAL",
    "DEFAULT_QUEUE",
    "MAX_QUEUE_BYTES",
    "MODULUS",
    "Acks",
    "Fate",
    "Hibernation",
    "SmLimits",
    "fate",
    "parse_h",
]

MODULUS = 1 << 32
"""§4: sequence numbers wrap at 2^32."""
DEFAULT_QUEUE = 500
"""Unacknowledged stanzas one session may have (Prosody's smacks_max_queue_size)."""
MAX_QUEUE_BYTES = 1 << 20
"""Bytes of unacknowledged stanzas one session may have, so that large stanzas cannot pile
up what the count allows: what heron lets a slow client have unwritten."""
DEFAULT_HIBERNATED_PER_ACCOUNT = 10
"""Prosody's smacks_max_hibernated_sessions."""
DEFAULT_HIBERNATED_TOTAL = 10_000

T = TypeVar("T")

_MESSAGE = qname(NS.CLIENT, "message")
_IQ = qname(NS.CLIENT, "iq")
_BODY = qname(NS.CLIENT, "body")
_CARBONS = (qname(NS.CARBONS, "sent"), qname(NS.CARBONS, "received"))


@dataclass(frozen=True, slots=True)
class SmLimits:
    """``stanzas`` and ``size`` bytes unacknowledged at most (``xmpp.sm_queue``); an ack
    is asked for after ``ack_every`` stanzas even while an earlier request is unanswered."""

    stanzas: int = DEFAULT_QUEUE
    size: int = MAX_QUEUE_BYTES
    ack_every: int = 5

    def __post_init__(self) -> None:
        if self.stanzas < 1 or self.size < 1 or self.ack_every < 1:
            raise ValueError("stream management holds at least one stanza")


def parse_h(text: str | None) -> int:
    """§4: 'h' is an unsigned 32-bit integer; anything else is a broken stream."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 10:
        raise StreamError(StreamCondition.INVALID_XML, "'h' must be an integer 0 to 2^32-1")
    value = int(text)
    if value >= MODULUS:
        raise StreamError(StreamCondition.INVALID_XML, "'h' must be an integer 0 to 2^32-1")
    return value


class Acks(Generic[T]):
    """One session's counters and unacked queue: a ``T`` per stanza sent (the stanza
    itself in the stream), oldest first, with its size in bytes."""

    def __init__(self, limits: SmLimits, *, start: int = 0) -> None:
        """``start`` is where both counters begin (0, as §4 says; tests start near 2^32)."""
        self.limits = limits
        self.inbound = start % MODULUS
        """§4 'h': stanzas handled from the client, mod 2^32."""
        self._acked = start % MODULUS  # the last 'h' the client reported, mod 2^32
        self._queue: deque[tuple[T, int]] = deque()
        self._size = 0
        self._since_request = 0
        self._awaiting = False

    @property
    def unacked(self) -> list[T]:
        return [item for item, _ in self._queue]

    @property
    def sent(self) -> int:
        """Stanzas sent, mod 2^32: what the client's 'h' counts towards."""
        return (self._acked + len(self._queue)) % MODULUS

    def handled(self) -> None:
        """The client sent a stanza (§4: the server counts every one it receives)."""
        self.inbound = (self.inbound + 1) % MODULUS

    def fits(self, size: int) -> bool:
        """Whether one more stanza of ``size`` bytes stays within the limits."""
        limits = self.limits
        return len(self._queue) < limits.stanzas and self._size + size <= limits.size

    def queue(self, item: T, size: int) -> None:
        """``item`` goes to the client. Over the limits it is kept all the same (so that it
        ends where the others do) and resource-constraint is raised: Prosody ends such a
        stream, since a client that never acks must not hold memory."""
        fits = self.fits(size)
        self._queue.append((item, size))
        self._size += size
        if not fits:
            raise StreamError(StreamCondition.RESOURCE_CONSTRAINT, "too many unacked stanzas")

    def request_due(self, written: int) -> bool:
        """Whether to send ``<r/>`` now that ``written`` stanzas went out: when none is
        unanswered, or ``ack_every`` went out since the last one."""
        if written <= 0:
            return False
        self._since_request += written
        if self._awaiting and self._since_request < self.limits.ack_every:
            return False
        self._awaiting = True
        self._since_request = 0
        return True

    def ack(self, h: int) -> list[T]:
        """§4 ``<a h=.../>`` (or the 'h' of ``<resume/>``): what it acknowledges, removed.

        Raises undefined-condition when ``h`` counts stanzas never sent (§4's
        handled-count-too-high)."""
        count = (h - self._acked) % MODULUS
        if count > len(self._queue):
            raise StreamError(
                StreamCondition.UNDEFINED_CONDITION,
                f"handled-count-too-high: h={h}, send-count={self.sent}",
            )
        self._awaiting = False
        self._since_request = 0
        self._acked = h
        done = []
        for _ in range(count):
            item, size = self._queue.popleft()
            self._size -= size
            done.append(item)
        return done

    def drain(self) -> list[T]:
        """Everything unacknowledged, taken out: the session ends."""
        items = self.unacked
        self._acked = self.sent
        self._queue.clear()
        self._size = 0
        return items


@dataclass(slots=True)
class _Entry(Generic[T]):
    account: JID
    item: T
    deadline: float | None = None  # set while hibernating


class Hibernation(Generic[T]):
    """The resumable sessions (a ``T`` each), by resumption id.

    An id is registered when a session enables resumption, and forgotten when it ends
    for good. :meth:`claim` answers a ``<resume/>``: only the account that enabled it may
    take a session back, so an id seen by someone else is worth nothing to them.
    """

    def __init__(
        self,
        timeout: float,
        *,
        per_account: int = DEFAULT_HIBERNATED_PER_ACCOUNT,
        total: int = DEFAULT_HIBERNATED_TOTAL,
    ) -> None:
        if timeout <= 0 or per_account < 1 or total < 1:
            raise ValueError("hibernation needs a positive timeout and room for a session")
        self.timeout = timeout
        self._per_account = per_account
        self._total = total
        self._entries: dict[str, _Entry[T]] = {}
        self._ended: OrderedDict[str, tuple[JID, int]] = OrderedDict()
        """Sessions ended for good, newest last: the account and the count of stanzas
        handled, for a late ``<resume/>`` to learn (§5 ``<failed h=.../>``)."""

    def __len__(self) -> int:
        return len(self._entries)

    def register(self, resume_id: str, account: JID, item: T) -> None:
        if resume_id in self._entries:
            raise ValueError("resumption ids are never reused")
        self._entries[resume_id] = _Entry(account.bare, item)

    def forget(self, resume_id: str) -> None:
        self._entries.pop(resume_id, None)

    def hibernating(self) -> list[T]:
        return [entry.item for entry in self._entries.values() if entry.deadline is not None]

    def is_hibernating(self, resume_id: str) -> bool:
        entry = self._entries.get(resume_id)
        return entry is not None and entry.deadline is not None

    def hibernate(self, resume_id: str, now: float) -> list[T]:
        """The session's connection dropped: it waits until ``now + timeout``. Returns the
        sessions pushed out to make room, oldest first (the caller ends them)."""
        entry = self._entries.get(resume_id)
        if entry is None:
            return []
        entry.deadline = now + self.timeout
        evicted: list[T] = []
        waiting = self._waiting()
        mine = [(key, e) for key, e in waiting if e.account == entry.account]
        for key, _ in mine[: max(0, len(mine) - self._per_account)]:
            evicted.append(self._entries.pop(key).item)
        waiting = self._waiting()
        for key, _ in waiting[: max(0, len(waiting) - self._total)]:
            evicted.append(self._entries.pop(key).item)
        return evicted

    def claim(self, resume_id: str, account: JID) -> T | None:
        """§5 ``<resume previd=.../>`` from ``account``: the session, awake again, or None
        (item-not-found) for an id that is unknown, expired or another account's."""
        entry = self._entries.get(resume_id)
        if entry is None or entry.account != account.bare:
            return None
        entry.deadline = None
        return entry.item

    def ended(self, resume_id: str, account: JID, handled: int) -> None:
        """The session ``resume_id`` ended having handled ``handled`` stanzas; kept for the
        last ``total`` sessions, as many as may hibernate."""
        self._ended[resume_id] = (account.bare, handled)
        while len(self._ended) > self._total:
            self._ended.popitem(last=False)

    def handled(self, resume_id: str, account: JID) -> int | None:
        """§5: the 'h' of ``account``'s session ``resume_id`` that ended, if still known;
        a ``<failed/>`` carries it so the client knows which of its stanzas arrived."""
        known = self._ended.get(resume_id)
        return known[1] if known is not None and known[0] == account.bare else None

    def next_deadline(self) -> float | None:
        deadlines = [e.deadline for e in self._entries.values() if e.deadline is not None]
        return min(deadlines, default=None)

    def expire(self, now: float) -> list[T]:
        """The sessions whose deadline passed, forgotten, oldest first."""
        expired = [key for key, e in self._waiting() if (e.deadline or 0.0) <= now]
        return [self._entries.pop(key).item for key in expired]

    def _waiting(self) -> list[tuple[str, _Entry[T]]]:
        """Hibernating entries, the oldest (earliest deadline) first."""
        waiting = [(key, e) for key, e in self._entries.items() if e.deadline is not None]
        waiting.sort(key=lambda pair: pair[1].deadline or 0.0)
        return waiting


class Fate(Enum):
    """What becomes of a stanza the client never acknowledged, once its session ends."""

    STORE = "offline storage"
    BOUNCE = "an error to the sender"
    DROP = "nothing"


def fate(stanza: Element, others_have_it: bool) -> Fate:
    """The rule for one unacked ``stanza``; ``others_have_it`` says whether another of the
    account's sessions got it or a carbon of it (XEP-0280), so that storing or bouncing it
    would tell it twice.

    A chat or normal message with a body is kept for the next login (XEP-0160), as if it
    had arrived while the account was offline. Other messages and iq requests are answered
    with an error (RFC 6120 §8.2.3: a request MUST be answered; the sender of a message
    learns it was not read). Presence, results, errors, headlines and carbons are dropped
    (RFC 6121 §8.5.3.2: presence to a resource that is gone is; carbons come from the
    account itself)."""
    if stanza.tag == _IQ:
        return Fate.BOUNCE if stanza.get("type") in ("get", "set") else Fate.DROP
    if stanza.tag != _MESSAGE or others_have_it:
        return Fate.DROP
    type_ = stanza.get("type", "normal")
    if type_ in ("error", "headline") or any(stanza.find(tag) is not None for tag in _CARBONS):
        return Fate.DROP
    if type_ in ("normal", "chat") and stanza.find(_BODY) is not None:
        return Fate.STORE
    return Fate.BOUNCE
