"""Jabber identifiers (RFC 7622): ``local@domain/resource``, parsed and compared.

Two spellings of one address must compare equal, or a roster entry, a ban or
a route could be bypassed by a capital letter: the localpart is case-folded and
the domainpart lowercased, both in Unicode NFC (RFC 7622 §3.2, §3.3). The
resourcepart keeps its case (§3.4). Each part is 1..1023 bytes of UTF-8.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from heron.xmpp.errors import StanzaCondition, StanzaError

__all__ = ["JID", "parse_jid", "parse_stanza_jid"]

MAX_PART = 1023
# RFC 7622 §3.3.1: characters a localpart may never contain.
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")


def _malformed(text: str) -> StanzaError:
    return StanzaError(StanzaCondition.JID_MALFORMED, text)


def _check_size(part: str, name: str) -> None:
    if not part:
        raise _malformed(f"empty {name}")
    # surrogatepass: a lone surrogate (from JSON, say) is refused by _check_characters as
    # jid-malformed instead of escaping as UnicodeEncodeError.
    if len(part.encode("utf-8", "surrogatepass")) > MAX_PART:
        raise _malformed(f"{name} longer than {MAX_PART} bytes")


def _check_characters(part: str, name: str, forbidden: frozenset[str]) -> None:
    for char in part:
        category = unicodedata.category(char)
        if char in forbidden or category in ("Cc", "Cs", "Co", "Cn"):
            raise _malformed(f"{name} contains {char!r}")
        if name != "resourcepart" and category.startswith("Z"):
            raise _malformed(f"{name} contains a space")


def _width_mapped(char: str) -> str:
    """RFC 8265 §3.3.1 step 1: fullwidth and halfwidth forms become their ordinary ones."""
    if unicodedata.decomposition(char).startswith(("<wide>", "<narrow>")):
        return unicodedata.normalize("NFKC", char)
    return char


def _local(part: str) -> str:
    """UsernameCaseMapped (RFC 8265 §3.3, as RFC 7622 §3.3 asks): width map, lowercase, NFC;
    other compatibility characters (RFC 8264 §9.17) are refused, not folded into letters."""
    mapped = "".join(_width_mapped(char) for char in part)
    prepared = unicodedata.normalize("NFC", mapped.lower())
    if unicodedata.normalize("NFKC", prepared) != prepared:
        raise _malformed("localpart contains a compatibility character")
    _check_size(prepared, "localpart")
    _check_characters(prepared, "localpart", _LOCAL_FORBIDDEN)
    return prepared


def _domain(part: str) -> str:
    """RFC 7622 §3.2: lowercase NFC, a final dot dropped, no '@' or '/'."""
    prepared = unicodedata.normalize("NFC", part.removesuffix(".").lower())
    _check_size(prepared, "domainpart")
    _check_characters(prepared, "domainpart", frozenset("@/\\"))
    return prepared


def _resource(part: str) -> str:
    """OpaqueString (RFC 8265 §4.2, RFC 7622 §3.4): NFC, case kept."""
    prepared = unicodedata.normalize("NFC", part)
    _check_size(prepared, "resourcepart")
    _check_characters(prepared, "resourcepart", frozenset())
    return prepared


@dataclass(frozen=True, slots=True)
class JID:
    """A prepared address; build it with :func:`parse_jid` or :meth:`make`."""

    local: str
    domain: str
    resource: str = ""

    @classmethod
    def make(cls, local: str, domain: str, resource: str = "") -> JID:
        """Prepare each part as :func:`parse_jid` would."""
        return cls(
            _local(local) if local else "",
            _domain(domain),
            _resource(resource) if resource else "",
        )

    @property
    def bare(self) -> JID:
        """The account (or room, or server) without the resource (RFC 6120 §1.4)."""
        return JID(self.local, self.domain) if self.resource else self

    @property
    def is_bare(self) -> bool:
        return not self.resource

    def with_resource(self, resource: str) -> JID:
        return JID(self.local, self.domain, _resource(resource))

    def __str__(self) -> str:
        text = f"{self.local}@{self.domain}" if self.local else self.domain
        return f"{text}/{self.resource}" if self.resource else text


def parse_jid(text: str) -> JID:
    """Split at the first '/' then the last '@' before it (RFC 7622 §3.1); raise jid-malformed."""
    if len(text) > 3 * MAX_PART + 2:
        raise _malformed("address too long")
    head, slash, resource = text.partition("/")
    local, at, domain = head.rpartition("@")
    if slash and not resource:
        raise _malformed("empty resourcepart")
    if at and not local:
        raise _malformed("empty localpart")
    return JID.make(local, domain, resource)


parse_stanza_jid = lru_cache(maxsize=2048)(parse_jid)
"""parse_jid for the addresses of stanzas as a stream receives them, the one place they
are parsed: a stream writes to the same few addresses, and preparing one (NFC, case
folding, character checks) costs more than routing the stanza. Past the stream, stanzas
travel with their JIDs (:class:`heron.xmpp.features.StanzaRouter`)."""
