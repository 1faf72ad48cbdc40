"""The admin pages, and the one call that mounts logins, admin, API and metrics.

``/admin`` is a static page (admin.html, admin.js, admin.css) that reads and
changes everything through the JSON API with the session's CSRF token; no
account data is rendered on the server, so there is nothing to escape there
and the page works under a strict Content-Security-Policy.
"""

from __future__ import annotations

from aiohttp import web

from heron.component import Services, WebHandler
from heron.web.api import Api
from heron.web.auth import PAGE_HEADERS, WebSessions, asset
from heron.web.metrics import mount_metrics

__all__ = ["mount"]

_STATIC = {
    "/admin/admin.js": ("admin.js", "text/javascript"),
    "/admin/admin.css": ("admin.css", "text/css"),
}
"""Public files: code and style, no data (the login page uses the style too)."""


def mount(
    app: web.Application, services: Services, sessions: WebSessions | None = None
) -> WebSessions:
    """Add /login, /logout, /admin, /api and /metrics to ``app``; the sessions (made
    from the config unless given) also land in ``app[heron.web.auth.SESSIONS]`` for
    the other pages."""
    if sessions is None:
        sessions = WebSessions(
            services.accounts,
            ttl=services.config.web.session_hours * 3600,
            guards=services.guards,
            web_phone=services.web_phone,
        )
    sessions.mount(app)
    page = asset("admin.html")

    async def admin(request: web.Request) -> web.Response:
        await sessions.require(request, admin=True)
        return web.Response(text=page, content_type="text/html", headers=PAGE_HEADERS)

    app.router.add_get("/admin", admin)
    for path, (name, content_type) in _STATIC.items():
        app.router.add_get(path, _static(asset(name), content_type))
    Api(services, sessions).mount(app)
    mount_metrics(app, services, sessions)
    return sessions


def _static(text: str, content_type: str) -> WebHandler:
    async def serve(_request: web.Request) -> web.Response:
        return web.Response(
            text=text,
            content_type=content_type,
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    return serve
