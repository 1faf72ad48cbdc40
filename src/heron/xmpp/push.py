"""Push Notifications (XEP-0357 0.4.1): the rules, without I/O.

A phone's app registers an app server (a pubsub service, the "push JID", and a node
it owns there) with ``<enable/>`` (§5); while no session of the account would see a
message now, the server publishes a summary to that node (§7), and the app server
wakes the phone through its vendor's push service. This module parses the requests
(:func:`parse_enable`, :func:`parse_disable`), says which messages are worth waking a
phone for (:func:`worth_pushing`) and writes the publish (:func:`notification`);
``features.push`` keeps the registrations and sends.

Choices where the XEP leaves room, as Prosody's mod_cloud_notify makes them:

- The summary (§7, ``urn:xmpp:push:summary``) says ``message-count`` 1 and the
  sender's bare JID; the body only when the operator allows it
  (``xmpp.push_include_body``), since it leaves the server for the app vendor's.
- An OMEMO-encrypted message (XEP-0384) is worth a push although its body is only a
  fallback text; it is never included.
- Error answers to publishes end a registration after several in a row (§8 leaves it to
  the server; ``features.push`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname

__all__ = [
    "MAX_NODE",
    "MAX_OPTIONS",
    "PUSH",
    "Registration",
    "notification",
    "parse_disable",
    "parse_enable",
    "worth_pushing",
]

PUSH = "urn:xmpp:push:0"  # XEP-0357 §4
_SUMMARY = "urn:xmpp:push:summary"  # XEP-0357 §7
_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"  # XEP-0060 §7.1.5
_PUBSUB = "http://jabber.org/protocol/pubsub"
_OMEMO = "eu.siacs.conversations.axolotl"  # XEP-0384 0.3, what Conversations sends
MAX_NODE = 1023
"""Characters of a node name; app servers use tokens of a few dozen."""
MAX_OPTIONS = 16
"""Fields of the publish-options form (XEP-0357 §5 "secret" and the like)."""
_MAX_VALUE = 1023

_ENABLE = qname(PUSH, "enable")
_DISABLE = qname(PUSH, "disable")
_X = qname(NS.DATA, "x")
_FIELD = qname(NS.DATA, "field")
_VALUE = qname(NS.DATA, "value")
_BODY = qname(NS.CLIENT, "body")
_ENCRYPTED = qname(_OMEMO, "encrypted")


@dataclass(frozen=True, slots=True)
class Registration:
    """One app server an account enabled: where to publish, with which options (§5)."""

    service: JID
    node: str
    options: tuple[tuple[str, str], ...] = ()
    """The publish-options form's fields besides FORM_TYPE, as (var, value)."""


def _bad(text: str) -> StanzaError:
    return StanzaError(StanzaCondition.BAD_REQUEST, text)


def _service(payload: Element) -> JID:
    text = payload.get("jid")
    if not text:
        raise _bad("the push service's jid is missing")
    try:
        service = parse_jid(text)
    except StanzaError:
        raise _bad("the push service's jid is malformed") from None
    if len(str(service)) > MAX_NODE:
        raise _bad("the push service's jid is too long")
    return service


def _node(payload: Element, required: bool) -> str | None:
    node = payload.get("node")
    if node is None:
        if required:
            raise _bad("the push node is missing")  # §5: "MUST include ... node"
        return None
    if not node or len(node) > MAX_NODE:
        raise _bad("the push node is empty or too long")
    return node


def _options(payload: Element) -> tuple[tuple[str, str], ...]:
    """§5: an optional publish-options data form, which the server passes on untouched."""
    forms = payload.findall(_X)
    if not forms:
        return ()
    if len(forms) > 1:
        raise _bad("one publish-options form at most")
    fields: list[tuple[str, str]] = []
    form_type = None
    for field in forms[0].findall(_FIELD):
        var = field.get("var", "")
        value = field.findtext(_VALUE, "")
        if var == "FORM_TYPE":
            form_type = value
            continue
        if not var or len(var) > _MAX_VALUE or len(value) > _MAX_VALUE:
            raise _bad("a publish option is unnamed or too long")
        fields.append((var, value))
    if form_type != _PUBLISH_OPTIONS:
        raise _bad(f"the form's FORM_TYPE must be {_PUBLISH_OPTIONS}")
    if len(fields) > MAX_OPTIONS:
        raise _bad("too many publish options")
    return tuple(fields)


def parse_enable(payload: Element) -> Registration:
    """§5: ``<enable jid node>`` with its optional form; raises bad-request otherwise."""
    if payload.tag != _ENABLE:
        raise _bad("expected <enable/> or <disable/>")
    service = _service(payload)
    node = _node(payload, required=True)
    assert node is not None
    return Registration(service, node, _options(payload))


def parse_disable(payload: Element) -> tuple[JID, str | None]:
    """§6: ``<disable jid [node]>``: without a node, every node at that service."""
    if payload.tag != _DISABLE:
        raise _bad("expected <enable/> or <disable/>")
    return _service(payload), _node(payload, required=False)


def worth_pushing(message: Element) -> bool:
    """Whether ``message`` should wake a phone: a chat or normal message with a body or
    an OMEMO payload (mod_cloud_notify's rule), nothing that is only a receipt, a chat
    state or a marker."""
    if message.get("type", "normal") not in ("chat", "normal"):
        return False
    if message.find(_ENCRYPTED) is not None:
        return True
    body = message.findtext(_BODY)
    return bool(body and body.strip())


def _field(form: Element, var: str, value: str) -> None:
    field = SubElement(form, _FIELD, {"var": var})
    SubElement(field, _VALUE).text = value


def notification(
    registration: Registration,
    message: Element,
    *,
    server: str,
    sender: JID,
    include_body: bool,
    id_: str,
) -> Element:
    """§7: the pubsub publish of one summary for ``message`` from ``sender`` to the
    account that enabled ``registration``; the body only with ``include_body`` and never
    an encrypted message's fallback text."""
    iq = Element(
        qname(NS.CLIENT, "iq"),
        {"type": "set", "from": server, "to": str(registration.service), "id": id_},
    )
    pubsub = SubElement(iq, qname(_PUBSUB, "pubsub"))
    publish = SubElement(pubsub, qname(_PUBSUB, "publish"), {"node": registration.node})
    item = SubElement(publish, qname(_PUBSUB, "item"))
    summary = SubElement(SubElement(item, qname(PUSH, "notification")), _X, {"type": "submit"})
    _field(summary, "FORM_TYPE", _SUMMARY)
    _field(summary, "message-count", "1")
    _field(summary, "last-message-sender", str(sender.bare))
    body = message.findtext(_BODY)
    if include_body and body and message.find(_ENCRYPTED) is None:
        _field(summary, "last-message-body", body)
    if registration.options:
        options = SubElement(pubsub, qname(_PUBSUB, "publish-options"))
        form = SubElement(options, _X, {"type": "submit"})
        _field(form, "FORM_TYPE", _PUBLISH_OPTIONS)
        for var, value in registration.options:
            _field(form, var, value)
    return iq
