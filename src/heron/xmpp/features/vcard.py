"""vCards (XEP-0054, ``vcard-temp``): each user sets their own; anyone reads one by bare JID.

A vCard is kept as the serialized XML the user sent, so fields heron does not
know (PHOTO, X-extensions) come back unchanged. Its size is capped: avatars
make vCards large, and the store must not become a free file host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from xml.etree.ElementTree import Element, ParseError, fromstring, tostring

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["MAX_VCARD_BYTES", "VCardHandler", "VCardStore"]

log = logging.getLogger(__name__)

MAX_VCARD_BYTES = 64 * 1024
"""Largest serialized vCard kept; room for a modest PHOTO in base64."""

_VCARD = qname(NS.VCARD, "vCard")


class VCardStore(Protocol):
    """Serialized vCards by owner bare JID."""

    async def get_vcard(self, owner: str) -> str | None: ...

    async def set_vcard(self, owner: str, vcard: str, now: float) -> None: ...


def _serialize(vcard: Element) -> str:
    return tostring(vcard, encoding="unicode")


def _deserialize(text: str) -> Element:
    # The text is heron's own serialization, never a client's raw bytes.
    return fromstring(text)


class VCardHandler:
    """XEP-0054 §3.1 (retrieve one's own), §3.2 (update), §3.3 (another user's)."""

    namespace: str = NS.VCARD
    disco_features: tuple[str, ...] = (NS.VCARD,)

    def __init__(
        self,
        store: VCardStore,
        *,
        clock: Callable[[], float],
        max_bytes: int = MAX_VCARD_BYTES,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_bytes = max_bytes

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        vcard = iq.find(_VCARD)
        if vcard is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected <vCard/>")
        owner = context.sender.bare
        # An iq without 'to' reaches the server, which answers for the sender's account.
        target = context.to.bare if context.to.local else owner
        kind = iq.get("type")
        if kind == "get":
            return iq_result(iq, await self._get(target))
        if kind == "set":
            await self._set(owner, target, vcard)
            return iq_result(iq)
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get or set")

    async def _get(self, target: JID) -> Element:
        text = await self._store.get_vcard(str(target))
        if text is None:
            # §3.1: "the server MUST return ... <item-not-found/>" or an empty vCard.
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND)
        try:
            return _deserialize(text)
        except (ParseError, RecursionError):
            log.error("stored vCard of %s does not parse", target)
            raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR) from None

    async def _set(self, owner: JID, target: JID, vcard: Element) -> None:
        if target != owner:
            # §3.2: a user may publish only their own vCard.
            raise StanzaError(StanzaCondition.FORBIDDEN, "only your own vCard can be set")
        try:
            text = _serialize(vcard)
            size = len(text.encode())
        except (RecursionError, UnicodeEncodeError):
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "vCard cannot be stored") from None
        if size > self._max_bytes:
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE, f"vCard larger than {self._max_bytes} bytes"
            )
        await self._store.set_vcard(str(owner), text, self._clock())
