"""Push Notifications (XEP-0357): an account's app servers, and the summaries sent to them.

:class:`PushNotifications` answers ``<enable/>`` and ``<disable/>`` from the account's
own sessions and keeps the registrations in a :class:`PushStore`; the router calls
:meth:`PushNotifications.notify` when a message reached an account none of whose
sessions would see it now (offline storage, or sessions hibernating under XEP-0198).
The rules themselves are in :mod:`heron.xmpp.push`.

Only a session of the account itself enables push, so an app server hears of the
messages of the account that chose it and of no one else's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.local import Hub
from heron.xmpp.jid import JID
from heron.xmpp.push import (
    PUSH,
    Registration,
    notification,
    parse_disable,
    parse_enable,
    worth_pushing,
)
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["ID_PREFIX", "MAX_ERRORS", "MAX_SERVICES", "PushNotifications", "PushStore"]

log = logging.getLogger(__name__)

MAX_SERVICES = 5
"""App servers per account: one per device that installed a push-capable app, and a few
spare (Prosody keeps no limit; an unbounded list is a way to make every message cost)."""
MAX_ERRORS = 16
"""Error answers in a row after which a registration is dropped (Prosody's push_max_errors):
app servers pass on their push vendor's hiccups, and a phone must not lose push for one."""
ID_PREFIX = "push-"
"""How the ids of heron's publishes start, for :meth:`heron.xmpp.router.Router.register_results`."""
_PENDING = 10_000
"""Publishes awaiting their answer; past it the oldest are forgotten (their errors then
disable nothing, and the next message asks again)."""
_ENABLE = qname(PUSH, "enable")


class PushStore(Protocol):
    """The app servers each account (a bare JID's text) enabled, oldest first."""

    async def push_services(self, owner: str) -> list[Registration]: ...

    async def enable_push(self, owner: str, registration: Registration, limit: int) -> bool:
        """Add or replace (same service and node) ``registration``; False, changing
        nothing, when ``owner`` already has ``limit`` others."""
        ...

    async def disable_push(self, owner: str, service: str, node: str | None) -> int:
        """Remove ``owner``'s registrations at ``service`` (only ``node`` if given)."""
        ...


class PushNotifications:
    """XEP-0357 §5, §6 for the account's sessions, and §7 for its messages."""

    namespace: str = PUSH
    disco_features: tuple[str, ...] = (PUSH,)

    def __init__(
        self,
        store: PushStore,
        hub: Hub,
        *,
        ids: Callable[[], str],
        include_body: bool = False,
        limit: int = MAX_SERVICES,
        max_errors: int = MAX_ERRORS,
    ) -> None:
        self._store = store
        self._hub = hub
        self._ids = ids
        self._include_body = include_body
        self._limit = limit
        self._max_errors = max_errors
        self._pending: dict[str, tuple[JID, Registration]] = {}
        self._errors: dict[tuple[JID, Registration], int] = {}
        """Errors in a row of registrations that had one, until a result; at most
        ``_PENDING`` of them, the oldest forgotten first."""

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        if iq.get("type") != "set":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "push is enabled with an iq set")
        if self._hub.resource(context.sender) is None:
            # Only an account's own session speaks for it: a remote entity, or a request
            # addressed to another account, enables nothing.
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "push is for this server's clients")
        owner = str(context.sender.bare)
        payload = iq[0]
        if payload.tag == _ENABLE:
            registration = parse_enable(payload)
            if not await self._store.enable_push(owner, registration, self._limit):
                raise StanzaError(
                    StanzaCondition.RESOURCE_CONSTRAINT, f"{self._limit} push services at most"
                )
        else:
            service, node = parse_disable(payload)
            await self._store.disable_push(owner, str(service), node)
        return iq_result(iq)

    async def notify(self, account: JID, message: Element, sender: JID) -> int:
        """§7: publish a summary of ``message`` from ``sender`` to each app server of
        ``account``, if it is worth waking a phone for; how many were sent."""
        if not worth_pushing(message):
            return 0
        registrations = await self._store.push_services(str(account.bare))
        for registration in registrations:
            id_ = f"{ID_PREFIX}{self._ids()}"
            if len(self._pending) >= _PENDING:
                del self._pending[next(iter(self._pending))]
            self._pending[id_] = (account.bare, registration)
            publish = notification(
                registration,
                message,
                server=account.domain,
                sender=sender,
                include_body=self._include_body,
                id_=id_,
            )
            await self._hub.route(publish, JID.make("", account.domain), registration.service)
        return len(registrations)

    async def answer(self, iq: Element, sender: JID) -> None:
        """The app server's answer to a publish: a result clears the registration's errors;
        ``max_errors`` errors in a row end it (mod_cloud_notify's rule; §8 leaves it to the
        server), except those of type ``wait``, which say "try later"."""
        pending = self._pending.get(iq.get("id", ""))
        if pending is None or pending[1].service != sender:
            return  # not ours, or not from the service it went to
        del self._pending[iq.get("id", "")]
        if iq.get("type") != "error":
            self._errors.pop(pending, None)
            return
        error = iq.find(qname(NS.CLIENT, "error"))
        if error is not None and error.get("type") == "wait":
            return
        errors = self._errors.get(pending, 0) + 1
        if errors < self._max_errors:
            if len(self._errors) >= _PENDING:
                del self._errors[next(iter(self._errors))]
            self._errors[pending] = errors
            return
        self._errors.pop(pending, None)
        account, registration = pending
        log.info("push: %s refused %d notifications; disabling it for %s", sender, errors, account)
        await self._store.disable_push(str(account), str(registration.service), registration.node)
