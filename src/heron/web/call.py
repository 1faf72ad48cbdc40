"""Click-to-call (issue 6): an anonymous web visitor calls one public destination.

``web.click_to_call`` names the destinations (``sales = "roland@falcot.com"``). For
each name:

- ``/call/NAME`` is a static page (call.html, call.js, call.css) that runs JsSIP with
  RFC 3323's anonymous identity, never registers, and INVITEs ``sip:NAME@<sip domain>``
  over the WebSocket at /sip; the SIP proxy turns that Request-URI into the configured
  target and refuses the visitor anything else (see :mod:`heron.sip.admission`).
- ``/call/NAME/config.json`` is what the page needs: the SIP target, the identity and
  the ICE servers, with TURN REST credentials that live ``click_to_call_turn_ttl``
  seconds. Only this endpoint hands anonymous visitors TURN credentials, at most
  ``click_to_call_per_minute`` times a minute per address.
- ``/call/NAME/button.js`` is a snippet another site embeds with a ``<script>`` tag:
  it adds a button that opens the page in a small window of its own (the page refuses
  to be framed, so no site can hide it and click for the visitor).

The page takes its name from its own URL and renders no data on the server, so there
is nothing to escape and it works under a strict Content-Security-Policy.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from heron.component import Services, WebHandler
from heron.config import Config
from heron.credentials import ice_servers, turn_secret
from heron.ratelimit import FloodGuard
from heron.web.auth import asset

__all__ = ["ANONYMOUS_URI", "ClickToCall", "mount"]

ANONYMOUS_URI = "sip:anonymous@anonymous.invalid"
"""RFC 3323 §4.1.1.3: the From of a caller that does not say who it is."""
ANONYMOUS_NAME = "Anonymous"
_NAME = r"{name:[a-z0-9][a-z0-9_-]{0,31}}"
"""The route's form of a public name (``heron.config`` validates the same)."""

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; media-src 'self' blob:; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=()",
    "Cache-Control": "no-cache",
}
"""Our own scripts only, the WebSocket and fetches to this origin, never framed."""

_BUTTON = """\
(function () {
  "use strict";
  var script = document.currentScript;
  var name = %s;
  var page = new URL("/call/" + name, script.src).href;
  var button = document.createElement("button");
  button.type = "button";
  button.className = "heron-call-button";
  button.textContent = script.getAttribute("data-label") || "Call " + name;
  button.addEventListener("click", function () {
    window.open(page, "_blank", "noopener,popup,width=380,height=520");
  });
  script.parentNode.insertBefore(button, script.nextSibling);
})();
"""
"""The embeddable button; %s is the public name as a JSON string."""


class ClickToCall:
    """The /call routes for the names of ``web.click_to_call``."""

    def __init__(self, services: Services, clock: Callable[[], float] = time.time) -> None:
        config = services.config
        self._config = config
        self._clock = clock
        self._names = frozenset(config.web.click_to_call)
        self._secret = turn_secret(config)
        per_minute = config.web.click_to_call_per_minute
        self._guard = FloodGuard(per_minute / 60, per_minute, 60.0)
        self._page = asset("call.html")
        self._script = asset("call.js")
        self._style = asset("call.css")

    def apply(self, config: Config) -> None:
        """The public names a reload configured; a page already open keeps calling."""
        self._names = frozenset(config.web.click_to_call)

    def mount(self, app: web.Application) -> None:
        # The assets first: a public name never holds a dot, so none is shadowed.
        app.router.add_get("/call/call.js", self._asset(self._script, "text/javascript"))
        app.router.add_get("/call/call.css", self._asset(self._style, "text/css"))
        app.router.add_get(f"/call/{_NAME}", self._call_page)
        app.router.add_get(f"/call/{_NAME}/config.json", self._call_config)
        app.router.add_get(f"/call/{_NAME}/button.js", self._button)

    def _known(self, request: web.Request) -> str:
        name = request.match_info["name"]
        if name not in self._names:
            raise web.HTTPNotFound(text="No such public destination.\n")
        return name

    async def _call_page(self, request: web.Request) -> web.Response:
        self._known(request)
        return web.Response(text=self._page, content_type="text/html", headers=PAGE_HEADERS)

    async def _call_config(self, request: web.Request) -> web.Response:
        name = self._known(request)
        now = self._clock()
        if not self._guard.allow(request.remote or "", now):
            raise web.HTTPTooManyRequests(
                text=json.dumps({"error": "too many calls from this address"}),
                content_type="application/json",
                headers={"Retry-After": "60"},
            )
        # A user of its own per visit: TURN's per-user quota then counts per visitor.
        user = f"anonymous-{secrets.token_hex(6)}"
        body = {
            "name": name,
            "target": f"sip:{name}@{self._config.sip_domain}",
            "identity": {"uri": ANONYMOUS_URI, "display_name": ANONYMOUS_NAME},
            "websocket_path": "/sip",
            "ice_servers": ice_servers(
                self._config,
                self._secret,
                user,
                now=now,
                ttl=self._config.web.click_to_call_turn_ttl,
            ),
        }
        return web.json_response(
            body, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        )

    async def _button(self, request: web.Request) -> web.Response:
        name = self._known(request)
        return web.Response(
            text=_BUTTON % json.dumps(name),
            content_type="text/javascript",
            headers={
                "Cache-Control": "public, max-age=300",
                "X-Content-Type-Options": "nosniff",
                # Other sites load it with <script src>, also under their own COEP.
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )

    @staticmethod
    def _asset(text: str, content_type: str) -> WebHandler:
        async def serve(_request: web.Request) -> web.Response:
            headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
            return web.Response(text=text, content_type=content_type, headers=headers)

        return serve


def mount(app: web.Application, services: Services) -> ClickToCall:
    """Add the /call routes to ``app``, even with no public name yet: a reload may add one."""
    pages = ClickToCall(services)
    pages.mount(app)
    return pages
