"""Namespaces and small builders for stanzas held as ElementTree elements.

Every stanza a feature sees is in the ``jabber:client`` namespace, whatever
carried it (TCP stream or RFC 7395 WebSocket), with Clark-notation tags.
"""

from __future__ import annotations

from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaError

__all__ = [
    "NS",
    "error_reply",
    "iq_result",
    "qname",
]


class NS(StrEnum):
    """Namespaces heron speaks, with the document defining each."""

    CLIENT = "jabber:client"  # RFC 6120 §4.8.3
    SERVER = "jabber:server"  # RFC 6120 §4.8.3, the content namespace of s2s streams
    DIALBACK = "jabber:server:dialback"  # XEP-0220 §2, prefixed db: on the stream header
    DIALBACK_FEATURE = "urn:xmpp:features:dialback"  # XEP-0220 §2.4.2
    BIDI = "urn:xmpp:bidi"  # XEP-0288 §2.2, the initiating server's request
    BIDI_FEATURE = "urn:xmpp:features:bidi"  # XEP-0288 §2.1
    STREAM = "http://etherx.jabber.org/streams"  # RFC 6120 §4.8.1
    STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"  # RFC 6120 §4.9.2
    STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"  # RFC 6120 §8.3.2
    TLS = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5.4
    SASL = "urn:ietf:params:xml:ns:xmpp-sasl"  # RFC 6120 §6.4
    BIND = "urn:ietf:params:xml:ns:xmpp-bind"  # RFC 6120 §7
    SESSION = "urn:ietf:params:xml:ns:xmpp-session"  # RFC 3921 §3, a no-op kept for old clients
    FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"  # RFC 7395 §3.3
    ROSTER = "jabber:iq:roster"  # RFC 6121 §2
    ROSTER_VER = "urn:xmpp:features:rosterver"  # RFC 6121 §2.6
    DISCO_INFO = "http://jabber.org/protocol/disco#info"  # XEP-0030
    DISCO_ITEMS = "http://jabber.org/protocol/disco#items"  # XEP-0030
    VERSION = "jabber:iq:version"  # XEP-0092
    PING = "urn:xmpp:ping"  # XEP-0199
    VCARD = "vcard-temp"  # XEP-0054
    BLOCKING = "urn:xmpp:blocking"  # XEP-0191
    BLOCKING_ERRORS = "urn:xmpp:blocking:errors"  # XEP-0191 §3.5
    EXTDISCO = "urn:xmpp:extdisco:2"  # XEP-0215
    DELAY = "urn:xmpp:delay"  # XEP-0203
    COMMANDS = "http://jabber.org/protocol/commands"  # XEP-0050
    DATA = "jabber:x:data"  # XEP-0004
    MUC = "http://jabber.org/protocol/muc"  # XEP-0045
    MUC_USER = "http://jabber.org/protocol/muc#user"  # XEP-0045
    MUC_ADMIN = "http://jabber.org/protocol/muc#admin"  # XEP-0045
    MUC_OWNER = "http://jabber.org/protocol/muc#owner"  # XEP-0045
    MUC_SELF_PING = "http://jabber.org/protocol/muc#self-ping-optimization"  # XEP-0410 §3.3
    CARBONS = "urn:xmpp:carbons:2"  # XEP-0280 §3
    FORWARD = "urn:xmpp:forward:0"  # XEP-0297
    HINTS = "urn:xmpp:hints"  # XEP-0334
    RECEIPTS = "urn:xmpp:receipts"  # XEP-0184
    CHAT_STATES = "http://jabber.org/protocol/chatstates"  # XEP-0085
    MARKERS = "urn:xmpp:chat-markers:0"  # XEP-0333
    CONFERENCE = "jabber:x:conference"  # XEP-0249 direct invitations
    CSI = "urn:xmpp:csi:0"  # XEP-0352 §4
    SM = "urn:xmpp:sm:3"  # XEP-0198 §2
    EME = "urn:xmpp:eme:0"  # XEP-0380 explicit message encryption


def qname(namespace: str, tag: str) -> str:
    """Clark notation, ``{namespace}tag``, as ElementTree spells qualified names."""
    return f"{{{namespace}}}{tag}"


def _reply_shell(stanza: Element, type_: str) -> Element:
    reply = Element(stanza.tag, {"type": type_})
    for mine, theirs in (("to", "from"), ("from", "to"), ("id", "id")):
        value = stanza.get(theirs)
        if value is not None:
            reply.set(mine, value)
    return reply


def iq_result(iq: Element, payload: Element | None = None) -> Element:
    """RFC 6120 §8.2.3: the result for ``iq``, addresses swapped, id kept."""
    reply = _reply_shell(iq, "result")
    if payload is not None:
        reply.append(payload)
    return reply


def error_reply(stanza: Element, error: StanzaError) -> Element:
    """RFC 6120 §8.3.1: the stanza bounced with <error/>; its children are not echoed."""
    reply = _reply_shell(stanza, "error")
    element = SubElement(reply, qname(NS.CLIENT, "error"), {"type": error.type.value})
    SubElement(element, qname(NS.STANZAS, error.condition.value))
    if error.text:
        SubElement(element, qname(NS.STANZAS, "text")).text = error.text
    if error.specific:
        SubElement(element, error.specific)  # §8.3.2: after the text
    return reply
