"""vCards (XEP-0054, ``vcard-temp``): each user sets their own; anyone reads one by bare JID.

A vCard is kept as the serialized XML the user sent, so fields heron does not
know (X-extensions) come back unchanged. Its size is capped: the store must not
become a free file host. The PHOTO is the exception: with an :class:`Avatars`
it lives as the account's XEP-0084 avatar (XEP-0398), which is what a read shows.
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

__all__ = ["MAX_VCARD_BYTES", "Avatars", "VCardHandler", "VCardStore"]

log = logging.getLogger(__name__)

MAX_VCARD_BYTES = 64 * 1024
"""Largest serialized vCard kept; room for a modest PHOTO in base64."""

_VCARD = qname(NS.VCARD, "vCard")
_PHOTO = qname(NS.VCARD, "PHOTO")


class VCardStore(Protocol):
    """Serialized vCards by owner bare JID."""

    async def get_vcard(self, owner: str) -> str | None: ...

    async def set_vcard(self, owner: str, vcard: str, now: float) -> None: ...


class Avatars(Protocol):
    """The accounts' XEP-0084 avatars as vCard PHOTOs (XEP-0398 §3)."""

    async def photo(self, owner: JID, reader: JID) -> Element | None:
        """``owner``'s avatar as ``reader`` may see it; None if there is none to show."""
        ...

    async def set_photo(self, owner: JID, photo: Element) -> None:
        """Publish a vCard's PHOTO as ``owner``'s avatar; an empty one removes it."""
        ...


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
        avatars: Avatars | None = None,
        max_bytes: int = MAX_VCARD_BYTES,
    ) -> None:
        self._store = store
        self._clock = clock
        self._avatars = avatars
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
            return iq_result(iq, await self._get(target, context.sender))
        if kind == "set":
            await self._set(owner, target, vcard)
            return iq_result(iq)
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get or set")

    async def _get(self, target: JID, reader: JID) -> Element:
        text = await self._store.get_vcard(str(target))
        photo = await self._avatars.photo(target, reader) if self._avatars else None
        if text is None and photo is None:
            # §3.1: "the server MUST return ... <item-not-found/>" or an empty vCard.
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND)
        try:
            vcard = _deserialize(text) if text is not None else Element(_VCARD)
        except (ParseError, RecursionError):
            log.error("stored vCard of %s does not parse", target)
            raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR) from None
        if photo is not None:
            # XEP-0398 §3.1: the avatar is the PHOTO, whatever an older vCard held.
            for old in vcard.findall(_PHOTO):
                vcard.remove(old)
            vcard.append(photo)
        return vcard

    async def _set(self, owner: JID, target: JID, vcard: Element) -> None:
        if target != owner:
            # §3.2: a user may publish only their own vCard.
            raise StanzaError(StanzaCondition.FORBIDDEN, "only your own vCard can be set")
        photos = vcard.findall(_PHOTO)
        photo = photos[0] if self._avatars is not None and len(photos) == 1 else None
        if photo is not None:
            # XEP-0398 §3.2: the PHOTO becomes the avatar, kept once, on PEP.
            vcard.remove(photo)
        try:
            text = _serialize(vcard)
            size = len(text.encode())
        except (RecursionError, UnicodeEncodeError):
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "vCard cannot be stored") from None
        if size > self._max_bytes:
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE, f"vCard larger than {self._max_bytes} bytes"
            )
        if self._avatars is not None and photo is not None:
            await self._avatars.set_photo(owner, photo)
        await self._store.set_vcard(str(owner), text, self._clock())
