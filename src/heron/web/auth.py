"""Web login sessions: who is behind a browser request, and may they change things.

A login with the heron account address and password (the Argon2 hash every
account has) opens a server-side session; the browser holds only a random
token in the ``heron_session`` cookie (HttpOnly, Secure, SameSite=Strict), so
logging out or deleting the account ends the session at once. Each session
has its own CSRF token, which state-changing forms and API calls send back
(form field ``csrf`` or header ``X-CSRF-Token``).

Failed logins are counted per address and per source address
(:class:`heron.ratelimit.Lockout`, as SIP digest and XMPP SASL do); unknown
accounts, wrong passwords and locks all get the same page, and unknown
accounts cost the same Argon2 work, so the answer tells nothing about which
accounts exist.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from html import escape
from importlib.resources import files
from string import Template
from urllib.parse import quote, urlsplit

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from heron.accounts import Account, AccountService, verify_password
from heron.config import parse_address
from heron.errors import AccountNotFound
from heron.ratelimit import Lockout

__all__ = [
    "COOKIE",
    "SESSIONS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PAGE_HEADERS",
    "WebSessions",
    "WebUser",
    "asset",
    "json_error",
]

log = logging.getLogger(__name__)

COOKIE = "heron_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"

_MAX_FORM = 4096
"""A login form is an address, a password and a path; anything bigger is not one."""
_MAX_PASSWORD = 1024
_MAX_NEXT = 2048

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Headers for every page that shows account data: our own scripts and styles only,
never framed (no clickjacking of the admin buttons), never cached."""


def asset(name: str) -> str:
    """The text of one file under ``heron/web/assets``."""
    return files("heron.web").joinpath("assets", name).read_text("utf-8")


def json_error(error: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``, for API clients."""
    return error(text=json.dumps({"error": message}), content_type="application/json")


@dataclass(frozen=True, slots=True)
class WebUser:
    """The account behind a logged-in browser, as of its login."""

    address: str
    local: str
    domain: str
    admin: bool
    csrf: str = field(repr=False)
    """This session's anti-CSRF token, for forms and the ``X-CSRF-Token`` header."""


@dataclass(frozen=True, slots=True)
class _Session:
    user: WebUser
    expires: float


@cache
def _dummy_hash() -> str:
    return PasswordHasher().hash(secrets.token_urlsafe(16))


def _check(account: Account | None, password: str) -> bool:
    """Argon2 work for unknown accounts too, so timing does not tell which exist."""
    if account is not None:
        return verify_password(account.secrets, password)
    try:
        PasswordHasher().verify(_dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        pass
    return False


def local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None: never an open redirect.

    Refused: absolute URLs, scheme-relative ``//host``, backslashes (which
    browsers read as slashes) and control characters.
    """
    if not target or len(target) > _MAX_NEXT or not target.startswith("/"):
        return None
    if target.startswith("//") or "\\" in target or any(ord(c) < 0x20 for c in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


class WebSessions:
    """Server-side login sessions, in memory: a restart logs everyone out."""

    def __init__(
        self,
        accounts: AccountService,
        *,
        ttl: float = 8 * 3600,
        clock: Callable[[], float] = time.time,
        token: Callable[[], str] = secrets.token_urlsafe,
        lockout: Lockout | None = None,
        capacity: int = 10_000,
    ) -> None:
        self._accounts = accounts
        self._ttl = ttl
        self._clock = clock
        self._token = token
        self._lockout = Lockout() if lockout is None else lockout
        self._capacity = capacity
        self._sessions: dict[str, _Session] = {}
        self._page = Template(asset("login.html"))

    def __len__(self) -> int:
        return len(self._sessions)

    def mount(self, app: web.Application) -> None:
        """Serve the login page, login and logout; ``app[SESSIONS]`` is then ``self``."""
        app[SESSIONS] = self
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)

    def current(self, request: web.Request) -> WebUser | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if self._clock() >= session.expires:
            del self._sessions[token]
            return None
        return session.user

    def require(self, request: web.Request, *, admin: bool = False) -> WebUser:
        """The logged-in user, or the HTTP error to raise: a redirect to the login
        page for pages, 401 for the API; 403 for non-admins where ``admin``."""
        api = request.path.startswith("/api/")
        user = self.current(request)
        if user is None:
            if api:
                raise json_error(web.HTTPUnauthorized, "login required")
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
        if admin and not user.admin:
            if api:
                raise json_error(web.HTTPForbidden, "administrators only")
            raise web.HTTPForbidden(text="administrators only\n")
        return user

    def check_csrf(self, request: web.Request, token: str | None) -> None:
        """Raise 403 unless ``token`` is the CSRF token of the request's session."""
        user = self.current(request)
        if user is None or not token or not hmac.compare_digest(user.csrf, token):
            raise json_error(web.HTTPForbidden, "missing or wrong CSRF token")

    def revoke(self, address: str) -> int:
        """End every session of ``address`` (account deleted or password reset)."""
        tokens = [t for t, s in self._sessions.items() if s.user.address == address]
        for token in tokens:
            del self._sessions[token]
        return len(tokens)

    def _render(self, status: int, next_path: str | None, error: str = "") -> web.Response:
        message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = self._page.safe_substitute(next=escape(next_path or ""), error=message)
        return web.Response(
            status=status, text=body, content_type="text/html", headers=PAGE_HEADERS
        )

    async def _login_page(self, request: web.Request) -> web.Response:
        return self._render(200, local_path(request.query.get("next")))

    async def _login(self, request: web.Request) -> web.Response:
        _same_origin(request)
        if request.content_length is None or request.content_length > _MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(max_size=_MAX_FORM, actual_size=0)
        form = await request.post()
        address, password, target = (form.get(k) for k in ("address", "password", "next"))
        next_path = local_path(target) if isinstance(target, str) else None
        if not isinstance(address, str) or not isinstance(password, str):
            return self._render(400, next_path, "Enter your address and password.")
        user = await self._authenticate(address, password, request.remote)
        if user is None:
            return self._render(403, next_path, "Wrong address or password.")
        token = self._open(user)
        default = "/admin" if user.admin else "/phone"
        response = web.HTTPFound(next_path or default)
        response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="Strict")
        raise response

    async def _authenticate(self, address: str, password: str, peer: str | None) -> WebUser | None:
        key = address.strip().lower()[:320]
        now = self._clock()
        if self._lockout.is_locked(key, peer, now):
            log.info("web login refused for %s from %s: locked out", key, peer)
            return None
        account = None
        try:
            local, domain = parse_address(address)
            account = await self._accounts.get(local, domain)
        except (ValueError, AccountNotFound):
            pass
        loop = asyncio.get_running_loop()
        if len(password) > _MAX_PASSWORD or not await loop.run_in_executor(
            None, _check, account, password
        ):
            self._lockout.failure(key, peer, self._clock())
            log.info("web login failed for %s from %s", key, peer)
            return None
        assert account is not None
        self._lockout.success(key, peer)
        return WebUser(
            address=account.address,
            local=account.local,
            domain=account.domain,
            admin=self._accounts.is_admin(account),
            csrf=self._token(),
        )

    def _open(self, user: WebUser) -> str:
        now = self._clock()
        if len(self._sessions) >= self._capacity:
            expired = [t for t, s in self._sessions.items() if s.expires <= now]
            for token in expired or list(self._sessions)[: max(1, self._capacity // 10)]:
                del self._sessions[token]
        token = self._token()
        self._sessions[token] = _Session(user, now + self._ttl)
        log.info("web login of %s (admin: %s)", user.address, user.admin)
        return token

    async def _logout(self, request: web.Request) -> web.Response:
        _same_origin(request)
        if self.current(request) is not None:
            form = await request.post()
            token = form.get(CSRF_FIELD)
            self.check_csrf(request, token if isinstance(token, str) else None)
            del self._sessions[request.cookies[COOKIE]]
        response = web.HTTPFound("/login")
        response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
        raise response


def _same_origin(request: web.Request) -> None:
    """Refuse cross-site posts (login CSRF) that a browser marks with a foreign Origin."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text="cross-site request refused\n")


SESSIONS = web.AppKey("heron.sessions", WebSessions)
"""Where :meth:`WebSessions.mount` leaves itself, for other modules' handlers:
``request.app[SESSIONS].require(request)``."""
