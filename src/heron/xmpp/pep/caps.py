"""Entity capabilities (XEP-0115), sans-IO: what a resource's presence says it supports.

A client puts ``<c hash node ver/>`` in its presence; ``ver`` is a hash of its disco#info
answer. The PEP service asks an unknown ``ver`` once (disco#info to the resource, node
``node#ver``), recomputes the hash from the answer (§5.1) and keeps the features only if it
matches (§5.4): otherwise one client could poison the cache for every client announcing
that ``ver``. Only the ``+notify`` features matter to heron (XEP-0163 §4.3).
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from heron.xmpp.stanza import NS, qname

__all__ = ["CAPS", "Caps", "CapsCache", "parse_caps", "verification_string", "verify"]

CAPS = "http://jabber.org/protocol/caps"
_C = qname(CAPS, "c")
# The IANA names XEP-0115 §5.1 allows, as hashlib spells them; sha-1 is what clients send.
_HASHES = {"sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256", "sha-384": "sha384",
           "sha-512": "sha512"}  # fmt: skip
_MAX_VER = 128
_MAX_NODE = 512
_MAX_FEATURES = 512  # per disco#info answer: Gajim's and Conversations' are under 100


@dataclass(frozen=True, slots=True)
class Caps:
    """The ``<c/>`` of a presence: ``hash`` (an IANA name), ``node`` and ``ver``."""

    hash: str
    node: str
    ver: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.hash, self.ver)


def parse_caps(presence: Element) -> Caps | None:
    """The presence's capabilities, None without a usable one (legacy §1.2 caps lack
    ``hash`` and cannot be verified)."""
    c = presence.find(_C)
    if c is None:
        return None
    algorithm, node, ver = c.get("hash", ""), c.get("node", ""), c.get("ver", "")
    if algorithm not in _HASHES or not ver or len(ver) > _MAX_VER or len(node) > _MAX_NODE:
        return None
    return Caps(algorithm, node, ver)


def _form_type(form: Element) -> str | None:
    for field in form.findall(qname(NS.DATA, "field")):
        if field.get("var") == "FORM_TYPE":
            return field.findtext(qname(NS.DATA, "value")) or ""
    return None


def verification_string(query: Element) -> str | None:
    """XEP-0115 §5.1 S for a disco#info answer; None where §5.4 says not to trust it
    (duplicate identities, features or form types)."""
    identities = [
        "/".join(
            (
                identity.get("category", ""),
                identity.get("type", ""),
                identity.get("{http://www.w3.org/XML/1998/namespace}lang", ""),
                identity.get("name", ""),
            )
        )
        for identity in query.findall(qname(NS.DISCO_INFO, "identity"))
    ]
    features = [
        feature.get("var", "") for feature in query.findall(qname(NS.DISCO_INFO, "feature"))
    ]
    if len(set(identities)) != len(identities) or len(set(features)) != len(features):
        return None
    parts = [f"{identity}<" for identity in sorted(identities)]
    parts += [f"{feature}<" for feature in sorted(features)]
    forms: dict[str, Element] = {}
    for form in query.findall(qname(NS.DATA, "x")):
        form_type = _form_type(form)
        if form_type is None:
            continue  # §5.4 3.6: a form without FORM_TYPE is ignored
        if form_type in forms:
            return None
        forms[form_type] = form
    for form_type in sorted(forms):
        parts.append(f"{form_type}<")
        fields = [f for f in forms[form_type].findall(qname(NS.DATA, "field"))]
        for field in sorted(fields, key=lambda f: f.get("var", "")):
            var = field.get("var", "")
            if var == "FORM_TYPE":
                continue
            parts.append(f"{var}<")
            values = [v.text or "" for v in field.findall(qname(NS.DATA, "value"))]
            parts += [f"{value}<" for value in sorted(values)]
    return "".join(parts)


def verify(caps: Caps, query: Element) -> frozenset[str] | None:
    """The features of ``query`` if it hashes to ``caps.ver`` (§5.4), else None."""
    features = query.findall(qname(NS.DISCO_INFO, "feature"))
    if len(features) > _MAX_FEATURES:
        return None
    text = verification_string(query)
    if text is None:
        return None
    digest = hashlib.new(_HASHES[caps.hash], text.encode()).digest()
    if base64.b64encode(digest).decode() != caps.ver:
        return None
    return frozenset(feature.get("var", "") for feature in features)


class CapsCache:
    """Verified features by (hash, ver), the least recently used forgotten past ``size``."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()

    def get(self, caps: Caps) -> frozenset[str] | None:
        features = self._known.get(caps.key)
        if features is not None:
            self._known.move_to_end(caps.key)
        return features

    def put(self, caps: Caps, features: frozenset[str]) -> None:
        self._known[caps.key] = features
        self._known.move_to_end(caps.key)
        while len(self._known) > self._size:
            self._known.popitem(last=False)
