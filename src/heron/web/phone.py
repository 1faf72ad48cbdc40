"""The staff web phone: ``/phone``, its static files and the per-request ``/config.js``.

The page is static HTML, CSS and JavaScript of our own plus JsSIP, which the build
bundles from npm into ``assets/build/`` (``make assets``). Everything about the
caller comes from ``/config.js``, made for each request: the WebSocket URL, the SIP
domain, the logged-in user's SIP identity with a short-lived digest credential
(:class:`heron.credentials.WebPhoneCredentials`, tied to the login session: it stops
working at logout, at a password change and when the account goes) and ICE servers
with short-lived TURN REST credentials. No long-term password ever reaches the
browser; a request that is not logged in, or that comes from another site, gets only
what is public.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from html import escape
from string import Template
from typing import Any

from aiohttp import web

from heron.accounts import AccountService
from heron.component import Services
from heron.credentials import WebPhoneCredentials, ice_servers, turn_secret
from heron.web.auth import PAGE_HEADERS, SESSIONS, WebUser, asset

__all__ = ["TURN_TTL", "mount"]

log = logging.getLogger(__name__)

TURN_TTL = 3600
"""TURN credentials last an hour: enough for a call's allocation, and the page fetches
fresh ones (``/config.json``) before each call."""

_CSP = "Content-Security-Policy"
PHONE_HEADERS = {
    **PAGE_HEADERS,
    _CSP: PAGE_HEADERS[_CSP] + "; media-src 'self' mediastream: blob:",
    "Permissions-Policy": "camera=(self), microphone=(self), autoplay=(self)",
}
"""The pages' strict policy, plus playing the call's media streams."""

_STATIC: dict[str, tuple[str, str]] = {
    "phone.css": ("phone.css", "text/css"),
    "phone.js": ("phone.js", "text/javascript"),
    "jssip.min.js": ("build/jssip.min.js", "text/javascript"),
}
"""What ``/static/NAME`` serves: our files and the JsSIP bundle (click-to-call uses it too)."""

_SCRIPT_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class Phone:
    """Request handlers of the web phone; one per web application."""

    def __init__(self, services: Services, clock: Callable[[], float] = time.time) -> None:
        self._config = services.config
        self._accounts: AccountService = services.accounts
        self._clock = clock
        self._turn = turn_secret(self._config) if self._config.turn.enabled else None
        sip = self._config.sip
        self._sip: WebPhoneCredentials | None = (
            services.web_phone if sip.enabled and sip.websocket else None
        )
        self._page = Template(asset("phone.html"))
        self._static: dict[str, bytes] = {}

    async def page(self, request: web.Request) -> web.Response:
        user = await request.app[SESSIONS].require(request)
        body = self._page.safe_substitute(address=escape(user.address), csrf=escape(user.csrf))
        return web.Response(text=body, content_type="text/html", headers=PHONE_HEADERS)

    async def config_js(self, request: web.Request) -> web.Response:
        data = json.dumps(await self.settings(request), separators=(",", ":"))
        # JSON is JavaScript; "<" escaped too, so no text in it can close a <script>.
        text = "window.HERON_CONFIG = Object.freeze(" + data.replace("<", "\\u003c") + ");\n"
        return web.Response(text=text, content_type="text/javascript", headers=_SCRIPT_HEADERS)

    async def config_json(self, request: web.Request) -> web.Response:
        return web.json_response(await self.settings(request), headers=_SCRIPT_HEADERS)

    async def settings(self, request: web.Request) -> dict[str, Any]:
        """What a browser needs to call: for the logged-in user, or only what is public."""
        config, now = self._config, self._clock()
        user = await self._same_site_user(request)
        policy = "relay" if request.query.get("ice_policy") == "relay" else "all"
        websocket = f"wss://{request.host}/sip" if self._sip is not None else None
        settings: dict[str, Any] = {
            "websocket": websocket,
            "domain": config.sip_domain,
            "ice_transport_policy": policy,
            "identity": None,
            "error": None,
        }
        if user is None:
            settings["ice_servers"] = ice_servers(config, None, None, now=now, ttl=TURN_TTL)
            return settings
        settings["ice_servers"] = ice_servers(
            config, self._turn, user.address, now=now, ttl=TURN_TTL
        )
        settings["turn_expires"] = int(now) + TURN_TTL
        if self._sip is None:
            settings["error"] = "SIP over WebSocket is not enabled on this server."
        elif user.domain != config.domain:
            settings["error"] = f"Only {config.domain} accounts have a phone here."
        else:
            sip_user = self._accounts.identity(user.local, user.domain).sip_user
            ttl = int(config.web.session_hours * 3600)
            issued, grant = self._sip.issue(sip_user, now=now, ttl=ttl)
            # Revoked when the session ends (logout, new password, account removed).
            if request.app[SESSIONS].grant(request, grant) <= 0:
                return settings
            settings["identity"] = {
                "uri": f"sip:{user.local}@{config.sip_domain}",
                "display_name": user.local,
                "address": user.address,
                "authorization_user": issued.username,
                "password": issued.password,
                "expires": issued.expires,
            }
        return settings

    async def _same_site_user(self, request: web.Request) -> WebUser | None:
        """The session's user, unless another site's page asks (a cross-site <script>
        include: SameSite keeps the cookie away already; Sec-Fetch-Site makes sure)."""
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return None
        return await request.app[SESSIONS].current(request)

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        path, content_type = _STATIC[name]
        body = self._static.get(name)
        if body is None:
            try:
                body = asset(path).encode()
            except FileNotFoundError:
                log.error("web: %s is missing: build it with `make assets`", path)
                raise web.HTTPNotFound(text=f"{name} is not built (make assets)\n") from None
            self._static[name] = body
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        return web.Response(body=body, content_type=content_type, headers=headers)


def mount(app: web.Application, services: Services) -> None:
    """Serve /phone, /config.js, /config.json and /static/NAME on ``app``.

    Needs the login sessions (``app[SESSIONS]``, see :mod:`heron.web.auth`) at request time.
    """
    phone = Phone(services)
    app.router.add_get("/phone", phone.page)
    app.router.add_get("/config.js", phone.config_js)
    app.router.add_get("/config.json", phone.config_json)
    app.router.add_get("/static/{name}", phone.static)
