"""Avatar conversion (XEP-0398), sans-IO: the XEP-0084 avatar a client publishes on PEP
as the PHOTO of its vcard-temp (XEP-0054), a vCard PHOTO as the two XEP-0084 items, and
the XEP-0153 hash that available presence carries.

Heron keeps only the XEP-0084 items: a vCard read gets its PHOTO from them and a vCard
write publishes them, so both kinds of client see one avatar, as with bookmarks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.stanza import NS, qname

__all__ = [
    "AVATAR_DATA",
    "AVATAR_METADATA",
    "CONVERSION",
    "VCARD4",
    "VCARD4_NODE",
    "VCARD_UPDATE",
    "Avatar",
    "avatar_of_photo",
    "current_id",
    "photo_of_avatar",
    "stamp_presence",
]

AVATAR_DATA = "urn:xmpp:avatar:data"  # XEP-0084 §4.1
AVATAR_METADATA = "urn:xmpp:avatar:metadata"  # XEP-0084 §4.2
CONVERSION = "urn:xmpp:pep-vcard-conversion:0"  # XEP-0398 §2
VCARD_UPDATE = "vcard-temp:x:update"  # XEP-0153 §3.2
VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"  # XEP-0292 §3: the payload's namespace
VCARD4_NODE = "urn:xmpp:vcard4"  # XEP-0292 §3: the node, and the disco feature

_MAX_TYPE = 64
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Avatar:
    """A XEP-0084 avatar: its id (the SHA-1 of the image, in hex), type and bytes."""

    id: str
    type: str
    image: bytes

    def data_item(self) -> Element:
        """XEP-0084 §4.1: the payload of the data node's item ``id``."""
        data = Element(qname(AVATAR_DATA, "data"))
        data.text = base64.b64encode(self.image).decode()
        return data

    def metadata_item(self) -> Element:
        """XEP-0084 §4.2: the payload of the metadata node's item ``id``, one <info/>."""
        metadata = Element(qname(AVATAR_METADATA, "metadata"))
        info = {"id": self.id, "type": self.type, "bytes": str(len(self.image))}
        SubElement(metadata, qname(AVATAR_METADATA, "info"), info)
        return metadata


def _is_sha1(text: str) -> bool:
    return len(text) == 40 and set(text) <= _HEX


def _decode(text: str) -> bytes | None:
    try:
        # XEP-0084 §4.1 and XEP-0054's BINVAL are base64 that may be wrapped in lines.
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def current_id(metadata: Element | None) -> tuple[str, str] | None:
    """XEP-0398 §3.1: (id, type) of the metadata's <info/> that names no external URL;
    None for a disabled avatar (XEP-0084 §4.5, an empty <metadata/>) or nothing usable."""
    if metadata is None or metadata.tag != qname(AVATAR_METADATA, "metadata"):
        return None
    for info in metadata.findall(qname(AVATAR_METADATA, "info")):
        avatar_id, type_ = info.get("id", "").lower(), info.get("type", "")
        if info.get("url") is None and _is_sha1(avatar_id) and 0 < len(type_) <= _MAX_TYPE:
            return avatar_id, type_
    return None


def photo_of_avatar(avatar_id: str, type_: str, data: Element | None) -> Element | None:
    """XEP-0398 §3.1: the vCard PHOTO for the data item ``avatar_id``; None unless the
    image's SHA-1 is that id ("SHOULD verify"), so a wrong hash never reaches contacts."""
    if data is None or data.tag != qname(AVATAR_DATA, "data"):
        return None
    image = _decode(data.text or "")
    if image is None or hashlib.sha1(image).hexdigest() != avatar_id:
        return None
    photo = Element(qname(NS.VCARD, "PHOTO"))
    SubElement(photo, qname(NS.VCARD, "TYPE")).text = type_
    SubElement(photo, qname(NS.VCARD, "BINVAL")).text = base64.b64encode(image).decode()
    return photo


def avatar_of_photo(photo: Element) -> Avatar | None:
    """XEP-0398 §3.2: the avatar a vCard PHOTO holds; None for an empty <PHOTO/>, which
    removes the avatar. A PHOTO that is no inline image is refused (EXTVAL has no data)."""
    binval = photo.findtext(qname(NS.VCARD, "BINVAL"))
    if len(photo) == 0 and not (photo.text or "").strip():
        return None
    image = _decode(binval or "")
    if not image:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "PHOTO needs a base64 BINVAL")
    type_ = (photo.findtext(qname(NS.VCARD, "TYPE")) or "").strip()
    if not 0 < len(type_) <= _MAX_TYPE or "/" not in type_:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "PHOTO needs a TYPE")
    return Avatar(hashlib.sha1(image).hexdigest(), type_, image)


def stamp_presence(presence: Element, avatar_id: str | None) -> None:
    """XEP-0398 §4: put the hash in an available presence unless it holds an empty
    <photo/> (the client says it has none yet); an <x/> without <photo/> is overwritten.
    ``avatar_id`` "" is a disabled avatar, stamped as an empty <photo/> (XEP-0153 §3.2:
    "no avatar"); None is nothing known, and a client's own <x/> is left alone."""
    tag = qname(VCARD_UPDATE, "x")
    update = presence.find(tag)
    if update is not None:
        photo = update.find(qname(VCARD_UPDATE, "photo"))
        if photo is not None and not (photo.text or "").strip():
            return
    if avatar_id is None:
        return
    for old in presence.findall(tag):
        presence.remove(old)
    SubElement(SubElement(presence, tag), qname(VCARD_UPDATE, "photo")).text = avatar_id
