"""Server dialback keys and elements (XEP-0185, XEP-0220).

A dialback key proves that whoever sent it talks for the authoritative
server of a domain: only the servers sharing that domain's secret can compute
it for a given stream. XEP-0185 §2 recommends, and heron uses::

    key = hex(HMAC-SHA256(key=hex(SHA256(secret)),
                          msg="<receiving> <originating> <stream id>"))

The Authoritative Server checks a key by computing it again
(:func:`key_matches`, in constant time so that timing tells nothing about
how much of a guess was right).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Set
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StreamCondition, StreamError
from heron.xmpp.s2s.wire import dialback_addresses
from heron.xmpp.stanza import NS, qname

__all__ = [
    "DialbackType",
    "dialback_element",
    "dialback_key",
    "key_matches",
    "verify_answer",
]


class DialbackType(StrEnum):
    """The 'type' of an answered <db:result/> or <db:verify/> (XEP-0220 §2.1, §2.5)."""

    VALID = "valid"
    INVALID = "invalid"
    ERROR = "error"


def dialback_key(secret: bytes, receiving: str, originating: str, stream_id: str) -> str:
    """XEP-0185 §2: the key ``originating`` sends to ``receiving`` on stream ``stream_id``."""
    # §2 note 2: the secret is hashed first; note 4: hex, so the HMAC key is the hex text.
    hashed = hashlib.sha256(secret).hexdigest().encode()
    message = f"{receiving} {originating} {stream_id}".encode()
    return hmac.new(hashed, message, hashlib.sha256).hexdigest()


def key_matches(secret: bytes, receiving: str, originating: str, stream_id: str, key: str) -> bool:
    """Whether ``key`` is the one we would have generated, compared in constant time."""
    expected = dialback_key(secret, receiving, originating, stream_id)
    return hmac.compare_digest(expected.encode(), key.strip().encode("utf-8", "replace"))


def dialback_element(
    tag: str,
    *,
    from_: str,
    to: str,
    stream_id: str = "",
    key: str = "",
    type_: DialbackType | None = None,
    condition: StanzaCondition | None = None,
) -> Element:
    """<db:result/> or <db:verify/> (``tag``), XEP-0220 §2.1 to §2.4.

    A dialback error carries <error/> in ``jabber:server`` with the stanza
    condition (XEP-0220 §2.5), written unprefixed inside the s2s stream.
    """
    element = Element(qname(NS.DIALBACK, tag), {"from": from_, "to": to})
    if stream_id:
        element.set("id", stream_id)
    if type_ is not None:
        element.set("type", type_.value)
    if key:
        element.text = key
    if condition is not None:
        error = SubElement(
            element, qname(NS.SERVER, "error"), {"type": condition.default_type.value}
        )
        SubElement(error, qname(NS.STANZAS, condition.value))
    return element


def verify_answer(request: Element, secret: bytes, local_domains: Set[str]) -> Element:
    """XEP-0220 §2.2.2: as the Authoritative Server for the request's ``to``, say whether
    its key is ours; a domain not served here is a dialback error (§2.5)."""
    receiving, originating = dialback_addresses(request)
    stream_id = request.get("id", "")
    if not stream_id:
        raise StreamError(StreamCondition.IMPROPER_ADDRESSING, "db:verify without id")
    if originating not in local_domains:
        answer, condition = DialbackType.ERROR, StanzaCondition.ITEM_NOT_FOUND
    elif key_matches(secret, receiving, originating, stream_id, request.text or ""):
        answer, condition = DialbackType.VALID, None
    else:
        answer, condition = DialbackType.INVALID, None
    return dialback_element(
        "verify",
        from_=originating,
        to=receiving,
        stream_id=stream_id,
        type_=answer,
        condition=condition,
    )
