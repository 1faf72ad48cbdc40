"""The rules of a PEP service (XEP-0163 on XEP-0060), sans-IO: node configuration, who may
read a node, who hears a publication, and the elements that carry them.

A personal eventing service lives on each account's bare JID. Its nodes are created by
the first publication (XEP-0163 §3, "auto-create"), configured by their owner with a
``pubsub#node_config`` form (XEP-0060 §8.2) or by ``publish-options`` (§7.1.5), and read
according to one of three access models: ``presence`` (the owner and contacts with a
presence subscription, the PEP default), ``open`` (anyone: OMEMO bundles) and
``whitelist`` (the owner alone: bookmarks). The asyncio side is
:mod:`heron.xmpp.pep.service`; the storage it needs is :class:`PepStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, error_reply, qname

__all__ = [
    "PUBSUB",
    "PUBSUB_ERRORS",
    "PUBSUB_EVENT",
    "PUBSUB_OWNER",
    "AccessModel",
    "Limits",
    "Listener",
    "NodeConfig",
    "PepStore",
    "PubsubError",
    "StoredItem",
    "apply_options",
    "check_item_id",
    "check_node",
    "config_form",
    "default_config",
    "event_message",
    "form_options",
    "may_read",
    "notify_targets",
    "pubsub_error_reply",
]

PUBSUB = "http://jabber.org/protocol/pubsub"  # XEP-0060 §16.2
PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"  # XEP-0060 §16.4.4
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"  # §16.4.5

_ACCESS = "pubsub#access_model"
_MAX_ITEMS = "pubsub#max_items"
_PERSIST = "pubsub#persist_items"
_MAX_FIELDS = 32
_MAX_VALUE = 1024
_NOTIFY = "+notify"


class AccessModel(StrEnum):
    """XEP-0060 §4.5, the three PEP clients use (XEP-0163 §5, XEP-0223)."""

    OPEN = "open"
    PRESENCE = "presence"
    WHITELIST = "whitelist"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one account may keep.

    An item is capped at 128 KiB of XML: a XEP-0084 avatar of ~96 KB fits in base64,
    and its notification stays under the 256 KiB stanza clients and servers accept by
    default (Prosody's c2s_stanza_size_limit, heron's ``xmpp.max_stanza_size``). The
    account's total keeps a full set (avatar, OMEMO bundles, hundreds of bookmarks)
    while bounding what a hostile account makes the database hold.
    """

    max_item_bytes: int = 128 * 1024
    max_items: int = 256  # per node; what "max" means (Prosody 0.12's pep_max_items)
    max_nodes: int = 256  # per account; OMEMO has one bundle node per device
    max_account_bytes: int = 4 * 1024 * 1024
    max_name: int = 256  # characters of a node name or an item id


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The configuration of one node; Prosody's PEP defaults (one item, presence)."""

    access_model: AccessModel = AccessModel.PRESENCE
    max_items: int = 1
    persist_items: bool = True

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_model": self.access_model.value,
                "max_items": self.max_items,
                "persist_items": self.persist_items,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> NodeConfig:
        """heron's own serialization back; anything damaged gives the defaults."""
        try:
            data = json.loads(text)
            return cls(
                AccessModel(data["access_model"]),
                int(data["max_items"]),
                bool(data["persist_items"]),
            )
        except (ValueError, KeyError, TypeError):
            return cls()


_PRIVATE_NODES = frozenset({"urn:xmpp:bookmarks:1", "storage:bookmarks"})


def default_config(node: str, limits: Limits) -> NodeConfig:
    """A new node's configuration before options: bookmarks (XEP-0402 §3, XEP-0048) stay
    the owner's even when a client forgets its publish-options, as in Prosody."""
    if node in _PRIVATE_NODES:
        return NodeConfig(AccessModel.WHITELIST, limits.max_items)
    return NodeConfig()


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A published item: its id and its payload as serialized XML."""

    id: str
    payload: str


class PepStore(Protocol):
    """Nodes and items by owner (a bare JID as text) and node name."""

    async def node_config(self, owner: str, node: str) -> str | None:
        """The node's configuration JSON, None when the node does not exist."""
        ...

    async def usage(self, owner: str) -> tuple[int, int]:
        """The owner's count of nodes and total bytes of stored payloads."""
        ...

    async def create_node(self, owner: str, node: str, config: str, now: float) -> None: ...

    async def configure(self, owner: str, node: str, config: str, max_items: int) -> None:
        """Store ``config`` and keep only the ``max_items`` newest items."""
        ...

    async def delete_node(self, owner: str, node: str) -> bool: ...

    async def publish(
        self, owner: str, node: str, item: StoredItem, max_items: int, now: float
    ) -> None:
        """Store ``item`` as the newest (replacing one of its id), keep ``max_items``."""
        ...

    async def retract(self, owner: str, node: str, item_id: str) -> bool: ...

    async def items(
        self, owner: str, node: str, ids: Sequence[str] = (), last: int | None = None
    ) -> list[StoredItem]:
        """Items oldest first: those of ``ids`` when given, else the ``last`` newest."""
        ...

    async def last_items(
        self, owners: Sequence[str], nodes: Sequence[str]
    ) -> list[tuple[str, str, str, StoredItem]]:
        """(owner, node, config JSON, newest item) of each such node that holds one."""
        ...


class PubsubError(StanzaError):
    """A refusal that also names its XEP-0060 application condition (§7.1.3, §6.5.9...)."""

    def __init__(self, condition: StanzaCondition, app: str, text: str = "") -> None:
        super().__init__(condition, text)
        self.app = app


def pubsub_error_reply(stanza: Element, error: StanzaError) -> Element:
    """The error reply, with the pubsub#errors element after the defined condition."""
    reply = error_reply(stanza, error)
    if isinstance(error, PubsubError):
        element = reply.find(qname(NS.CLIENT, "error"))
        if element is not None:
            element.insert(1, Element(qname(PUBSUB_ERRORS, error.app)))
    return reply


def _printable(text: str) -> bool:
    return all(ord(c) >= 0x20 and c not in "\x7f\ufffe\uffff" for c in text)


def check_node(node: str | None, limits: Limits) -> str:
    """A node name a client sent: present, bounded, without control characters."""
    if not node:
        raise PubsubError(StanzaCondition.BAD_REQUEST, "nodeid-required")
    if len(node) > limits.max_name or not _printable(node):
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "bad node name")
    return node


def check_item_id(item_id: str, limits: Limits) -> str:
    if not item_id or len(item_id) > limits.max_name or not _printable(item_id):
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "bad item id")
    return item_id


def form_options(form: Element | None, form_type: str) -> dict[str, str]:
    """The fields of a submitted XEP-0004 form of ``form_type``, each its first value.

    Refuses a form of another type (XEP-0060 §7.1.5 names FORM_TYPE) and oversized ones.
    """
    if form is None:
        return {}
    if form.tag != qname(NS.DATA, "x") or form.get("type", "submit") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected a submitted form")
    fields = form.findall(qname(NS.DATA, "field"))
    if len(fields) > _MAX_FIELDS:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "too many form fields")
    options: dict[str, str] = {}
    for field in fields:
        var = field.get("var")
        value = field.findtext(qname(NS.DATA, "value")) or ""
        if var and len(value) <= _MAX_VALUE:
            options[var] = value.strip()
        elif var:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "form value too long")
    if options.pop("FORM_TYPE", form_type) != form_type:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "wrong FORM_TYPE")
    return options


def _bool_option(value: str) -> bool:
    # XEP-0004 §3.3: a boolean is "0", "1", "false" or "true".
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{_PERSIST} is not a boolean")


def _max_items_option(value: str, limits: Limits) -> int:
    # XEP-0060 §16.4.4: "max" is the service's own maximum.
    if value == "max":
        return limits.max_items
    if not value.isdigit() or not 1 <= int(value) <= limits.max_items:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE, f"{_MAX_ITEMS}: 1 to {limits.max_items} or max"
        )
    return int(value)


def apply_options(config: NodeConfig, options: dict[str, str], limits: Limits) -> NodeConfig:
    """``config`` with the options heron knows applied; the others are left alone, as
    Prosody does, so a client asking for a detail heron lacks can still publish."""
    if _ACCESS in options:
        try:
            config = replace(config, access_model=AccessModel(options[_ACCESS]))
        except ValueError:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "unsupported access model") from None
    if _MAX_ITEMS in options:
        config = replace(config, max_items=_max_items_option(options[_MAX_ITEMS], limits))
    if _PERSIST in options:
        config = replace(config, persist_items=_bool_option(options[_PERSIST]))
    return config


def _field(form: Element, var: str, type_: str, value: str, choices: Iterable[str] = ()) -> None:
    field = SubElement(form, qname(NS.DATA, "field"), {"var": var, "type": type_})
    SubElement(field, qname(NS.DATA, "value")).text = value
    for choice in choices:
        option = SubElement(field, qname(NS.DATA, "option"))
        SubElement(option, qname(NS.DATA, "value")).text = choice


def config_form(config: NodeConfig) -> Element:
    """XEP-0060 §8.2.1: the node configuration form, with the fields heron applies."""
    form = Element(qname(NS.DATA, "x"), {"type": "form"})
    _field(form, "FORM_TYPE", "hidden", NODE_CONFIG)
    access = [model.value for model in AccessModel]
    _field(form, _ACCESS, "list-single", config.access_model.value, access)
    _field(form, _MAX_ITEMS, "text-single", str(config.max_items))
    _field(form, _PERSIST, "boolean", "1" if config.persist_items else "0")
    return form


def may_read(config: NodeConfig, owner: JID, reader: JID, subscribed: bool) -> None:
    """XEP-0060 §6.5.9: raise the refusal a ``reader`` gets, unless it may read the node;
    ``subscribed``: the reader has a subscription to the owner's presence."""
    if reader.bare == owner.bare or config.access_model is AccessModel.OPEN:
        return
    if config.access_model is AccessModel.PRESENCE:
        if not subscribed:
            raise PubsubError(StanzaCondition.NOT_AUTHORIZED, "presence-subscription-required")
        return
    # A whitelist with no one on it but the owner (XEP-0402 bookmarks).
    raise PubsubError(StanzaCondition.NOT_ALLOWED, "closed-node")


@dataclass(frozen=True, slots=True)
class Listener:
    """An available resource and the XEP-0115 features its entity capabilities name."""

    jid: JID
    features: frozenset[str]

    def wants(self, node: str) -> bool:
        """XEP-0163 §4.3: "NODE+notify" asks for the node's notifications."""
        return node + _NOTIFY in self.features


def notified_nodes(features: Iterable[str]) -> frozenset[str]:
    return frozenset(f[: -len(_NOTIFY)] for f in features if f.endswith(_NOTIFY) and len(f) > 7)


def notify_targets(
    node: str,
    config: NodeConfig,
    own: Sequence[Listener],
    subscribers: Sequence[Listener],
) -> list[JID]:
    """XEP-0163 §4.3: who hears a change of ``node``: the owner's resources and those of
    contacts subscribed to the owner's presence that asked for it, contacts only if the
    access model lets them read it."""
    targets = [listener.jid for listener in own if listener.wants(node)]
    if config.access_model is not AccessModel.WHITELIST:
        targets += [listener.jid for listener in subscribers if listener.wants(node)]
    return targets


def event_message(owner: JID, to: JID, event: Element, stanza_id: str) -> Element:
    """XEP-0060 §7.1.2.1: a notification, a headline from the owner's bare JID."""
    message = Element(
        qname(NS.CLIENT, "message"),
        {"from": str(owner.bare), "to": str(to), "type": "headline", "id": stanza_id},
    )
    wrapper = SubElement(message, qname(PUBSUB_EVENT, "event"))
    wrapper.append(event)
    return message
