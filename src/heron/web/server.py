"""The HTTPS listener every browser-facing feature hangs off.

For now it answers ``/`` with what this server is and ``/healthz`` for
load balancers and tests; the web phone, the WebSockets and the admin
pages add routes to the same application.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from aiohttp import web

from heron import __version__
from heron.component import Listener, Services
from heron.config import Config
from heron.control import View
from heron.listeners import Rebinding, Where
from heron.web import admin, call, phone, proxy, upgrade
from heron.web.listener import ConnectionGuard, GuardedSite, server_header

__all__ = ["WebComponent", "build_web"]

log = logging.getLogger(__name__)

_KEEPALIVE = 75.0
"""Seconds an idle HTTP connection is kept between requests (nginx's default), or
``limits.idle_timeout`` if shorter."""


def build_web(services: Services) -> WebComponent | None:
    return WebComponent(services) if services.config.web.enabled else None


class WebComponent:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._runner: web.AppRunner | None = None
        self._call: call.ClickToCall | None = None
        self._context: ssl.SSLContext | None = None
        self._sites: Rebinding[GuardedSite] = Rebinding("web")
        guards = services.guards
        self._guard = ConnectionGuard(
            guards.connections,
            deadline=guards.policy.handshake_timeout,
            # Idle between requests: a kept-alive connection is closed after this.
            keepalive=min(guards.policy.idle_timeout, _KEEPALIVE),
            trusted=services.config.web.trusted_proxies,
        )

    def _application(self) -> web.Application:
        app = web.Application(
            middlewares=[
                proxy.middleware(self._services.config.web.trusted_proxies),
                upgrade.middleware([path for path, _ in self._services.web_routes]),
            ]
        )
        app.router.add_get("/", self._index)
        app.router.add_get("/healthz", self._health)
        admin.mount(app, self._services)  # /login, /logout, /admin, /api, /metrics
        phone.mount(app, self._services)  # /phone, /config.js, /config.json, /static
        self._call = call.mount(app, self._services)  # /call/NAME, its config and button
        for path, handler in self._services.web_routes:
            app.router.add_get(path, handler)
        for path, handler in self._services.web_any_method:
            app.router.add_route("*", path, handler)
        return app

    async def _index(self, _request: web.Request) -> web.Response:
        domain = self._services.config.domain
        return web.Response(text=f"heron {__version__} serving {domain}\n")

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def start(self) -> Sequence[Listener]:
        config = self._services.config
        context = self._context = self._services.certificate.context(alpn=("http/1.1",))
        app = self._application()
        app.on_response_prepare.append(self._guard.on_response_prepare)
        app.on_response_prepare.append(server_header)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if config.web.plain_listen and not config.web.trusted_proxies:
            log.warning(
                "web: plain_listen without trusted_proxies: clients behind the proxy are "
                "unknown (their failed logins slow only the accounts guessed, /metrics is "
                "not served to them); name the proxy in web.trusted_proxies"
            )
        await self._sites.start(self._wanted(config))
        listeners = [
            Listener("web", f"{'https' if key == 'web.listen' else 'http'}://{address}/")
            for key, address in self._sites.open
        ]
        if config.mux.listen:
            mux_site = GuardedSite(self._runner, None, 0, self._guard, ssl_context=context)
            await mux_site.start()
            self._services.handoffs["web"] = lambda sock, _tls: mux_site.take(sock)
        return listeners

    def apply(self, config: Config) -> frozenset[str]:
        """Click-to-call names (web logins check admin rights on every request), and the
        listeners: new addresses are opened (ListenError if one cannot be: nothing is
        changed then), removed ones stop accepting, their open connections go on."""
        self._sites.apply(self._wanted(config))
        if self._call is not None:
            self._call.apply(config)
        return frozenset({"web.click_to_call", "web.listen", "web.plain_listen"})

    def _wanted(self, config: Config) -> dict[Where, Callable[[], GuardedSite]]:
        """The listeners ``config`` names: HTTPS, and plain HTTP (no TLS context)."""
        runner, guard = self._runner, self._guard
        assert runner is not None
        return {
            (key, address): partial(
                GuardedSite, runner, address.host, address.port, guard, ssl_context=tls
            )
            for key, addresses, tls in (
                ("web.listen", config.web.listen, self._context),
                ("web.plain_listen", config.web.plain_listen, None),
            )
            for address in addresses
        }

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._guard.close_all()

    def views(self) -> Mapping[str, View]:
        return {}
