"""What s2s elements look like on the wire and what a peer's elements mean.

Stanzas cross the core in ``jabber:client``, whatever carried them (the
router and the features never see ``jabber:server``): :func:`to_client`
renames a received stanza's own elements, and the stream serializes ours
with ``jabber:client`` as the namespace in scope, which writes no
``xmlns`` inside a ``jabber:server`` stream, so on the wire they are
``jabber:server`` (RFC 6120 §4.8.3) without a copy.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, qname

__all__ = [
    "EXTERNAL",
    "bidi_feature",
    "bidi_offered",
    "bidi_request",
    "dialback_addresses",
    "dialback_condition",
    "dialback_feature",
    "domain_of",
    "external_auth",
    "external_authzid",
    "external_feature",
    "features",
    "mechanisms_offered",
    "peer_stream_error",
    "sasl_element",
    "starttls_feature",
    "to_client",
]

EXTERNAL = "EXTERNAL"
_SERVER = f"{{{NS.SERVER}}}"
_CLIENT = f"{{{NS.CLIENT}}}"


def domain_of(text: str | None) -> str | None:
    """A prepared domain (RFC 7622 §3.2) from a header or dialback attribute, or None."""
    if not text:
        return None
    try:
        return JID.make("", text).domain
    except StanzaError:
        return None


def dialback_addresses(element: Element) -> tuple[str, str]:
    """('from', 'to') of a dialback element, prepared; XEP-0220 requires both."""
    sender, to = domain_of(element.get("from")), domain_of(element.get("to"))
    if sender is None or to is None:
        raise StreamError(StreamCondition.IMPROPER_ADDRESSING, "dialback needs from and to")
    return sender, to


def to_client(stanza: Element) -> Element:
    """Rename the stanza and its own descendants from ``jabber:server`` to ``jabber:client``
    (payloads in other namespaces stay as they are); in place, the stanza is ours now."""
    for node in stanza.iter():
        tag = node.tag
        if isinstance(tag, str) and tag.startswith(_SERVER):
            node.tag = _CLIENT + tag[len(_SERVER) :]
    return stanza


def features(children: Iterable[Element]) -> Element:
    element = Element(qname(NS.STREAM, "features"))
    element.extend(children)
    return element


def starttls_feature(required: bool) -> Element:
    """RFC 6120 §5.4.1: <starttls/>, with <required/> when nothing else may come first."""
    element = Element(qname(NS.TLS, "starttls"))
    if required:
        SubElement(element, qname(NS.TLS, "required"))
    return element


def dialback_feature() -> Element:
    """XEP-0220 §2.4.2: dialback with error handling (so errors do not end the stream)."""
    element = Element(qname(NS.DIALBACK_FEATURE, "dialback"))
    SubElement(element, qname(NS.DIALBACK_FEATURE, "errors"))
    return element


def bidi_feature() -> Element:
    """XEP-0288 §2.1: this server sends stanzas back on streams it receives."""
    return Element(qname(NS.BIDI_FEATURE, "bidi"))


def bidi_offered(features_element: Element) -> bool:
    return features_element.find(qname(NS.BIDI_FEATURE, "bidi")) is not None


def bidi_request() -> Element:
    """XEP-0288 §2.2: the initiating server asks for stanzas back; there is no answer."""
    return Element(qname(NS.BIDI, "bidi"))


def external_feature() -> Element:
    """XEP-0178 §2: the only mechanism offered to a server is EXTERNAL."""
    element = Element(qname(NS.SASL, "mechanisms"))
    SubElement(element, qname(NS.SASL, "mechanism")).text = EXTERNAL
    return element


def mechanisms_offered(features_element: Element) -> list[str]:
    path = f"{qname(NS.SASL, 'mechanisms')}/{qname(NS.SASL, 'mechanism')}"
    return [(mechanism.text or "").strip() for mechanism in features_element.iterfind(path)]


def sasl_element(name: str, condition: str = "") -> Element:
    """<success/> or <failure><condition/></failure> (RFC 6120 §6.4.5, §6.4.6)."""
    element = Element(qname(NS.SASL, name))
    if condition:
        SubElement(element, qname(NS.SASL, condition))
    return element


def external_auth(authzid: str) -> Element:
    """XEP-0178 §3: <auth mechanism='EXTERNAL'> with our domain as authzid, as Prosody
    sends it (RFC 6120 §6.4.2: base64)."""
    element = Element(qname(NS.SASL, "auth"), {"mechanism": EXTERNAL})
    element.text = base64.b64encode(authzid.encode()).decode()
    return element


def external_authzid(payload: str | None) -> str | None:
    """The authzid of an EXTERNAL <auth/> (RFC 6120 §6.4.2: "=" is empty); None if not base64."""
    text = (payload or "").strip()
    if text in ("", "="):
        return ""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _condition_name(element: Element, namespace: str) -> str:
    for child in element:
        tag = child.tag
        if (
            isinstance(tag, str)
            and tag.startswith(f"{{{namespace}}}")
            and not tag.endswith("}text")
        ):
            return tag[len(namespace) + 2 :]
    return ""


def peer_stream_error(element: Element) -> StreamError:
    """The peer's <stream:error/> (RFC 6120 §4.9.2) as a StreamError, to report it."""
    try:
        condition = StreamCondition(_condition_name(element, NS.STREAMS))
    except ValueError:
        condition = StreamCondition.UNDEFINED_CONDITION
    return StreamError(condition, element.findtext(qname(NS.STREAMS, "text")) or "")


def dialback_condition(element: Element) -> StanzaCondition:
    """The stanza condition in a dialback error (XEP-0220 §2.5)."""
    error = element.find(qname(NS.SERVER, "error"))
    try:
        return StanzaCondition(_condition_name(error, NS.STANZAS) if error is not None else "")
    except ValueError:
        return StanzaCondition.UNDEFINED_CONDITION
