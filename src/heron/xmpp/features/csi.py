"""Client State Indication (XEP-0352 1.0.0): an idle phone is not woken for presence.

A client that says ``<inactive/>`` (§4.2) gets only what matters at once; the rest waits
in a bounded per-session queue until it says ``<active/>``, until something important
comes (it goes out after everything held, in order), or until the queue is full. What
matters is what Prosody 0.12's mod_csi_simple counts as important (:func:`important`),
so that clients tuned against Prosody see the same traffic: presence broadcasts and
message payloads without a body (chat states, receipts, markers) wait; messages with a
body or subject, invitations, errors, subscription requests and iqs do not.

The rules are sans-IO: :func:`important` judges one stanza, :func:`holds` says whether
an outgoing one waits within :class:`QueueLimits`, and :class:`ClientState` is one
session's state and queue. The stream (:mod:`heron.xmpp.stream`) advertises the feature
after authentication (§4.1), takes the nonzas in order with the stanzas around them
(§5.1) and sends through it; what is held when the stream ends goes with it.

Choices where Prosody and the brief differ: the ``to`` address plays no part (chat
states go to full JIDs too, and are exactly what should wait); a group chat message with
a body is important (Prosody leaves mention detection to other modules).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar
from xml.etree.ElementTree import Element

from heron.xmpp.stanza import NS, qname

__all__ = ["DEFAULT_QUEUE", "MAX_HELD_BYTES", "ClientState", "QueueLimits", "holds", "important"]

DEFAULT_QUEUE = 256
"""Stanzas held per inactive session, Prosody's ``csi_queue_size``."""
MAX_HELD_BYTES = 1 << 20
"""Bytes held per inactive session: what heron lets a slow client have unwritten."""

T = TypeVar("T")

_PRESENCE = qname(NS.CLIENT, "presence")
_MESSAGE = qname(NS.CLIENT, "message")
_BODY = qname(NS.CLIENT, "body")
_SUBJECT = qname(NS.CLIENT, "subject")
_SENT = qname(NS.CARBONS, "sent")
_RECEIVED_PATH = f"{qname(NS.CARBONS, 'received')}/{qname(NS.FORWARD, 'forwarded')}/{_MESSAGE}"
_INVITES = (qname(NS.CONFERENCE, "x"), f"{qname(NS.MUC_USER, 'x')}/{qname(NS.MUC_USER, 'invite')}")
_ENCRYPTED = qname(NS.EME, "encryption")
_UNIMPORTANT_PRESENCE = frozenset({None, "unavailable", "error"})


def important(stanza: Element) -> bool:
    """Whether ``stanza`` goes to an inactive client at once (mod_csi_simple's rules)."""
    if stanza.tag == _PRESENCE:
        # Availability comes and goes all day; a subscription request waits for an answer.
        return stanza.get("type") not in _UNIMPORTANT_PRESENCE
    if stanza.tag != _MESSAGE:
        return True  # iqs: someone waits for the answer
    type_ = stanza.get("type")
    if type_ == "headline":
        return False  # ephemeral by definition
    if type_ == "error" or stanza.find(_SENT) is not None:
        return True  # an error the user should see; what the user wrote elsewhere
    forwarded = stanza.find(_RECEIVED_PATH)
    message = stanza if forwarded is None else forwarded  # a carbon counts as its original
    if message.find(_BODY) is not None or message.find(_SUBJECT) is not None:
        return True  # a subject ends a group chat join
    if message.find(_ENCRYPTED) is not None:
        return True  # what it says cannot be known, so it may matter
    return any(message.find(path) is not None for path in _INVITES)


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """How much one inactive session may hold: ``stanzas`` (``xmpp.csi_queue``, Prosody's
    ``csi_queue_size``) and ``size`` bytes, as much as heron lets a slow client have
    unwritten, so that a contact's large presence cannot pile up megabytes per session."""

    stanzas: int = DEFAULT_QUEUE
    size: int = MAX_HELD_BYTES

    def __post_init__(self) -> None:
        if self.stanzas < 1 or self.size < 1:
            raise ValueError("a CSI queue holds at least one stanza")


def holds(
    active: bool, held: int, held_size: int, size: int, limits: QueueLimits, stanza: Element
) -> bool:
    """Whether ``stanza`` (``size`` bytes) waits behind the ``held`` stanzas (``held_size``
    bytes) a session holds: only while it is inactive, only an unimportant one, and only
    while it fits (otherwise the whole queue is sent with it, as Prosody does)."""
    fits = held < limits.stanzas and held_size + size <= limits.size
    return not active and fits and not important(stanza)


class ClientState(Generic[T]):
    """One session's CSI state and what it holds back, oldest first: a ``T`` for each
    stanza, what the stream will write for it (its bytes; the stanza itself in tests).

    Whatever :meth:`send` and :meth:`activate` return goes out in the order returned;
    together with :attr:`held` it is everything offered, in the order offered.
    """

    def __init__(self, limits: QueueLimits) -> None:
        self.limits = limits
        self.active = True  # §5: "The server MUST assume all clients to be in the 'active' state"
        self._held: deque[T] = deque()
        self._held_size = 0

    @property
    def held(self) -> list[T]:
        return list(self._held)

    def send(self, stanza: Element, item: T, size: int) -> list[T]:
        """What to send now that ``stanza`` (as ``item``, ``size`` bytes) is on its way:
        nothing, or everything held and then ``item``."""
        if holds(self.active, len(self._held), self._held_size, size, self.limits, stanza):
            self._held.append(item)
            self._held_size += size
            return []
        return self._flush([item])

    def activate(self) -> list[T]:
        """``<active/>``: everything held, to send before anything else (§5.1)."""
        self.active = True
        return self._flush([])

    def deactivate(self) -> None:
        """``<inactive/>``."""
        self.active = False

    def _flush(self, then: list[T]) -> list[T]:
        out = [*self._held, *then]
        self._held.clear()
        self._held_size = 0
        return out
