"""Offline messages (XEP-0160): kept while an account has no available resource,
delivered with an XEP-0203 delay stamp after its next initial presence.

Unlike Prosody's mod_offline, the store is capped per account; a message over
the cap bounces with service-unavailable, as if there were no storage at all
(XEP-0160 §3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.features.local import Resource, from_text, to_text
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, qname

__all__ = ["OfflineMessages", "OfflineStore"]

log = logging.getLogger(__name__)

MAX_MESSAGES = 500  # per account
_CHAT_STATES = "http://jabber.org/protocol/chatstates"  # XEP-0085


class OfflineStore(Protocol):
    """Offline messages per account (a bare JID), oldest first, at most a fixed number
    per account (:data:`MAX_MESSAGES` by default); times are Unix seconds.
    """

    async def push(self, owner: JID, stanza: str, stamp: float) -> bool:
        """Append one message; False, storing nothing, when ``owner``'s storage is full."""
        ...

    async def pop_all(self, owner: JID) -> list[tuple[str, float]]:
        """Remove and return every message of ``owner`` with its stamp."""
        ...

    async def count(self, owner: JID) -> int: ...


def delay_stamp(stamp: float) -> str:
    """XEP-0082 DateTime in UTC, as XEP-0203 wants."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worth_storing(message: Element) -> bool:
    """XEP-0160 §3: not a bare chat-state notification (XEP-0085 §5.5), which is stale later."""
    return any(not child.tag.startswith(f"{{{_CHAT_STATES}}}") for child in message)


class OfflineMessages:
    """Stores messages for absent accounts and hands them over at login."""

    def __init__(self, store: OfflineStore, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def store(self, owner: JID, message: Element) -> bool:
        """Keep a normal or chat ``message`` for ``owner``; False when it must bounce
        because the storage is full. Bare chat states are dropped, not kept.
        """
        if not worth_storing(message):
            return True
        stored = await self._store.push(owner, to_text(message), self._clock())
        if not stored:
            log.info("offline storage of %s is full", owner)
        return stored

    async def deliver(self, resource: Resource) -> int:
        """XEP-0160 §4: send everything stored to a resource that just became available."""
        return self.hand_over(resource, await self._store.pop_all(resource.jid.bare))

    def hand_over(self, resource: Resource, messages: Sequence[tuple[str, float]]) -> int:
        """Send ``messages``, taken out of storage for ``resource``, with their delay stamps."""
        delivered = 0
        for text, stamp in messages:
            message = from_text(text)
            if message is None:
                continue
            SubElement(
                message,
                qname(NS.DELAY, "delay"),
                {"from": resource.jid.domain, "stamp": delay_stamp(stamp)},
            ).text = "Offline Storage"
            resource.session.send(message)
            delivered += 1
        return delivered
