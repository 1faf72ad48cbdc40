"""The JSON API behind the admin pages, described by an OpenAPI 3.1 document.

Every route is a row of :data:`ROUTES`; mounting and the document at
``/api/openapi.json`` both read that table, so the document cannot miss a
route. Reads need an admin session; writes also need the session's CSRF
token in the ``X-CSRF-Token`` header and a JSON body (which a cross-site
form cannot send without a CORS preflight we never grant).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from heron import __version__
from heron.accounts import Account
from heron.component import Services
from heron.config import parse_address
from heron.errors import AccountExists, AccountNotFound, InvalidInput
from heron.web.auth import CSRF_HEADER, WebSessions, WebUser, json_error

__all__ = ["ROUTES", "Api", "openapi_document"]

log = logging.getLogger(__name__)

_MAX_BODY = 16 * 1024
_MAX_PASSWORD = 1024

LIVE_VIEWS = {
    "/api/registrations": "sip.registrations",
    "/api/allocations": "turn.allocations",
    "/api/sessions": "xmpp.sessions",
    "/api/rooms": "xmpp.rooms",
    "/api/s2s": "xmpp.s2s",
    "/api/media": "media.calls",
}
"""API path -> the ``services.views`` name it lists; an empty list while that
service is off."""

COUNTER_VIEWS = {
    "sip": "sip.counters",
    "turn": "turn.counters",
    "xmpp": "xmpp.counters",
    "mux": "mux.counters",
    "media": "media.counters",
}

Handler = Callable[[web.Request, WebUser | None], Awaitable[web.StreamResponse]]
"""An API handler: the request, and the user :meth:`Api._guarded` checked (None if public)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One API route, and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: str
    """Name of the :class:`Api` method that serves it."""
    summary: str
    access: str
    """"public", "user" (any login), "admin" (admin session) or "write" (admin + CSRF)."""
    response: dict[str, Any]
    status: int = 200
    body: str | None = None
    """Name of the request body schema under components/schemas."""


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _rows(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "object"}, "description": description}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/openapi.json", "openapi", "This document", "public", {"type": "object"}),
    Route(
        "GET",
        "/api/session",
        "session",
        "Who is logged in, and the CSRF token",
        "user",
        _ref("Session"),
    ),
    Route(
        "GET",
        "/api/users",
        "users",
        "List accounts",
        "admin",
        {"type": "array", "items": _ref("User")},
    ),
    Route(
        "POST",
        "/api/users",
        "add_user",
        "Create an account for every protocol",
        "write",
        _ref("User"),
        201,
        "NewUser",
    ),
    Route("DELETE", "/api/users/{address}", "delete_user", "Delete an account", "write", {}, 204),
    Route(
        "POST",
        "/api/users/{address}/password",
        "set_password",
        "Set a new password (every protocol's secret at once)",
        "write",
        {},
        204,
        "Password",
    ),
    Route(
        "GET",
        "/api/registrations",
        "live",
        "Live SIP registrations (contacts)",
        "admin",
        _rows("aor, contact, expires_in, transport, source, user_agent"),
    ),
    Route(
        "GET",
        "/api/allocations",
        "live",
        "Live TURN allocations",
        "admin",
        _rows("transport, client, user, relays, expires_in, permissions, channels, bytes"),
    ),
    Route(
        "GET",
        "/api/sessions",
        "live",
        "Live XMPP sessions",
        "admin",
        _rows("jid, transport, address, presence"),
    ),
    Route(
        "GET",
        "/api/rooms",
        "live",
        "XMPP group chat rooms",
        "admin",
        _rows("room, occupants, persistent"),
    ),
    Route(
        "GET",
        "/api/s2s",
        "live",
        "XMPP server-to-server streams (federation)",
        "admin",
        _rows("direction, bidi, local, remote, auth, tls, address, stanzas, queued, since"),
    ),
    Route(
        "GET",
        "/api/media",
        "live",
        "Calls the media bridge relays (WebRTC ⇄ RTP, plain RTP, echo)",
        "admin",
        _rows(
            "call_id, branch, echo, age, silent, caller_transport, caller_port, caller_peer, "
            "caller_packets, callee_transport, callee_port, callee_peer, callee_packets"
        ),
    ),
    Route(
        "GET",
        "/api/counters",
        "counters",
        "Every service's counters, now",
        "admin",
        _ref("Counters"),
    ),
)

_SCHEMAS: dict[str, Any] = {
    "Session": {
        "type": "object",
        "required": ["address", "admin", "csrf"],
        "properties": {
            "address": {"type": "string"},
            "admin": {"type": "boolean"},
            "csrf": {"type": "string", "description": "send back as X-CSRF-Token on writes"},
        },
    },
    "User": {
        "type": "object",
        "required": ["address", "admin", "created"],
        "properties": {
            "address": {"type": "string", "examples": ["roland@falcot.com"]},
            "admin": {"type": "boolean"},
            "created": {"type": "string", "format": "date-time"},
        },
    },
    "NewUser": {
        "type": "object",
        "required": ["address", "password"],
        "properties": {
            "address": {"type": "string"},
            "password": {"type": "string", "maxLength": _MAX_PASSWORD},
            "admin": {"type": "boolean", "default": False},
        },
    },
    "Password": {
        "type": "object",
        "required": ["password"],
        "properties": {"password": {"type": "string", "maxLength": _MAX_PASSWORD}},
    },
    "Counters": {
        "type": "object",
        "required": ["time"],
        "properties": {
            "time": {"type": "number", "description": "server time, Unix seconds"},
            **{
                service: {"type": "object", "additionalProperties": {"type": "number"}}
                for service in COUNTER_VIEWS
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
}

_ERRORS = {
    "user": {"401": "not logged in"},
    "admin": {"401": "not logged in", "403": "not an administrator"},
    "write": {
        "400": "malformed body or unusable value",
        "401": "not logged in",
        "403": "not an administrator, or a missing or wrong CSRF token",
        "404": "no such account",
        "409": "the account exists, or is your own",
        "415": "the body is not application/json",
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of :data:`ROUTES`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        ok: dict[str, Any] = {"description": "OK"}
        if route.status != 204:
            ok["content"] = {"application/json": {"schema": route.response}}
        responses: dict[str, Any] = {str(route.status): ok}
        for status, why in _ERRORS.get(route.access, {}).items():
            error = {"application/json": {"schema": _ref("Error")}}
            responses[status] = {"description": why, "content": error}
        operation: dict[str, Any] = {
            "operationId": f"{route.handler}_{route.method.lower()}_{route.path.count('/')}",
            "summary": route.summary,
            "responses": responses,
            "security": {
                "public": [],
                "user": [{"session": []}],
                "admin": [{"session": []}],
                "write": [{"session": [], "csrf": []}],
            }[route.access],
        }
        if "{address}" in route.path:
            operation["parameters"] = [
                {"name": "address", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(route.body)}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "heron admin API",
            "version": __version__,
            "description": "Log in with POST /login (form fields address, password) to get "
            "the heron_session cookie; GET /api/session gives the CSRF token for writes.",
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "heron_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER},
            },
        },
    }


def user_json(account: Account, admin: bool) -> dict[str, Any]:
    return {"address": account.address, "admin": admin, "created": account.created.isoformat()}


class Api:
    """Handlers of :data:`ROUTES`, over the account service and the live views."""

    def __init__(self, services: Services, sessions: WebSessions) -> None:
        self._services = services
        self._sessions = sessions
        self._document = json.dumps(openapi_document(), indent=1)

    def mount(self, app: web.Application) -> None:
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._guarded(route))

    def _guarded(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        handler: Handler = getattr(self, route.handler)

        async def guarded(request: web.Request) -> web.StreamResponse:
            user = None
            if route.access != "public":
                # Rights as the account has them now, read for this request.
                user = await self._sessions.require(request, admin=route.access != "user")
            if route.access == "write":
                self._sessions.check_csrf(user, request.headers.get(CSRF_HEADER))
            response = await handler(request, user)
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded

    def _views(self, name: str) -> list[dict[str, Any]]:
        view = self._services.views.get(name)
        return view() if view is not None else []

    async def openapi(self, _request: web.Request, _user: WebUser | None) -> web.Response:
        return web.Response(text=self._document, content_type="application/json")

    async def session(self, _request: web.Request, user: WebUser | None) -> web.Response:
        assert user is not None
        return web.json_response({"address": user.address, "admin": user.admin, "csrf": user.csrf})

    async def users(self, _request: web.Request, _user: WebUser | None) -> web.Response:
        accounts = self._services.accounts
        rows = [user_json(a, accounts.is_admin(a)) for a in await accounts.list()]
        return web.json_response(rows)

    async def add_user(self, request: web.Request, actor: WebUser | None) -> web.Response:
        assert actor is not None
        body = await _json_body(request)
        address, password, admin = body.get("address"), body.get("password"), body.get("admin")
        if not isinstance(address, str) or not isinstance(admin, bool | None):
            raise json_error(web.HTTPBadRequest, "address must be a string, admin a boolean")
        local, domain = _address(address)
        accounts = self._services.accounts
        try:
            account = await accounts.add(local, domain, _password(password), admin=bool(admin))
        except AccountExists as exc:
            raise json_error(web.HTTPConflict, str(exc)) from None
        except InvalidInput as exc:
            raise json_error(web.HTTPBadRequest, str(exc)) from None
        log.info("web: %s added %s", actor.address, account.address)
        return web.json_response(
            user_json(account, accounts.is_admin(account)),
            status=201,
            headers={"Location": f"/api/users/{account.address}"},
        )

    async def delete_user(self, request: web.Request, actor: WebUser | None) -> web.Response:
        assert actor is not None
        local, domain = _address(request.match_info["address"])
        if actor.address == f"{local}@{domain}":
            raise json_error(web.HTTPConflict, "you cannot delete your own account")
        try:
            await self._services.accounts.remove(local, domain)
        except AccountNotFound as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        self._sessions.revoke(f"{local}@{domain}")
        log.info("web: %s deleted %s@%s", actor.address, local, domain)
        return web.Response(status=204)

    async def set_password(self, request: web.Request, actor: WebUser | None) -> web.Response:
        assert actor is not None
        local, domain = _address(request.match_info["address"])
        password = _password((await _json_body(request)).get("password"))
        try:
            await self._services.accounts.change_password(local, domain, password)
        except AccountNotFound as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        except InvalidInput as exc:
            raise json_error(web.HTTPBadRequest, str(exc)) from None
        self._sessions.revoke(f"{local}@{domain}")
        log.info("web: %s set the password of %s@%s", actor.address, local, domain)
        return web.Response(status=204)

    async def live(self, request: web.Request, _user: WebUser | None) -> web.Response:
        path = request.match_info.route.resource
        assert path is not None
        return web.json_response(self._views(LIVE_VIEWS[path.canonical]))

    async def counters(self, _request: web.Request, _user: WebUser | None) -> web.Response:
        return web.json_response(counters(self._services))


def counters(services: Services) -> dict[str, Any]:
    """``{"time": now, "sip": {...}, ...}``: the first row of each running service's
    counters view."""
    answer: dict[str, Any] = {"time": time.time()}
    for service, name in COUNTER_VIEWS.items():
        view = services.views.get(name)
        rows = view() if view is not None else []
        if rows:
            answer[service] = rows[0]
    return answer


def _address(text: str) -> tuple[str, str]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None


def _password(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_PASSWORD:
        raise json_error(web.HTTPBadRequest, f"password must be 1 to {_MAX_PASSWORD} characters")
    return value


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise json_error(web.HTTPUnsupportedMediaType, "send application/json")
    if request.content_length is None or request.content_length > _MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=_MAX_BODY,
            actual_size=request.content_length or 0,
            text=json.dumps({"error": f"send a Content-Length of at most {_MAX_BODY}"}),
            content_type="application/json",
        )
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested past the C stack
        raise json_error(web.HTTPBadRequest, "malformed JSON") from None
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "the body must be a JSON object")
    return body
