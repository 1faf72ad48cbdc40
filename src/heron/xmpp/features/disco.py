"""Service Discovery (XEP-0030) for the server: who it is, what it does, what it hosts.

The features are not listed here: they are gathered from the ``disco_features``
of the registered :class:`~heron.xmpp.features.IqHandler`\\ s on every query,
so enabling a feature is the one step that also advertises it. Nodes (the
ad-hoc commands list of XEP-0050) are answered by :class:`DiscoNodes` providers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = [
    "ACCOUNT_IDENTITY",
    "DiscoInfo",
    "DiscoInfoHandler",
    "DiscoItem",
    "DiscoItemsHandler",
    "DiscoNodes",
    "HasDiscoFeatures",
    "Identity",
]

_INFO = qname(NS.DISCO_INFO, "query")
_ITEMS = qname(NS.DISCO_ITEMS, "query")


@dataclass(frozen=True, slots=True)
class Identity:
    """XEP-0030 §3.1 <identity/>, category and type from the Disco Categories registry."""

    category: str
    type: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class DiscoInfo:
    identities: tuple[Identity, ...]
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DiscoItem:
    """XEP-0030 §4.1 <item/>: an entity (and optionally a node) the server points to."""

    jid: str
    name: str | None = None
    node: str | None = None


ACCOUNT_IDENTITY = Identity("account", "registered")
"""XEP-0030 §3.1 for an account: Disco Categories' account/registered."""


class HasDiscoFeatures(Protocol):
    """What the info handler reads of each registered handler."""

    @property
    def disco_features(self) -> tuple[str, ...]: ...


class DiscoNodes(Protocol):
    """Answers for the nodes it owns; None means "not my node"."""

    def disco_info(self, node: str, context: IqContext) -> DiscoInfo | None: ...

    def disco_items(self, node: str, context: IqContext) -> Sequence[DiscoItem] | None: ...


def _node(iq: Element, tag: str) -> str | None:
    """The node a disco get asks about (None for the entity itself)."""
    query = iq.find(tag)
    if iq.get("type") != "get" or query is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get with <query/>")
    return query.get("node") or None


def _check_own_account(context: IqContext) -> None:
    """An account's bare JID answers only to its owner: heron keeps no data on it for others."""
    if context.to.bare != context.sender.bare:
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)


class DiscoInfoHandler:
    """XEP-0030 §3: identity server/im and the features of every registered handler."""

    namespace: str = NS.DISCO_INFO
    disco_features: tuple[str, ...] = (NS.DISCO_INFO,)

    def __init__(
        self,
        handlers: Sequence[HasDiscoFeatures],
        *,
        nodes: Sequence[DiscoNodes] = (),
        name: str = "heron",
        account: DiscoInfo = DiscoInfo((ACCOUNT_IDENTITY,), (NS.DISCO_INFO,)),
    ) -> None:
        """``handlers`` is read at each query, so handlers registered later are advertised;
        ``account`` is what an account's bare JID answers its owner (PEP, XEP-0163 §7)."""
        self._handlers = handlers
        self._account = account
        self._nodes = nodes
        self._identity = Identity("server", "im", name)

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        node = _node(iq, _INFO)
        info = self._info(node, context)
        answer = Element(_INFO, {"node": node} if node else {})
        for identity in info.identities:
            attributes = {"category": identity.category, "type": identity.type}
            if identity.name:
                attributes["name"] = identity.name
            SubElement(answer, qname(NS.DISCO_INFO, "identity"), attributes)
        for feature in info.features:
            SubElement(answer, qname(NS.DISCO_INFO, "feature"), {"var": feature})
        return iq_result(iq, answer)

    def _info(self, node: str | None, context: IqContext) -> DiscoInfo:
        if node:
            for provider in self._nodes:
                if (info := provider.disco_info(node, context)) is not None:
                    return info
            # §3.1: "If the JID or node ... does not exist, ... <item-not-found/>".
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND)
        if context.to.local:
            _check_own_account(context)
            return self._account
        features = {NS.DISCO_INFO.value}
        for handler in self._handlers:
            features.update(handler.disco_features)
        return DiscoInfo((self._identity,), tuple(sorted(features)))


class DiscoItemsHandler:
    """XEP-0030 §4: the server's items (the group-chat service) and nodes' items."""

    namespace: str = NS.DISCO_ITEMS
    disco_features: tuple[str, ...] = (NS.DISCO_ITEMS,)

    def __init__(self, items: Sequence[DiscoItem], *, nodes: Sequence[DiscoNodes] = ()) -> None:
        self._items = tuple(items)
        self._nodes = nodes

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        node = _node(iq, _ITEMS)
        answer = Element(_ITEMS, {"node": node} if node else {})
        for item in self._listed(node, context):
            attributes = {"jid": item.jid}
            if item.name:
                attributes["name"] = item.name
            if item.node:
                attributes["node"] = item.node
            SubElement(answer, qname(NS.DISCO_ITEMS, "item"), attributes)
        return iq_result(iq, answer)

    def _listed(self, node: str | None, context: IqContext) -> Sequence[DiscoItem]:
        if node:
            for provider in self._nodes:
                if (items := provider.disco_items(node, context)) is not None:
                    return items
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND)
        if context.to.local:
            _check_own_account(context)
            return ()
        return self._items
