"""The stanza router: local sessions, and where each stanza goes (RFC 6120 §10, RFC 6121 §8).

Client streams hand their stanzas to :meth:`Router.receive_from_session`;
features and components send through :meth:`Router.route`. Both come with their
addresses already parsed (the stream parsed ``to`` and stamped ``from``; the others
hold the JIDs they wrote), and the router never parses them again. It decides
by the ``to`` address (:meth:`Router.locate`): this server and its accounts,
a component's domain (group chat), or another domain, which goes to the
:class:`RemoteDomains` federation gives it (remote-server-not-found without one).

For a local account it applies RFC 6121 §8.5: messages to the bare JID go to
the available resources of highest non-negative priority or, with none, to
offline storage (XEP-0160); iqs to the server or to one's own bare JID go to
the :class:`heron.xmpp.features.IqHandler` of the payload namespace. Presence
and the roster are the features in ``features.presence`` and
``features.roster``, which the router builds over the stores it is given.
Message Carbons (XEP-0280, ``features.carbons``) are applied here too, since
only the router knows which sessions sent and received each message.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from enum import Enum
from typing import Protocol
from xml.etree.ElementTree import Element

from heron.xmpp.errors import (
    StanzaCondition,
    StanzaError,
    StreamCondition,
)
from heron.xmpp.features import DomainComponent, IqContext, IqHandler
from heron.xmpp.features.carbons import CarbonsHandler, Direction, copies
from heron.xmpp.features.local import Resource, Session
from heron.xmpp.features.mam import ArchiveSettings, ArchiveStore, MessageArchive
from heron.xmpp.features.offline import OfflineMessages, OfflineStore
from heron.xmpp.features.presence import LoginStore, PresenceFeature, SeparateReads
from heron.xmpp.features.push import PushNotifications
from heron.xmpp.features.roster import MAX_ITEMS, Roster, RosterStore
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, error_reply, qname

__all__ = ["RemoteDomains", "Router", "Session", "Where"]

log = logging.getLogger(__name__)

MAX_RESOURCES = 100  # bound resources per account
_RESOURCE_ATTEMPTS = 8

_MESSAGE = qname(NS.CLIENT, "message")
_PRESENCE = qname(NS.CLIENT, "presence")
_IQ = qname(NS.CLIENT, "iq")
_MESSAGE_TYPES = frozenset({"normal", "chat", "groupchat", "headline", "error"})


class RemoteDomains(Protocol):
    """Other domains' servers, reached over s2s (:mod:`heron.xmpp.s2s.server`)."""

    async def send(self, stanza: Element, sender: JID, to: JID) -> None:
        """Send ``stanza`` on its way; raises StanzaError when it cannot even be queued.
        A stanza that cannot be delivered later comes back through :meth:`Router.bounce`."""
        ...


ResultSink = Callable[[Element, JID], Awaitable[None]]


class Where(Enum):
    """Where an address lives, as far as this node knows."""

    LOCAL = "local"  # this server or one of its accounts
    COMPONENT = "component"  # a registered component's domain
    REMOTE = "remote"  # another server (RFC 6120 §10.4), over s2s


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


class Router:
    """Implements :class:`heron.xmpp.features.StanzaRouter` for the configured hosts.

    ``exists`` tells whether an account exists; ``blocked(owner, other)``
    (XEP-0191) whether ``owner`` blocks ``other``; ``is_admin`` whether an
    account may use admin commands. ``clock`` gives Unix seconds (offline
    stamps) and ``new_resource`` a fresh random resourcepart. ``login`` reads what an
    initial presence needs in one go; without it, the roster and offline stores do.
    With an ``archive`` store and ``archive_ids`` (random archive ids), messages are
    archived (XEP-0313, ``features.mam``) on the way out of and into an account.
    """

    def __init__(
        self,
        *,
        hosts: Iterable[str],
        exists: Callable[[JID], Awaitable[bool]],
        roster: RosterStore,
        offline: OfflineStore,
        clock: Callable[[], float],
        new_resource: Callable[[], str],
        blocked: Callable[[JID, JID], Awaitable[bool]] | None = None,
        is_admin: Callable[[JID], bool] = lambda _account: False,
        max_roster_items: int = MAX_ITEMS,
        login: LoginStore | None = None,
        archive: ArchiveStore | None = None,
        archive_settings: ArchiveSettings | None = None,
        archive_ids: Callable[[], str] | None = None,
    ) -> None:
        self._hosts = frozenset(JID.make("", host).domain for host in hosts)
        self._exists = exists
        self._blocked = blocked
        self._is_admin = is_admin
        self._new_resource = new_resource
        self._ids = itertools.count(1)
        self._accounts: dict[JID, list[Resource]] = {}
        self._by_session: dict[Session, Resource] = {}
        # Sessions a newer one replaced (bind conflict), until their streams unbind.
        self._replaced: dict[Session, Resource] = {}
        self._handlers: dict[str, IqHandler] = {}
        self._account_namespaces: set[str] = set()
        self._components: dict[str, DomainComponent] = {}
        self._remote: RemoteDomains | None = None
        self._results: dict[str, ResultSink] = {}
        self.roster = Roster(self, roster, max_items=max_roster_items)
        self.offline = OfflineMessages(offline, clock)
        self.presence = PresenceFeature(
            self, self.roster, self.offline, login or SeparateReads(roster, offline)
        )
        self.carbons = CarbonsHandler(self)
        self.register_iq_handler(self.roster)
        self.register_iq_handler(self.carbons)
        self.push: PushNotifications | None = None
        """XEP-0357: told of messages no session of their account sees now."""
        self.archive: MessageArchive | None = None
        if archive is not None:
            if archive_ids is None:
                raise ValueError("an archive needs archive_ids, its random ids")
            self.archive = MessageArchive(
                archive,
                self,
                settings=archive_settings or ArchiveSettings(),
                in_roster=self._in_roster,
                clock=clock,
                ids=archive_ids,
            )
            # For other accounts too, so that a query to someone else's archive is
            # refused as forbidden (XEP-0313 §4), not as an unknown namespace.
            self.register_iq_handler(self.archive, for_accounts=True)

    # --- registration -------------------------------------------------------------

    def register_iq_handler(self, handler: IqHandler, *, for_accounts: bool = False) -> None:
        """Answer iqs of ``handler.namespace`` to the server and to one's own account;
        with ``for_accounts``, also those to other accounts' bare JIDs (vCard).
        """
        if handler.namespace in self._handlers:
            raise ValueError(f"two handlers for {handler.namespace}")
        self._handlers[handler.namespace] = handler
        if for_accounts:
            self._account_namespaces.add(handler.namespace)

    def register_results(self, prefix: str, sink: ResultSink) -> None:
        """Hand iq results and errors to the server whose id starts with ``prefix`` to
        ``sink``, with their sender: the answers to a feature's own queries (XEP-0115)."""
        self._results[prefix] = sink

    def register_component(self, component: DomainComponent) -> None:
        domain = JID.make("", component.domain).domain
        if domain in self._hosts or domain in self._components:
            raise ValueError(f"{domain} is already served")
        self._components[domain] = component

    def federate(self, remote: RemoteDomains) -> None:
        """Send what is addressed to other domains through ``remote`` (RFC 6120 §10.4)."""
        self._remote = remote

    @property
    def local_domains(self) -> frozenset[str]:
        """The hosts and component domains this router delivers to itself."""
        return self._hosts | frozenset(self._components)

    # --- sessions -----------------------------------------------------------------

    def bind(self, session: Session, resource: str | None) -> JID:
        """RFC 6120 §7: give ``session`` its full JID; raises StanzaError to refuse.

        A resource already bound is taken over and the older session closed
        with <conflict/> (§7.7.2.2, the third option; Prosody's default).
        """
        bare = session.jid.bare
        if session in self._by_session:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "already bound")  # §7.6
        if bare.domain not in self._hosts or not bare.local:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "not an account here")
        if resource:
            full = bare.with_resource(resource)  # raises jid-malformed
        else:
            full = self._random_resource(bare)
        old = self.resource(full)
        if old is None and len(self._accounts.get(bare, ())) >= MAX_RESOURCES:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many resources")
        if old is not None:
            self._forget(old)
            self._replaced[old.session] = old
            old.session.close(StreamCondition.CONFLICT)
        entry = Resource(session, full)
        self._accounts.setdefault(bare, []).append(entry)
        self._by_session[session] = entry
        return full

    def _random_resource(self, bare: JID) -> JID:
        for _ in range(_RESOURCE_ATTEMPTS):
            full = bare.with_resource(self._new_resource())
            if self.resource(full) is None:
                return full
        raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR, "no free resource")

    def _forget(self, entry: Resource) -> None:
        self._by_session.pop(entry.session, None)
        bound = self._accounts.get(entry.jid.bare, [])
        if entry in bound:
            bound.remove(entry)
        if not bound:
            self._accounts.pop(entry.jid.bare, None)

    async def unbind(self, session: Session) -> None:
        """The session's stream ended: its contacts and directed-presence
        recipients learn it is unavailable (RFC 6121 §4.5.2).
        """
        entry = self._by_session.get(session)
        if entry is not None:
            self._forget(entry)
        else:
            entry = self._replaced.pop(session, None)
            if entry is None:
                return
            successor = self.resource(entry.jid)
            if successor is not None and successor.available:
                return  # the new session's presence stands for this full JID now
        await self.presence.unavailable(entry)
        if not self._accounts.get(entry.jid.bare):
            self.roster.forget(entry.jid.bare)

    def hibernating(self, session: Session, asleep: bool) -> None:
        """XEP-0198: ``session`` lost its connection and waits (or was resumed)."""
        entry = self._by_session.get(session)
        if entry is not None:
            entry.hibernating = asleep

    def sessions(self) -> list[Session]:
        return [entry.session for entry in self._by_session.values()]

    def online(self) -> list[JID]:
        """The full JID of every bound session (XEP-0133 online users)."""
        return [entry.jid for entry in self._by_session.values()]

    def resources(self, account: JID) -> list[JID]:
        """The full JIDs bound for one account."""
        return [entry.jid for entry in self.bound(account)]

    def bound(self, bare: JID) -> list[Resource]:
        return list(self._accounts.get(bare.bare, ()))

    def resource(self, full: JID) -> Resource | None:
        for entry in self._accounts.get(full.bare, ()):
            if entry.jid == full:
                return entry
        return None

    def new_id(self) -> str:
        return f"heron-{next(self._ids)}"

    def broadcast(self, stanza: Element) -> int:
        """Send a copy of ``stanza`` to every available resource (announcements)."""
        count = 0
        for entry in list(self._by_session.values()):
            if entry.available:
                copied = copy.deepcopy(stanza)
                copied.set("to", str(entry.jid))
                copied.attrib.setdefault("from", entry.jid.domain)
                entry.session.send(copied)
                count += 1
        return count

    # --- from a client ------------------------------------------------------------

    async def receive_from_session(self, session: Session, stanza: Element, to: JID | None) -> None:
        """A stanza from a bound client, with its ``to`` as the stream parsed it and its
        ``from`` as the stream stamped it: the session's full JID, whatever the client
        wrote (RFC 6120 §8.1.2.1, as Prosody does). The stream is the one place that
        stamps it."""
        entry = self._by_session.get(session)
        if entry is None or stanza.tag not in (_MESSAGE, _PRESENCE, _IQ):
            log.debug("dropping %s from an unbound or replaced session", stanza.tag)
            return
        try:
            await self._from_session(entry, stanza, to)
        except StanzaError as error:
            await self._bounce(stanza, error, entry.jid, entry.jid.bare if to is None else to)

    async def _from_session(self, entry: Resource, stanza: Element, to: JID | None) -> None:
        account = entry.jid.bare
        if to is not None and self._blocked is not None and to.bare != account and to.local:
            if await self._blocked(account, to):
                # XEP-0191 §3.5: the user is told, with <blocked/>; presence is simply
                # not sent.
                if stanza.tag != _PRESENCE:
                    raise StanzaError(
                        StanzaCondition.NOT_ACCEPTABLE,
                        "you block this address",
                        specific=qname(NS.BLOCKING_ERRORS, "blocked"),
                    )
                return
        if stanza.tag == _PRESENCE:
            await self.presence.outbound(entry, stanza, to)
        elif stanza.tag == _IQ and (to is None or to == account):
            # RFC 6120 §10.3.3: no 'to' means the account itself.
            await self._dispatch(stanza, entry.jid, account, everything=True)
        else:
            if to is None:
                to = account  # RFC 6120 §10.3.3 (a message without 'to')
                stanza.set("to", str(to))
            sent: list[tuple[Resource, Element]] = []
            if stanza.tag == _MESSAGE and to.bare != account and self.archive is not None:
                await self.archive.outgoing(stanza, account, to)  # before any copy is taken
            if stanza.tag == _MESSAGE and to.bare != account:
                # XEP-0280 §8; a message to one's own account is copied as received.
                sent = copies(stanza, Direction.SENT, account, self.bound(account), (entry.jid,))
            # The sender's own blocklist was checked above.
            await self._deliver(stanza, entry.jid, to, sender_checked=True)
            _send_copies(sent)  # only once the original is on its way: a refusal bounces

    # --- from features and components ---------------------------------------------

    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        """Deliver ``stanza``, whose ``from`` and ``to`` say ``sender`` and ``to``;
        refusals become error replies to ``sender``."""
        try:
            await self._deliver(stanza, sender, to)
        except StanzaError as error:
            await self._bounce(stanza, error, sender, to)

    async def bounce(self, stanza: Element, error: StanzaError, sender: JID, to: JID) -> None:
        """Answer ``sender``, whose stanza to another domain could not be delivered."""
        await self._bounce(stanza, error, sender, to)

    async def _in_roster(self, owner: JID, contact: JID) -> bool:
        return any(item.jid == contact for item in await self.roster.items(owner))

    def _is_account(self, jid: JID) -> bool:
        return bool(jid.local) and jid.domain in self._hosts

    def _is_local(self, jid: JID) -> bool:
        return jid.domain in self._hosts or jid.domain in self._components

    def locate(self, jid: JID) -> Where:
        """Where ``jid`` lives; the one place federation will extend."""
        if jid.domain in self._hosts:
            return Where.LOCAL
        if jid.domain in self._components:
            return Where.COMPONENT
        return Where.REMOTE

    # --- delivery -----------------------------------------------------------------

    async def _deliver(
        self, stanza: Element, sender: JID, to: JID, *, sender_checked: bool = False
    ) -> None:
        """``sender_checked``: whether ``sender``'s own blocklist was already applied."""
        where = self.locate(to)
        if where is Where.REMOTE:
            if self._remote is None or not self._is_local(sender):
                raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, to.domain)
            if not sender_checked and await self._sender_blocks(stanza, sender, to):
                return
            await self._remote.send(stanza, sender, to)
            return
        if where is Where.COMPONENT:
            admin = self._is_account(sender) and self._is_admin(sender.bare)
            await self._components[to.domain].receive(stanza, sender, to, admin)
        elif not to.local:
            # The server itself: it answers iqs; messages and presence stop here.
            if stanza.tag == _IQ:
                await self._dispatch(stanza, sender, to, everything=True)
        else:
            await self._to_account(stanza, sender, to, sender_checked)

    async def _to_account(
        self, stanza: Element, sender: JID, to: JID, sender_checked: bool = False
    ) -> None:
        """RFC 6121 §8.5: a stanza for a local account."""
        type_ = stanza.get("type")
        request = stanza.tag == _IQ and type_ in ("get", "set")
        if self._blocked is not None and sender.bare != to.bare:
            if await self._blocked(to.bare, sender):
                # XEP-0191 §3.6: as if the account did not exist.
                if request:
                    raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
                return
            if not sender_checked and await self._sender_blocks(stanza, sender, to):
                return
        entry = None if to.is_bare else self.resource(to)
        if entry is None and not await self._exists(to.bare):
            # §8.5.1: presence is dropped; messages and requests bounce.
            if stanza.tag == _PRESENCE or (stanza.tag == _IQ and not request):
                return
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if stanza.tag == _PRESENCE:
            await self.presence.inbound(stanza, to, sender)
        elif stanza.tag == _IQ:
            if entry is not None:
                entry.session.send(stanza)
            elif request and to.is_bare:
                await self._dispatch(stanza, sender, to, everything=False)
            elif request:
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)  # §8.5.3.2.1
        else:
            await self._message(stanza, sender, to, entry)

    async def _message(self, stanza: Element, sender: JID, to: JID, entry: Resource | None) -> None:
        type_ = stanza.get("type", "normal")
        if type_ not in _MESSAGE_TYPES:
            type_ = "normal"  # RFC 6121 §5.2.2
        if self.archive is not None:
            # Archived (and given its id) before anyone, offline storage included, sees it.
            await self.archive.incoming(stanza, to.bare, sender)
        if entry is not None:
            entry.session.send(stanza)
            self._received_copies(stanza, sender, to, [entry])
            await self._push_unless_seen(stanza, sender, to, [entry])
            return
        if type_ == "error":
            return
        if type_ == "groupchat":
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)  # §8.5.2.1.1, §8.5.3.2.1
        if type_ == "headline" and not to.is_bare:
            return
        targets = [r for r in self.bound(to) if r.available and r.priority >= 0]
        if type_ != "headline" and targets:
            top = max(r.priority for r in targets)
            targets = [r for r in targets if r.priority == top]
        for target in targets:
            target.session.send(stanza)
        if targets:
            self._received_copies(stanza, sender, to, targets)
            await self._push_unless_seen(stanza, sender, to, targets)
        if targets or type_ == "headline":
            return
        if not await self.offline.store(to.bare, stanza):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "recipient offline")
        await self._push_unless_seen(stanza, sender, to, [])

    async def _push_unless_seen(
        self, stanza: Element, sender: JID, to: JID, delivered: list[Resource]
    ) -> None:
        """XEP-0357 §7: wake the account's phones when no connected session got the
        message or a carbon of it (mod_cloud_notify: offline, or only hibernating)."""
        if self.push is None:
            return
        seen = any(not r.hibernating and (r in delivered or r.carbons) for r in self.bound(to))
        if seen:
            return
        try:
            await self.push.notify(to.bare, stanza, sender)
        except Exception:
            # The message itself is delivered or stored; only the wake-up is lost.
            log.exception("push notification for %s failed", to.bare)

    def _received_copies(
        self, stanza: Element, sender: JID, to: JID, delivered: list[Resource]
    ) -> None:
        """XEP-0280 §7: a copy to each carbon-enabled session of ``to`` that neither got
        the original nor, for a message between one account's sessions, sent it."""
        got_it = {entry.jid for entry in delivered}
        if sender.bare == to.bare:
            got_it.add(sender)
        _send_copies(copies(stanza, Direction.RECEIVED, to.bare, self.bound(to), got_it))

    async def _dispatch(self, iq: Element, sender: JID, to: JID, *, everything: bool) -> None:
        """An iq request to the server or an account, answered by its namespace's handler."""
        if iq.get("type") not in ("get", "set"):
            # Results and errors to the server end here, or at the feature that asked.
            for prefix, sink in self._results.items():
                if iq.get("id", "").startswith(prefix):
                    await sink(iq, sender)
            return
        if len(iq) != 1:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "an iq carries one payload")
        namespace = _namespace(iq[0].tag)
        handler = self._handlers.get(namespace)
        if handler is None or not (everything or namespace in self._account_namespaces):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        admin = self._is_account(sender) and self._is_admin(sender.bare)
        context = IqContext(sender=sender, to=to, is_admin=admin, router=self)
        try:
            reply = await handler.handle_iq(iq, context)
        except StanzaError:
            raise
        except Exception:
            log.exception("iq handler for %s failed", namespace)
            raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR) from None
        if reply is not None:
            await self._reply(reply, to, sender)

    async def _reply(self, reply: Element, replier: JID, requester: JID) -> None:
        """``reply`` from ``replier`` (the request's ``to``) back to ``requester``."""
        entry = self.resource(requester)
        if entry is not None:
            entry.session.send(reply)  # a local client takes replies without 'from'
        else:
            await self.route(reply, replier, requester)

    async def _sender_blocks(self, stanza: Element, sender: JID, to: JID) -> bool:
        """XEP-0191 §3.5: whether ``stanza`` from the account ``sender`` is held back because
        ``sender`` blocks ``to``: nothing goes out to a blocked contact, local or remote,
        broadcasts included; the error §3.6 answers its requests with still does."""
        return (
            self._blocked is not None
            and stanza.get("type") != "error"
            and self._is_account(sender)
            and sender.bare != to.bare
            and await self._blocked(sender.bare, to)
        )

    async def _bounce(self, stanza: Element, error: StanzaError, sender: JID, to: JID) -> None:
        """RFC 6120 §8.3.1: answer a refused stanza, never an error with an error."""
        if stanza.get("type") == "error":
            return
        await self._reply(error_reply(stanza, error), to, sender)


def _send_copies(carbons: list[tuple[Resource, Element]]) -> None:
    for resource, carbon in carbons:
        resource.session.send(carbon)
