"""What the instant-messaging features share about local accounts.

The router owns the bound sessions; roster, presence and offline storage see
them as :class:`Resource` records through the small :class:`Hub` interface, so
that they never import the router (which builds them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element, ParseError, fromstring

from heron.xmpp.errors import StreamCondition
from heron.xmpp.features import StanzaRouter
from heron.xmpp.jid import JID
from heron.xmpp.xml import serialize

__all__ = ["Hub", "Resource", "Session", "from_text", "to_text"]

log = logging.getLogger(__name__)


class Session(Protocol):
    """A client stream after SASL, as the router sees it.

    ``jid`` is the authenticated account (bare before resource binding); the
    stream takes the full JID :meth:`heron.xmpp.router.Router.bind` returns.
    """

    @property
    def jid(self) -> JID: ...

    def send(self, stanza: Element) -> None:
        """Queue ``stanza`` for the client; never blocks (a full queue is the stream's worry)."""

    def close(self, condition: StreamCondition) -> None:
        """End the stream with ``<stream:error/>`` of ``condition`` (RFC 6120 §4.9)."""


@dataclass(slots=True, eq=False)
class Resource:
    """One bound resource and its instant-messaging state (RFC 6121 §1.5 terms).

    ``presence`` is the last broadcast available presence, None while the
    resource is not *available*; ``interested`` is set once it fetched the roster
    (§2.1.6 pushes go to interested resources only); ``directed`` holds who got
    directed presence, to tell them when the resource goes away (§4.6.3);
    ``carbons`` is set while the session wants XEP-0280 copies (it lasts the session);
    ``hibernating`` while its connection is gone and it waits to be resumed (XEP-0198),
    when what it is sent reaches no one until then (XEP-0357 pushes wake it).
    """

    session: Session
    jid: JID
    presence: Element | None = None
    priority: int = 0
    interested: bool = False
    directed: set[JID] = field(default_factory=set)
    carbons: bool = False
    hibernating: bool = False

    @property
    def available(self) -> bool:
        return self.presence is not None


class Hub(StanzaRouter, Protocol):
    """The router as the features see it: it routes, and it knows the local sessions."""

    def bound(self, bare: JID) -> list[Resource]:
        """The bound resources of a local account, oldest first."""
        ...

    def resource(self, full: JID) -> Resource | None: ...

    def new_id(self) -> str:
        """A fresh stanza id for server-generated iqs (roster pushes)."""
        ...


def to_text(stanza: Element) -> str:
    """Serialize a stanza for storage, standalone (``jabber:client`` declared on it)."""
    return serialize(stanza, "").decode()


def from_text(text: str) -> Element | None:
    """Parse stored stanza text back; only our own output is stored, so
    ElementTree's parser is safe here. None (logged) for a damaged row.
    """
    try:
        return fromstring(text)
    except ParseError:
        log.warning("dropping a stored stanza that does not parse: %.80r", text)
        return None
