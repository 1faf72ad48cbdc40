"""Message Carbons (XEP-0280 1.0.1): every device of an account sees both sides of its chats.

A session turns copies on and off with :class:`CarbonsHandler` (§4, §5). The rules
are pure functions: :func:`eligible` says which messages are copied (§6.1, §9),
:func:`copies` whom to and in what wrapper (§7, §8). The router applies them where
it already knows the answer to "who got the original": when it delivers a message
to an account (``RECEIVED``) and when one of its sessions sends one (``SENT``).

Choices where the XEP leaves room:

- Errors are never copied: §6.1 allows it only for replies to eligible messages,
  which needs tracking the XEP itself calls "unlikely to be generally appropriate".
- A message that goes to offline storage is not copied: storage hands it to the
  next session that takes messages to the bare JID (an initial presence, or a
  priority raised from negative: XEP-0160), and a copy now would show it twice.
- ``<private/>`` or ``<no-copy/>`` alone is enough to opt out (§9 asks clients for
  both; Prosody honours either), and neither is removed (§9's interoperability note).
- A message that already carries a carbon (``<sent/>`` or ``<received/>``) is never
  copied again: copies come from the account's bare JID only (§11), so one written
  by anyone else is worth nothing to the account's other clients.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from copy import deepcopy
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.local import Hub, Resource
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["CarbonsHandler", "Direction", "copies", "eligible", "wrap"]

_MESSAGE = qname(NS.CLIENT, "message")
_BODY = qname(NS.CLIENT, "body")
_ENABLE = qname(NS.CARBONS, "enable")
_DISABLE = qname(NS.CARBONS, "disable")
_OPT_OUT = frozenset({qname(NS.CARBONS, "private"), qname(NS.HINTS, "no-copy")})  # §9
_CARBONS = frozenset({qname(NS.CARBONS, "sent"), qname(NS.CARBONS, "received")})
_MUC_USER = qname(NS.MUC_USER, "x")
_MEDIATED_INVITE = qname(NS.MUC_USER, "invite")  # XEP-0045 §7.8.2
_DIRECT_INVITE = qname(NS.CONFERENCE, "x")  # XEP-0249
_IM_PAYLOADS = frozenset({NS.RECEIPTS.value, NS.CHAT_STATES.value, NS.MARKERS.value})
_NOT_IM = frozenset({"groupchat", "error", "headline"})
_MESSAGE_TYPES = frozenset({"normal", "chat"}) | _NOT_IM


class Direction(StrEnum):
    """Which way the original went, named as the wrapper element is (§7, §8)."""

    RECEIVED = "received"  # delivered to the account (§7)
    SENT = "sent"  # sent by one of the account's sessions (§8)


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def eligible(message: Element, direction: Direction) -> bool:
    """§6.1 (the recommended rules, with the choices in the module docstring): whether
    ``message`` is one an IM client wants on the account's other devices."""
    if message.tag != _MESSAGE:
        return False
    tags = {child.tag for child in message}
    if tags & _OPT_OUT or tags & _CARBONS:
        return False
    type_ = message.get("type", "normal")
    if type_ not in _MESSAGE_TYPES:
        type_ = "normal"  # RFC 6121 §5.2.2
    # §6.1: "A <message/> of type "groupchat" SHOULD NOT be carbon-copied"; headlines
    # are no conversation, and errors are left out (see the module docstring).
    if type_ in _NOT_IM:
        return False
    if _DIRECT_INVITE in tags:
        return True  # §6.1: XEP-0249 invitations "SHOULD be carbon-copied"
    muc = message.find(_MUC_USER)
    if muc is not None:
        if muc.find(_MEDIATED_INVITE) is not None:
            return True  # §6.1: so are mediated invitations
        if direction is Direction.RECEIVED:
            # §6.1: a private message "from a MUC participant ... SHOULD NOT be
            # carbon-copied (these messages are already replicated by the MUC service
            # to all joined client instances)"; one to a participant is copied.
            return False
    if type_ == "chat" or _BODY in tags:
        return True
    # §6.1: "it contains payload elements typically used in IM" (receipts, chat
    # states, markers), as a type normal message without a body often does.
    return any(_namespace(tag) in _IM_PAYLOADS for tag in tags)


def wrap(message: Element, direction: Direction, account: JID, to: JID) -> Element:
    """§7, §8: the copy of ``message`` for the session ``to`` of ``account``, forwarded
    (XEP-0297) inside <received/> or <sent/>. The wrapper keeps the original's type,
    and comes from the bare JID, which clients check before believing it (§11)."""
    attributes = {"from": str(account.bare), "to": str(to)}
    type_ = message.get("type")
    if type_ is not None:
        attributes["type"] = type_
    wrapper = Element(_MESSAGE, attributes)
    carbon = SubElement(wrapper, qname(NS.CARBONS, direction.value))
    SubElement(carbon, qname(NS.FORWARD, "forwarded")).append(message)
    return wrapper


def copies(
    message: Element,
    direction: Direction,
    account: JID,
    resources: Iterable[Resource],
    got_it: Collection[JID],
) -> list[tuple[Resource, Element]]:
    """The carbons to send for ``message``: one for each of ``account``'s ``resources``
    that enabled carbons and is not in ``got_it``, the sessions that sent the original
    (§8: "excluding the sending client") or received it (§7: they "MUST NOT" get a copy).

    The copies share one snapshot of ``message``, taken now, so that nothing done to the
    original on its way (to another server, say) changes what the devices see.
    """
    targets = [r for r in resources if r.carbons and r.jid not in got_it]
    if not targets or not eligible(message, direction):
        return []
    original = deepcopy(message)
    return [(target, wrap(original, direction, account, target.jid)) for target in targets]


class CarbonsHandler:
    """§4 enable and §5 disable, for the session that asks; the server advertises
    ``urn:xmpp:carbons:2`` (§3) through this handler's ``disco_features``."""

    namespace: str = NS.CARBONS
    disco_features: tuple[str, ...] = (NS.CARBONS,)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        payload = iq[0]
        if iq.get("type") != "set" or payload.tag not in (_ENABLE, _DISABLE):
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq set with <enable/>")
        resource = self._hub.resource(context.sender)
        if resource is None:
            # §4.1, §5.1: <not-allowed/> "if the request is from a client that is not
            # hosted on this server".
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "carbons are for local clients")
        # §10.1: repeating either request is no error; the answer is a result again.
        resource.carbons = payload.tag == _ENABLE
        return iq_result(iq)
