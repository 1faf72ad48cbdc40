"""The HTTPS listener every browser-facing feature hangs off.

For now it answers ``/`` with what this server is and ``/healthz`` for
load balancers and tests; the web phone, the WebSockets and the admin
pages add routes to the same application.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence

from aiohttp import web

from heron import __version__
from heron.component import Listener, Services
from heron.config import Config, ListenAddress
from heron.control import View
from heron.errors import ListenError, listen_error
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
        self._sites: dict[tuple[str, ListenAddress], GuardedSite] = {}
        """The open listeners by config key and address, for a reload to rebind."""
        self._starting: set[asyncio.Task[None]] = set()
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
        listeners = []
        for (key, address), tls in self._wanted(config).items():
            site = self._bound(key, address, tls)
            self._sites[key, address] = site
            await site.start()
            listeners.append(Listener("web", f"{'https' if tls else 'http'}://{address}/"))
        if config.mux.listen:
            mux_site = GuardedSite(self._runner, None, 0, self._guard, ssl_context=context)
            await mux_site.start()
            self._services.handoffs["web"] = lambda sock, _tls: mux_site.take(sock)
        return listeners

    def apply(self, config: Config) -> frozenset[str]:
        """Click-to-call names (web logins check admin rights on every request), and the
        listeners: new addresses are opened (ListenError if one cannot be: nothing is
        changed then), removed ones stop accepting, their open connections go on."""
        wanted = self._wanted(config)
        opened: dict[tuple[str, ListenAddress], GuardedSite] = {}
        try:
            for (key, address), tls in wanted.items():
                if (key, address) not in self._sites:
                    opened[key, address] = self._bound(key, address, tls)
        except ListenError:
            for site in opened.values():
                site.close_listener()
            raise
        for where in [where for where in self._sites if where not in wanted]:
            self._sites.pop(where).close_listener()
            log.info("web: no longer listening on %s", where[1])
        for where, site in opened.items():
            self._sites[where] = site
            task = asyncio.get_running_loop().create_task(site.start())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
            log.info("web listening on %s", site.name)
        if self._call is not None:
            self._call.apply(config)
        return frozenset({"web.click_to_call", "web.listen", "web.plain_listen"})

    def _wanted(self, config: Config) -> dict[tuple[str, ListenAddress], ssl.SSLContext | None]:
        """The listeners ``config`` names, with their TLS context (None: plain HTTP)."""
        return {("web.listen", address): self._context for address in config.web.listen} | {
            ("web.plain_listen", address): None for address in config.web.plain_listen
        }

    def _bound(self, key: str, address: ListenAddress, tls: ssl.SSLContext | None) -> GuardedSite:
        assert self._runner is not None
        site = GuardedSite(self._runner, address.host, address.port, self._guard, ssl_context=tls)
        try:
            site.bind()
        except OSError as exc:
            raise listen_error(key, address, exc) from None
        return site

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._guard.close_all()

    def views(self) -> Mapping[str, View]:
        return {}
