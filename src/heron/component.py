"""The seam between ``app`` and each service: what a component is and what it gets."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from heron.accounts import AccountCache, AccountService
from heron.cluster.redis import Shared
from heron.config import Config
from heron.control import Command, View
from heron.credentials import WebPhoneCredentials
from heron.dns.resolver import Resolver
from heron.guards import Guards
from heron.handoff import Handoff
from heron.tls import ServedCertificate

__all__ = ["Component", "Listener", "Services", "WebHandler", "uncounted_client"]


@dataclass(frozen=True, slots=True)
class Listener:
    """One open listening socket, for the log line an administrator reads."""

    service: str
    url: str


class Component(Protocol):
    """A running service: started once, stopped once, in the order ``app`` builds them."""

    async def start(self) -> Sequence[Listener]:
        """Open listeners; raise :class:`heron.errors.ListenError` naming the config key."""

    async def stop(self) -> None: ...

    def apply(self, config: Config) -> frozenset[str]:
        """Take what can change while serving from a reloaded ``config`` and return those
        keys (``sip.routes``); the rest keeps its running value until a restart. Raise
        :class:`heron.errors.HeronError` before changing anything if ``config`` cannot
        be applied."""

    def views(self) -> Mapping[str, View]:
        """Live state an administrator can list through the control socket."""


WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def uncounted_client(request: web.Request) -> str | None:
    """The client a WebSocket route must count in ``limits.connections_per_source``, or
    None when the web listener counted this connection already. The listener counts
    every connection by its peer but a trusted proxy's; behind one, only the route knows
    the client (from X-Forwarded-For), so only then does it count."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if peer and request.remote == peer[0]:
        return None
    return request.remote or ""


@dataclass(frozen=True, slots=True)
class Services:
    """What components share: the configuration, the accounts and the abuse limits
    (``guards``: guesses, password checks and connections per source). A protocol's own
    stores are not shared: :mod:`heron.wiring` hands each builder those it needs.

    ``web_routes`` collects (path, handler) pairs that components started
    before the web component (SIP's /sip, XMPP's /xmpp-websocket) serve on
    the web port; ``views`` their live state.
    """

    config: Config
    accounts: AccountService
    guards: Guards = field(default_factory=Guards)
    web_phone: WebPhoneCredentials = field(
        default_factory=lambda: WebPhoneCredentials(secrets.token_bytes(32))
    )
    """The web phone's SIP credentials: the web component issues and revokes them, the SIP
    proxy checks them."""
    account_cache: AccountCache = field(init=False)
    """The accounts SIP, XMPP and TURN check secrets against, built here on ``accounts`` so
    that every component shares the one cache its announcements invalidate."""
    certificate: ServedCertificate = field(init=False)
    """The certificate every TLS listener serves: components make their server contexts
    from it, so that a reloaded or renewed one reaches them all (:mod:`heron.reload`,
    :mod:`heron.acme`)."""
    resolver: Resolver = field(init=False)
    """The DNS resolver on ``dns.servers`` SIP and XMPP find other domains' servers with,
    one for both so that they share its cache."""
    web_routes: list[tuple[str, WebHandler]] = field(default_factory=list)
    web_any_method: list[tuple[str, WebHandler]] = field(default_factory=list)
    """Routes, as ``web_routes``, whose handler answers every method itself (XEP-0363's
    uploads: PUT, GET, HEAD)."""
    handoffs: dict[str, Handoff] = field(default_factory=dict)
    """How each started service serves a connection the port-443 mux accepted, by the
    service's name (:mod:`heron.handoff`); the mux, started last, reads it."""
    views: dict[str, View] = field(default_factory=dict)
    """Live state of the components started so far (``app`` fills it), for the admin pages,
    the API and the metrics the web component serves."""
    commands: dict[str, Command] = field(default_factory=dict)
    """Control socket commands components add when they start (TURN workers ask the main
    process's guess throttle through one)."""
    worker_sockets: list[dict[str, socket.socket]] = field(default_factory=list)
    """Sockets bound here for each extra TURN worker, by listener name: the app hands
    them over when it starts the workers, then closes its copies (:mod:`heron.inherit`)."""
    sip_worker_sockets: list[dict[str, socket.socket]] = field(default_factory=list)
    """The same for each extra SIP worker (``sip.workers``)."""
    shared: Shared | None = None
    """The Redis of ``redis.url``, open while heron serves; None without one."""
    node: str = field(default_factory=lambda: secrets.token_hex(4))
    """This ``heron serve`` among the nodes sharing Redis; its SIP workers are given it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_cache", AccountCache(self.accounts))
        object.__setattr__(self, "resolver", Resolver(self.config.dns.servers))
        certificate = ServedCertificate(self.config.certificate_path, self.config.key_path)
        object.__setattr__(self, "certificate", certificate)
