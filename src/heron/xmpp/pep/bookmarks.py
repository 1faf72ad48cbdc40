"""Bookmark conversion (XEP-0411), sans-IO: XEP-0048 ``storage:bookmarks`` as older
clients keep it in private XML storage (XEP-0049), to and from the XEP-0402 items of
``urn:xmpp:bookmarks:1`` that current ones publish, one per room.

Heron keeps only the XEP-0402 items: a legacy read is built from them and a legacy write
becomes publications and retractions, so both kinds of client see one list. Legacy URL
bookmarks (``<url/>``) have no XEP-0402 form and are not kept, as in Prosody.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import XmppError
from heron.xmpp.jid import parse_jid

__all__ = ["BOOKMARKS", "LEGACY_BOOKMARKS", "from_legacy", "to_legacy"]

BOOKMARKS = "urn:xmpp:bookmarks:1"  # XEP-0402 §3
LEGACY_BOOKMARKS = "storage:bookmarks"  # XEP-0048 §3
_TRUE = ("1", "true")
_MAX_TEXT = 1024


def _bounded(element: Element, tag: str) -> str | None:
    text = element.findtext(tag)
    return text if text is not None and len(text) <= _MAX_TEXT else None


def to_legacy(items: Sequence[tuple[str, Element | None]]) -> Element:
    """XEP-0411 §3: the legacy ``<storage/>`` for (room JID, XEP-0402 conference) pairs."""
    storage = Element(f"{{{LEGACY_BOOKMARKS}}}storage")
    for room, conference in items:
        if conference is None or conference.tag != f"{{{BOOKMARKS}}}conference":
            continue
        legacy = SubElement(storage, f"{{{LEGACY_BOOKMARKS}}}conference", {"jid": room})
        if (name := conference.get("name")) is not None:
            legacy.set("name", name)
        legacy.set("autojoin", "true" if conference.get("autojoin") in _TRUE else "false")
        for tag in ("nick", "password"):
            if (text := _bounded(conference, f"{{{BOOKMARKS}}}{tag}")) is not None:
                SubElement(legacy, f"{{{LEGACY_BOOKMARKS}}}{tag}").text = text
    return storage


def from_legacy(storage: Element, max_items: int) -> dict[str, Element] | None:
    """XEP-0411 §3: room JID to XEP-0402 conference for a legacy ``<storage/>``; None if it
    names more rooms than a node keeps. Conferences without a valid room JID are dropped."""
    conferences: dict[str, Element] = {}
    for legacy in storage.findall(f"{{{LEGACY_BOOKMARKS}}}conference"):
        try:
            room = str(parse_jid(legacy.get("jid", "")).bare)
        except XmppError:
            continue
        conference = Element(f"{{{BOOKMARKS}}}conference")
        if (name := legacy.get("name")) is not None and len(name) <= _MAX_TEXT:
            conference.set("name", name)
        conference.set("autojoin", "true" if legacy.get("autojoin") in _TRUE else "false")
        for tag in ("nick", "password"):
            if (text := _bounded(legacy, f"{{{LEGACY_BOOKMARKS}}}{tag}")) is not None:
                SubElement(conference, f"{{{BOOKMARKS}}}{tag}").text = text
        conferences[room] = conference
        if len(conferences) > max_items:
            return None
    return conferences
