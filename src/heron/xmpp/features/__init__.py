"""The seams between the router, the features and the components.

- The router (``heron.xmpp.router``) owns sessions and delivers stanzas by
  RFC 6121 §8; everything else sends through :class:`StanzaRouter`, handing
  over the addresses as the JIDs it holds: an address is parsed once, by the
  stream it came in on, never again.
- An :class:`IqHandler` answers the iq payloads of one namespace addressed to
  the server or to an account's bare JID (roster, vCard, ping, disco, ...).
- A :class:`DomainComponent` owns a whole domain (group chat on ``conference.…``)
  and gets every stanza addressed there.

Features are async because they reach the store; the rules they apply (the
subscription table, a room's roles) live in sans-IO modules beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element

from heron.xmpp.jid import JID

__all__ = ["DomainComponent", "IqContext", "IqHandler", "Routed", "StanzaRouter"]


class StanzaRouter(Protocol):
    """Delivers stanzas to sessions, components or storage."""

    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        """Deliver ``stanza``, whose ``from`` and ``to`` say ``sender`` and ``to``; the
        router decides on the JIDs and never parses the attributes again."""


@dataclass(frozen=True, slots=True)
class Routed:
    """A stanza to route, with the addresses its ``from`` and ``to`` were written from."""

    stanza: Element
    sender: JID
    to: JID


@dataclass(frozen=True, slots=True)
class IqContext:
    """Who asked: the full JID of the session, whether it is an admin, and how to reply further."""

    sender: JID
    to: JID
    is_admin: bool
    router: StanzaRouter


class IqHandler(Protocol):
    """Answers iq get/set payloads in ``namespace``; returns the result or error reply.

    Returning None means the handler sent its replies itself through the router.
    It raises :class:`heron.xmpp.errors.StanzaError` to refuse; the router turns
    that into the error reply.
    """

    namespace: str
    disco_features: tuple[str, ...]

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None: ...


class DomainComponent(Protocol):
    """Owns every address of ``domain`` (XEP-0045's ``conference.<domain>``)."""

    domain: str

    async def receive(self, stanza: Element, sender: JID, to: JID, is_admin: bool) -> None:
        """``stanza``, from ``sender`` to ``to`` (an address of ``domain``), as the router
        parsed them; ``is_admin``: the sender is one of the server's admins."""
