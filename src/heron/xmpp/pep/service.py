"""The PEP service (XEP-0163) of every local account: the asyncio side of
:mod:`heron.xmpp.pep.model`, over a :class:`~heron.xmpp.pep.model.PepStore`.

It answers ``pubsub`` iqs to an account's bare JID (publish with publish-options,
retract, items; ``pubsub#owner``: configure, delete; private XML storage), hears each
local resource's available presence to learn its entity capabilities (asking disco#info
until a ``ver`` is verified, then never again, :mod:`heron.xmpp.pep.caps`), sends the
last item of each node a resource newly asks for (XEP-0163 §6.2: its owner's and its
subscriptions' nodes) and notifies publications to the resources that asked (§4.3).
Contacts on other servers are followed through the presence they send local accounts,
and asked for their caps over s2s.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from xml.etree.ElementTree import Element, ParseError, SubElement, fromstring, tostring

from heron.xmpp.errors import StanzaCondition, StanzaError, loggable
from heron.xmpp.features import IqContext
from heron.xmpp.features.local import Hub, Resource
from heron.xmpp.features.roster import Roster, subscribers_in, subscriptions_in
from heron.xmpp.jid import JID
from heron.xmpp.pep.avatar import (
    AVATAR_DATA,
    AVATAR_METADATA,
    CONVERSION,
    VCARD4,
    VCARD4_NODE,
    avatar_of_photo,
    current_id,
    photo_of_avatar,
    stamp_presence,
)
from heron.xmpp.pep.bookmarks import BOOKMARKS, LEGACY_BOOKMARKS, from_legacy, to_legacy
from heron.xmpp.pep.caps import Caps, CapsCache, parse_caps, verify
from heron.xmpp.pep.model import (
    NODE_CONFIG,
    PUBLISH_OPTIONS,
    PUBSUB,
    PUBSUB_EVENT,
    PUBSUB_OWNER,
    Limits,
    Listener,
    NodeConfig,
    PepStore,
    PubsubError,
    StoredItem,
    apply_options,
    check_item_id,
    check_node,
    config_form,
    default_config,
    event_message,
    form_options,
    may_read,
    notified_nodes,
    notify_targets,
    pubsub_error_reply,
)
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["CAPS_QUERY_PREFIX", "DISCO_FEATURES", "PRIVATE", "PepService"]

log = logging.getLogger(__name__)

CAPS_QUERY_PREFIX = "heron-caps-"
"""The id prefix of the server's disco#info queries, whose results come back here."""
_LIMITS = Limits()
MAX_QUERIES = 1000  # caps queries awaiting an answer; older ones are forgotten
MAX_REMOTE = 10_000  # contacts' resources on other servers followed at once
MAX_AVATAR_IDS = 10_000  # accounts whose current avatar id is remembered

DISCO_FEATURES = tuple(
    f"{PUBSUB}#{feature}"
    for feature in (
        "access-open",
        "access-presence",
        "access-whitelist",
        "auto-create",
        "config-node",
        "create-nodes",
        "delete-items",
        "delete-nodes",
        "filtered-notifications",
        "item-ids",
        "last-published",
        "persistent-items",
        "publish",
        "publish-options",
        "retract-items",
        "retrieve-items",
    )
) + (f"{BOOKMARKS}#compat", CONVERSION, VCARD4_NODE)
"""XEP-0060 §10 features, only those that work, XEP-0402's feature for the conversion of
legacy bookmarks (XEP-0411), XEP-0398's for avatars and XEP-0292's for vCard4: what the
account advertises (XEP-0163 §7, XEP-0398 §2)."""

PRIVATE = "jabber:iq:private"  # XEP-0049
_PRIVATE = {"pubsub#access_model": "whitelist", "pubsub#persist_items": "true"}
_MAX = "pubsub#max_items"

_PUBLISH_OPTIONS = qname(PUBSUB, "publish-options")
_CONFIGURE = qname(PUBSUB, "configure")


def _parse(text: str) -> Element | None:
    # Only heron's own serialization is stored, so ElementTree's parser is safe here.
    try:
        return fromstring(text)
    except ParseError:
        log.warning("dropping a stored PEP item that does not parse")
        return None


def _request(pubsub: Element) -> tuple[Element, Element | None]:
    """The one request of a ``<pubsub/>`` and the form of its options (§7.1.5, §8.1.3)."""
    options = [c for c in pubsub if c.tag in (_PUBLISH_OPTIONS, _CONFIGURE)]
    requests = [c for c in pubsub if c.tag not in (_PUBLISH_OPTIONS, _CONFIGURE)]
    if len(requests) != 1 or len(options) > 1:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected one pubsub request")
    return requests[0], options[0].find(qname(NS.DATA, "x")) if options else None


class _Handler:
    """One namespace's iq handler, answered by the service."""

    def __init__(
        self,
        namespace: str,
        answer: Callable[[Element, IqContext], Awaitable[Element]],
        disco_features: tuple[str, ...] = (),
    ) -> None:
        self.namespace = namespace
        self.disco_features = disco_features
        self._answer = answer

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        try:
            return await self._answer(iq, context)
        except StanzaError as error:
            return pubsub_error_reply(iq, error)


class PepService:
    """Every local account's PEP nodes; ``handlers`` go to the router, which hands this
    service the presence of local resources and the results of its caps queries."""

    def __init__(
        self,
        hub: Hub,
        roster: Roster,
        store: PepStore,
        *,
        clock: Callable[[], float],
        new_item_id: Callable[[], str],
        limits: Limits = _LIMITS,
        caps_cache_size: int = 10_000,
    ) -> None:
        self._hub = hub
        self._roster = roster
        self._store = store
        self._clock = clock
        self._new_item_id = new_item_id
        self._limits = limits
        self._cache = CapsCache(caps_cache_size)
        self._features: dict[JID, frozenset[str]] = {}
        self._queries: dict[str, tuple[JID, Caps]] = {}
        self._pending: dict[JID, str] = {}
        self._remote: dict[JID, set[JID]] = {}
        """Contacts' resources on other servers: the local accounts each sends presence to."""
        self._remote_of: dict[JID, set[JID]] = {}
        self._heard: defaultdict[JID, set[JID]] = defaultdict(set)
        """Local resources: the accounts whose last items each was sent."""
        self._asking: dict[tuple[str, str], set[JID]] = {}
        self._avatar_ids: OrderedDict[JID, str | None] = OrderedDict()
        """Accounts' current XEP-0084 avatar ids, for the presence each resource sends."""
        self._avatar_writes = 0
        self.handlers = (
            _Handler(PUBSUB, self._pubsub),
            _Handler(PUBSUB_OWNER, self._owner),
            _Handler(PRIVATE, self._private, (PRIVATE,)),
            _Handler(VCARD4, self._vcard4),
        )

    # --- presence and capabilities ------------------------------------------------------

    async def available(self, resource: Resource) -> None:
        """A local resource sent available presence: learn what it wants notified."""
        if resource.presence is not None:
            await self._caps_of(resource.jid, resource.presence)

    async def unavailable(self, resource: Resource) -> None:
        await self._gone(resource.jid)

    async def contact_presence(self, stanza: Element, sender: JID, to: JID) -> None:
        """Presence from a contact to the local account ``to``: the contact's resource
        hears ``to``'s nodes if ``to`` lets its account see its presence (XEP-0163 §4.3
        "subscribed contacts"), and gets their last items the first time (§6.2)."""
        owner = to.bare
        if sender.is_bare:
            return
        if self._hub.bound(sender.bare):
            await self._local_contact(stanza, sender, owner)
            return
        if stanza.get("type") == "unavailable":
            following = self._remote.get(sender, set())
            following.discard(owner)
            if not following:
                await self._gone(sender)
            return
        if stanza.get("type") is not None:
            return
        if sender.bare not in await self._roster.subscribers(owner):
            return
        owners = self._remote.get(sender)
        if owners is None:
            if len(self._remote) >= MAX_REMOTE:
                return
            owners = self._remote[sender] = set()
            self._remote_of.setdefault(sender.bare, set()).add(sender)
        new_owner = owner not in owners
        owners.add(owner)
        known = self._features.get(sender)
        if new_owner and known:
            # Already following other local accounts: this one's last items too (§6.2).
            await self._send_last(sender, sorted(notified_nodes(known)), [owner])
        await self._caps_of(sender, stanza)

    async def _local_contact(self, stanza: Element, sender: JID, owner: JID) -> None:
        """A local resource's caps come with its own presence; this is the first presence
        it sends ``owner`` since, as after a new mutual subscription: ``owner``'s last
        items, unless it already had them."""
        features = self._features.get(sender)
        if stanza.get("type") is not None or not features or owner in self._heard[sender]:
            return
        if sender.bare in await self._roster.subscribers(owner):
            self._heard[sender].add(owner)
            await self._send_last(sender, sorted(notified_nodes(features)), [owner])

    async def _caps_of(self, jid: JID, presence: Element) -> None:
        """Every resource announcing a ``ver`` not yet verified is asked: the first true
        answer serves them all, and a client that never answers or lies delays nobody."""
        caps = parse_caps(presence)
        if caps is None:
            self._forget(self._pending.get(jid, ""))
            await self._interested(jid, frozenset())
            return
        features = self._cache.get(caps)
        if features is not None:
            self._forget(self._pending.get(jid, ""))
            await self._interested(jid, features)
            return
        asked = self._queries.get(self._pending.get(jid, ""))
        if asked is None or asked[1] != caps:
            await self._ask(jid, caps)

    async def _gone(self, jid: JID) -> None:
        """``jid`` is unavailable: forget its features and any query asked of it."""
        self._features.pop(jid, None)
        self._heard.pop(jid, None)
        if self._remote.pop(jid, None) is not None:
            remote = self._remote_of.get(jid.bare, set())
            remote.discard(jid)
            if not remote:
                self._remote_of.pop(jid.bare, None)
        self._forget(self._pending.get(jid, ""))

    async def _ask(self, jid: JID, caps: Caps) -> None:
        """XEP-0115 §6.2: disco#info of ``node#ver``, from this server (a local domain)."""
        self._forget(self._pending.get(jid, ""))
        owners = self._remote.get(jid)
        server = JID.make("", min(owners, key=str).domain if owners else jid.domain)
        query_id = CAPS_QUERY_PREFIX + self._hub.new_id()
        self._queries[query_id] = (jid, caps)
        self._pending[jid] = query_id
        self._asking.setdefault(caps.key, set()).add(jid)
        while len(self._queries) > MAX_QUERIES:
            self._forget(next(iter(self._queries)))
        iq = Element(
            qname(NS.CLIENT, "iq"),
            {"type": "get", "id": query_id, "to": str(jid), "from": str(server)},
        )
        SubElement(iq, qname(NS.DISCO_INFO, "query"), {"node": f"{caps.node}#{caps.ver}"})
        await self._hub.route(iq, server, jid)

    def _forget(self, query_id: str) -> None:
        """Drop a pending query, and its resource from those waiting for that ``ver``."""
        asked = self._queries.pop(query_id, None)
        if asked is None:
            return
        jid, caps = asked
        self._pending.pop(jid, None)
        waiting = self._asking.get(caps.key)
        if waiting is not None:
            waiting.discard(jid)
            if not waiting:
                del self._asking[caps.key]

    async def caps_result(self, iq: Element, sender: JID) -> None:
        """The answer to one of :meth:`_ask`'s queries (the router's result sink)."""
        query_id = iq.get("id", "")
        asked = self._queries.get(query_id)
        if asked is None or asked[0] != sender:
            return  # not ours, or another JID answering for it
        caps = asked[1]
        query = iq.find(qname(NS.DISCO_INFO, "query"))
        features = None
        if iq.get("type") == "result" and query is not None:
            features = verify(caps, query)
        if features is None:
            log.info("capabilities of %s do not match their hash", loggable(sender))
            self._forget(query_id)
            await self._interested(sender, frozenset())
            return
        self._cache.put(caps, features)
        waiting = sorted(self._asking.get(caps.key, ()), key=str)
        for waiter in waiting:
            self._forget(self._pending.get(waiter, ""))
        for waiter in waiting:
            resource = self._hub.resource(waiter)
            if waiter in self._remote or (resource is not None and resource.available):
                await self._interested(waiter, features)

    async def _interested(self, jid: JID, features: frozenset[str]) -> None:
        """Record ``jid``'s features; the last item of each node it newly wants (§6.2)."""
        old = self._features.get(jid, frozenset())
        self._features[jid] = features
        wanted = notified_nodes(features) - notified_nodes(old)
        if wanted:
            publishers = await self._publishers(jid)
            if jid not in self._remote:
                self._heard[jid].update(publishers)
            await self._send_last(jid, sorted(wanted), publishers)

    async def _publishers(self, jid: JID) -> list[JID]:
        """Whose nodes ``jid`` hears: for a local resource its own account's and its
        subscriptions'; for a contact elsewhere, the local accounts it sends presence to."""
        if jid in self._remote:
            return sorted(self._remote[jid], key=str)
        return [jid.bare, *subscriptions_in(await self._roster.items(jid.bare))]

    async def _send_last(self, jid: JID, nodes: Sequence[str], owners: Sequence[JID]) -> None:
        publishers = {str(owner): owner for owner in owners}
        for publisher, node, config_text, item in await self._store.last_items(
            list(publishers), nodes
        ):
            config = NodeConfig.from_json(config_text)
            try:
                may_read(config, publishers[publisher], jid, subscribed=True)
            except StanzaError:
                continue
            await self._send(publishers[publisher], jid, self._items_event(node, [item]))

    # --- requests -----------------------------------------------------------------

    async def _pubsub(self, iq: Element, context: IqContext) -> Element:
        pubsub = iq.find(qname(PUBSUB, "pubsub"))
        if pubsub is None or not context.to.local:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        owner = context.to.bare
        request, form = _request(pubsub)
        if iq.get("type") == "get" and request.tag == qname(PUBSUB, "items"):
            return iq_result(iq, await self._items(owner, context.sender, request))
        if iq.get("type") != "set":
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)
        if owner != context.sender.bare:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only the owner changes PEP nodes")
        if request.tag == qname(PUBSUB, "publish"):
            return iq_result(iq, await self._publish(owner, request, form))
        if request.tag == qname(PUBSUB, "retract"):
            await self._retract(owner, request)
            return iq_result(iq)
        if request.tag == qname(PUBSUB, "create"):
            node = check_node(request.get("node"), self._limits)
            options = form_options(form, NODE_CONFIG)
            config = apply_options(default_config(node, self._limits), options, self._limits)
            await self._create(owner, node, config)
            return iq_result(iq)
        # §6.1: PEP subscriptions come from presence and +notify (XEP-0163 §4).
        raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)

    async def _owner(self, iq: Element, context: IqContext) -> Element:
        pubsub = iq.find(qname(PUBSUB_OWNER, "pubsub"))
        if pubsub is None or len(pubsub) != 1:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected one owner request")
        owner = context.sender.bare
        if not context.to.local:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        request = pubsub[0]
        node = check_node(request.get("node"), self._limits)
        config = await self._config(owner, node)
        if request.tag == qname(PUBSUB_OWNER, "configure"):
            if iq.get("type") == "get":
                answer = Element(qname(PUBSUB_OWNER, "pubsub"))
                SubElement(answer, qname(PUBSUB_OWNER, "configure"), {"node": node}).append(
                    config_form(config)
                )
                return iq_result(iq, answer)
            form = request.find(qname(NS.DATA, "x"))
            if form is not None and form.get("type") == "cancel":
                return iq_result(iq)
            new = apply_options(config, form_options(form, NODE_CONFIG), self._limits)
            await self._store.configure(str(owner), node, new.to_json(), self._max(new))
            self._changed(owner, node)
            return iq_result(iq)
        if request.tag == qname(PUBSUB_OWNER, "delete") and iq.get("type") == "set":
            await self._store.delete_node(str(owner), node)
            self._changed(owner, node)
            event = Element(qname(PUBSUB_EVENT, "delete"), {"node": node})
            await self._notify(owner, node, config, event)
            return iq_result(iq)
        raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)

    async def _config(self, owner: JID, node: str) -> NodeConfig:
        text = await self._store.node_config(str(owner), node)
        if text is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
        return NodeConfig.from_json(text)

    def _max(self, config: NodeConfig) -> int:
        return config.max_items if config.persist_items else 0

    async def _create(self, owner: JID, node: str, config: NodeConfig) -> None:
        if await self._store.node_config(str(owner), node) is not None:
            raise StanzaError(StanzaCondition.CONFLICT, "the node exists")  # §8.1.3
        nodes, _ = await self._store.usage(str(owner))
        if nodes >= self._limits.max_nodes:
            log.info("PEP node refused to %s: %d nodes already", owner, nodes)
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many nodes")
        await self._store.create_node(str(owner), node, config.to_json(), self._clock())

    async def _publish(self, owner: JID, publish: Element, form: Element | None) -> Element:
        """XEP-0060 §7.1; the node is created if need be (§7.1.4, XEP-0163 §3)."""
        node = check_node(publish.get("node"), self._limits)
        items = publish.findall(qname(PUBSUB, "item"))
        if len(items) != 1 or len(publish) != 1:
            raise PubsubError(StanzaCondition.BAD_REQUEST, "invalid-payload", "publish one item")
        item = items[0]
        if len(item) != 1:
            # §7.1.3.6, §7.1.3.7: a persistent node needs exactly one payload element.
            raise PubsubError(StanzaCondition.BAD_REQUEST, "invalid-payload", "one payload")
        item_id = check_item_id(item.get("id") or self._new_item_id(), self._limits)
        options = form_options(form, PUBLISH_OPTIONS)
        await self.publish(owner, node, item_id, item[0], options)
        answer = Element(qname(PUBSUB, "pubsub"))
        published = SubElement(answer, qname(PUBSUB, "publish"), {"node": node})
        SubElement(published, qname(PUBSUB, "item"), {"id": item_id})
        return answer

    async def publish(
        self, owner: JID, node: str, item_id: str, payload: Element, options: dict[str, str]
    ) -> None:
        """Publish ``payload`` as ``item_id`` with publish-options ``options`` (§7.1.5)."""
        try:
            text = tostring(payload, encoding="unicode")
        except (RecursionError, UnicodeEncodeError):
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "item cannot be stored") from None
        size = len(text.encode())
        if size > self._limits.max_item_bytes:
            log.info("PEP item of %d bytes refused to %s on %s", size, owner, loggable(node))
            raise PubsubError(StanzaCondition.NOT_ACCEPTABLE, "payload-too-big")
        stored = await self._store.node_config(str(owner), node)
        if stored is None:
            config = apply_options(default_config(node, self._limits), options, self._limits)
            await self._create(owner, node, config)
        else:
            config = NodeConfig.from_json(stored)
            if apply_options(config, options, self._limits) != config:
                # §7.1.5: the node's configuration is not what the publisher requires.
                raise PubsubError(StanzaCondition.CONFLICT, "precondition-not-met")
        if config.persist_items:
            _, used = await self._store.usage(str(owner))
            if used + size > self._limits.max_account_bytes:
                log.info("PEP item refused to %s: %d bytes stored already", owner, used)
                raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "PEP storage is full")
            record = StoredItem(item_id, text)
            await self._store.publish(str(owner), node, record, config.max_items, self._clock())
            self._changed(owner, node)
        event_item = Element(qname(PUBSUB_EVENT, "item"), {"id": item_id})
        event_item.append(payload)
        event = Element(qname(PUBSUB_EVENT, "items"), {"node": node})
        event.append(event_item)
        await self._notify(owner, node, config, event)

    async def _retract(self, owner: JID, retract: Element) -> None:
        """XEP-0060 §7.2; subscribers hear it when the publisher asks (§7.2.2.1)."""
        node = check_node(retract.get("node"), self._limits)
        items = retract.findall(qname(PUBSUB, "item"))
        if len(items) != 1:
            raise PubsubError(StanzaCondition.BAD_REQUEST, "item-required")
        item_id = check_item_id(items[0].get("id", ""), self._limits)
        config = await self._config(owner, node)
        if not await self._store.retract(str(owner), node, item_id):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such item")
        self._changed(owner, node)
        if retract.get("notify") in ("1", "true"):
            await self._notify_retract(owner, node, config, item_id)

    async def _notify_retract(
        self, owner: JID, node: str, config: NodeConfig, item_id: str
    ) -> None:
        event = Element(qname(PUBSUB_EVENT, "items"), {"node": node})
        SubElement(event, qname(PUBSUB_EVENT, "retract"), {"id": item_id})
        await self._notify(owner, node, config, event)

    # --- private XML storage (XEP-0049) and bookmark conversion (XEP-0411) ----------

    async def _private(self, iq: Element, context: IqContext) -> Element:
        """XEP-0049 §3 over PEP: each namespace a whitelist node of one item, and legacy
        bookmarks converted to and from XEP-0402's node (XEP-0411 §3)."""
        query = iq.find(qname(PRIVATE, "query"))
        owner = context.sender.bare
        if query is None or len(query) != 1:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected one element to store")
        if context.to.local and context.to.bare != owner:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only your own private storage")
        element = query[0]
        namespace = element.tag[1:].partition("}")[0] if element.tag.startswith("{") else ""
        if namespace in ("", NS.CLIENT, NS.SERVER, PRIVATE):
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "not a private namespace")
        node = check_node(namespace, self._limits)
        answer = Element(qname(PRIVATE, "query"))
        if iq.get("type") == "get":
            if namespace == LEGACY_BOOKMARKS:
                stored = await self._store.items(str(owner), BOOKMARKS)
                answer.append(to_legacy([(item.id, _parse(item.payload)) for item in stored]))
            else:
                current = await self._store.items(str(owner), node, ["current"])
                payload = _parse(current[0].payload) if current else None
                answer.append(payload if payload is not None else Element(element.tag))
            return iq_result(iq, answer)
        if namespace == LEGACY_BOOKMARKS:
            await self._legacy_bookmarks(owner, element)
        else:
            await self.publish(owner, node, "current", element, {**_PRIVATE, _MAX: "1"})
        return iq_result(iq)

    async def _legacy_bookmarks(self, owner: JID, storage: Element) -> None:
        """A legacy client's whole list: publish what changed, retract what is gone."""
        conferences = from_legacy(storage, self._limits.max_items)
        if conferences is None:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many bookmarks")
        stored = {item.id: item.payload for item in await self._store.items(str(owner), BOOKMARKS)}
        for room, conference in conferences.items():
            if stored.get(room) != tostring(conference, encoding="unicode"):
                await self.publish(owner, BOOKMARKS, room, conference, {**_PRIVATE, _MAX: "max"})
        gone = sorted(set(stored) - set(conferences))
        if gone:
            config = await self._config(owner, BOOKMARKS)
            for room in gone:
                await self._store.retract(str(owner), BOOKMARKS, room)
                await self._notify_retract(owner, BOOKMARKS, config, room)

    async def _read(
        self, owner: JID, reader: JID, node: str, ids: Sequence[str] = (), last: int | None = None
    ) -> list[StoredItem]:
        """The items of ``node`` that :meth:`PepStore.items` names, if ``reader`` may read
        them (XEP-0060 §6.5.9); raises the refusal otherwise."""
        config = await self._config(owner, node)
        if reader.bare != owner:
            subscribed = reader.bare in subscribers_in(await self._roster.items(owner))
            may_read(config, owner, reader, subscribed)
        return await self._store.items(str(owner), node, ids, last)

    async def _items(self, owner: JID, reader: JID, request: Element) -> Element:
        """XEP-0060 §6.5: all items, the last ``max_items`` (§6.5.7) or those asked by id."""
        node = check_node(request.get("node"), self._limits)
        ids = [check_item_id(i.get("id", ""), self._limits) for i in request]
        last = None
        if (max_items := request.get("max_items")) is not None:
            if not max_items.isdigit() or len(max_items) > 6:
                raise StanzaError(StanzaCondition.BAD_REQUEST, "bad max_items")
            last = int(max_items)
        stored = await self._read(owner, reader, node, ids, last)
        answer = Element(qname(PUBSUB, "pubsub"))
        listed = SubElement(answer, qname(PUBSUB, "items"), {"node": node})
        for record in stored:
            item = SubElement(listed, qname(PUBSUB, "item"), {"id": record.id})
            if (payload := _parse(record.payload)) is not None:
                item.append(payload)
        return answer

    # --- avatar conversion (XEP-0398) and vCard4 (XEP-0292) ------------------------

    def forget(self, account: JID) -> None:
        """The account was deleted with its nodes: its avatar id is no longer known."""
        self._avatar_ids.pop(account.bare, None)

    def _changed(self, owner: JID, node: str) -> None:
        if node == AVATAR_METADATA:
            self._avatar_writes += 1
            self._avatar_ids.pop(owner, None)

    async def avatar_id(self, owner: JID) -> str | None:
        """The id (SHA-1) of ``owner``'s current avatar, remembered until it changes; ""
        when the metadata says there is none (XEP-0084 §4.5); None when nothing says."""
        if owner in self._avatar_ids:
            self._avatar_ids.move_to_end(owner)
            return self._avatar_ids[owner]
        writes = self._avatar_writes
        stored = await self._store.items(str(owner), AVATAR_METADATA, last=1)
        current = current_id(_parse(stored[0].payload)) if stored else None
        found = current[0] if current else ("" if stored else None)
        if writes == self._avatar_writes:  # no change while the store was read
            self._avatar_ids[owner] = found
            while len(self._avatar_ids) > MAX_AVATAR_IDS:
                self._avatar_ids.popitem(last=False)
        return found

    async def stamp(self, owner: JID, presence: Element) -> None:
        """XEP-0398 §4: the avatar's hash in an available presence of ``owner``."""
        stamp_presence(presence, await self.avatar_id(owner))

    async def photo(self, owner: JID, reader: JID) -> Element | None:
        """XEP-0398 §3.1: ``owner``'s avatar as a vCard PHOTO, if ``reader`` may read the
        avatar's nodes; None when there is none or the reader may not see it."""
        try:
            metadata = await self._read(owner, reader, AVATAR_METADATA, last=1)
            current = current_id(_parse(metadata[0].payload)) if metadata else None
            if current is None:
                return None
            data = await self._read(owner, reader, AVATAR_DATA, [current[0]])
        except StanzaError:
            return None
        return photo_of_avatar(*current, _parse(data[0].payload) if data else None)

    async def set_photo(self, owner: JID, photo: Element) -> None:
        """XEP-0398 §3.2: a vCard PHOTO published as the data item, then the metadata
        (which notifies); an empty PHOTO publishes an empty metadata (XEP-0084 §4.5)."""
        avatar = avatar_of_photo(photo)
        if avatar is None:
            if await self._store.node_config(str(owner), AVATAR_METADATA) is not None:
                empty = Element(qname(AVATAR_METADATA, "metadata"))
                await self.publish(owner, AVATAR_METADATA, self._new_item_id(), empty, {})
            return
        await self.publish(owner, AVATAR_DATA, avatar.id, avatar.data_item(), {})
        await self.publish(owner, AVATAR_METADATA, avatar.id, avatar.metadata_item(), {})

    async def _vcard4(self, iq: Element, context: IqContext) -> Element:
        """XEP-0292 §4.1 (IQ-based publication and retrieval) over the PEP item "current"
        of ``urn:xmpp:vcard4`` (§4.2), read as that node's access model allows."""
        vcard = iq.find(qname(VCARD4, "vcard"))
        if vcard is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected <vcard/>")
        owner = context.to.bare if context.to.local else context.sender.bare
        if iq.get("type") == "set":
            if owner != context.sender.bare:
                raise StanzaError(StanzaCondition.FORBIDDEN, "only your own vCard can be set")
            await self.publish(owner, VCARD4_NODE, "current", vcard, {})
            return iq_result(iq)
        try:
            stored = await self._read(owner, context.sender, VCARD4_NODE, ["current"])
        except StanzaError as error:
            if error.condition is not StanzaCondition.ITEM_NOT_FOUND:
                raise
            stored = []
        found = _parse(stored[0].payload) if stored else None
        if found is None or found.tag != qname(VCARD4, "vcard"):
            # §4.1.1: "If no vCard exists, the server MUST return ... an empty <vcard/>".
            found = Element(qname(VCARD4, "vcard"))
        return iq_result(iq, found)

    # --- notifications ------------------------------------------------------------

    def _items_event(self, node: str, items: Sequence[StoredItem]) -> Element:
        event = Element(qname(PUBSUB_EVENT, "items"), {"node": node})
        for record in items:
            item = SubElement(event, qname(PUBSUB_EVENT, "item"), {"id": record.id})
            if (payload := _parse(record.payload)) is not None:
                item.append(payload)
        return event

    def _listeners(self, bare: JID, owner: JID) -> list[Listener]:
        """The available resources of ``bare``: local ones, else those on another server
        that send their presence to ``owner``."""
        local = [r.jid for r in self._hub.bound(bare) if r.available]
        remote = (j for j in self._remote_of.get(bare, ()) if owner in self._remote.get(j, ()))
        jids = local or sorted(remote, key=str)
        return [Listener(jid, self._features.get(jid, frozenset())) for jid in jids]

    async def _notify(self, owner: JID, node: str, config: NodeConfig, event: Element) -> None:
        """XEP-0163 §4.3: the owner's and subscribed contacts' resources that asked."""
        contacts = [
            listener
            for contact in await self._roster.subscribers(owner)
            for listener in self._listeners(contact, owner)
        ]
        for target in notify_targets(node, config, self._listeners(owner, owner), contacts):
            await self._send(owner, target, event)

    async def _send(self, owner: JID, to: JID, event: Element) -> None:
        message = event_message(owner, to, event, self._hub.new_id())
        await self._hub.route(message, owner.bare, to)
