"""Web login sessions: who is behind a browser request, and may they change things.

A login with the heron account address and password (the Argon2 hash every
account has) opens a server-side session; the browser holds only a random
token in the ``heron_session`` cookie (HttpOnly, Secure, SameSite=Strict), so
logging out or deleting the account ends the session at once. Each session
has its own CSRF token, which state-changing forms and API calls send back
(form field ``csrf`` or header ``X-CSRF-Token``).

A session is checked against the account on every request: the account is
read again, so a session ends as soon as its account is deleted or its
password changes (also when ``heron user del|passwd`` did it while the
announcement to this server was lost), and administrator rights are those of
the account now, not at login. Account announcements
(:meth:`heron.accounts.AccountService.subscribe`, which ``heron`` commands
reach over the control socket) end the sessions at once as well, and with
them the web phone's SIP credentials (:class:`heron.credentials.WebPhoneCredentials`)
each session was given, as logging out does.

Failed logins go into the guess throttle every protocol shares
(``services.guards.guesses``: growing waits per account and per source
network), and passwords are checked by its bounded Argon2 verifier; unknown
accounts and wrong passwords get the same page, and unknown accounts cost the
same Argon2 work, so the answer tells nothing about which accounts exist.
While a wait is due the answer is 429 with Retry-After, unchecked.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from importlib.resources import files
from string import Template
from urllib.parse import quote, urlsplit

from aiohttp import web

from heron.accounts import Account, AccountChange, AccountService
from heron.config import parse_address
from heron.credentials import WebPhoneCredentials
from heron.errors import AccountNotFound
from heron.guards import Guards
from heron.guesses import account_key
from heron.web.proxy import client_of

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
    "X-Frame-Options": "DENY",
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
    """The account behind a logged-in browser, as of this request."""

    address: str
    local: str
    domain: str
    admin: bool
    """Administrator rights now (read again for every request)."""
    csrf: str = field(repr=False)
    """This session's anti-CSRF token, for forms and the ``X-CSRF-Token`` header."""


@dataclass(slots=True)
class _Session:
    local: str
    domain: str
    csrf: str = field(repr=False)
    proof: str = field(repr=False)
    """The account's password hash at login: another one now means a new password."""
    expires: float
    grants: list[str] = field(default_factory=list)
    """Web phone credentials issued to this session, revoked when it ends."""

    @property
    def account(self) -> str:
        return account_key(self.local, self.domain)


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
        guards: Guards | None = None,
        web_phone: WebPhoneCredentials | None = None,
        capacity: int = 10_000,
    ) -> None:
        self._accounts = accounts
        self._ttl = ttl
        self._clock = clock
        self._token = token
        self._guards = Guards() if guards is None else guards
        self._web_phone = web_phone
        self._capacity = capacity
        self._sessions: dict[str, _Session] = {}
        self._page = Template(asset("login.html"))
        accounts.subscribe(self._account_changed)

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def web_phone(self) -> WebPhoneCredentials | None:
        return self._web_phone

    def mount(self, app: web.Application) -> None:
        """Serve the login page, login and logout; ``app[SESSIONS]`` is then ``self``."""
        app[SESSIONS] = self
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)

    async def current(self, request: web.Request) -> WebUser | None:
        """The user behind the request's session cookie, with the account as it is now;
        None (and the session ended) once the account is gone or has a new password."""
        token = request.cookies.get(COOKIE)
        session = self._sessions.get(token) if token else None
        if token is None or session is None:
            return None
        if self._clock() >= session.expires:
            self._end(token, "expired")
            return None
        account = await self._account(session.local, session.domain)
        if self._sessions.get(token) is not session:
            return None  # ended while the account was read
        if account is None:
            self._end(token, "account removed")
            return None
        if not hmac.compare_digest(account.secrets.password_hash.encode(), session.proof.encode()):
            self._end(token, "password changed")
            return None
        return WebUser(
            address=account.address,
            local=account.local,
            domain=account.domain,
            admin=self._accounts.is_admin(account),
            csrf=session.csrf,
        )

    async def require(self, request: web.Request, *, admin: bool = False) -> WebUser:
        """The logged-in user, or the HTTP error to raise: a redirect to the login
        page for pages, 401 for the API; 403 for non-admins where ``admin``."""
        api = request.path.startswith("/api/")
        user = await self.current(request)
        if user is None:
            if api:
                raise json_error(web.HTTPUnauthorized, "login required")
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
        if admin and not user.admin:
            if api:
                raise json_error(web.HTTPForbidden, "administrators only")
            raise web.HTTPForbidden(text="administrators only\n")
        return user

    @staticmethod
    def check_csrf(user: WebUser | None, token: str | None) -> None:
        """Raise 403 unless ``token`` is the CSRF token of ``user``'s session."""
        if token is not None and not token.isascii():  # no token of ours; compare_digest
            raise json_error(web.HTTPBadRequest, "malformed CSRF token")  # would TypeError
        if user is None or not token or not hmac.compare_digest(user.csrf, token):
            raise json_error(web.HTTPForbidden, "missing or wrong CSRF token")

    def grant(self, request: web.Request, grant: str) -> float:
        """Tie a web phone grant to the request's session, so that it is revoked when
        the session ends; the seconds the session has left (0: revoked already)."""
        token = request.cookies.get(COOKIE)
        session = self._sessions.get(token) if token else None
        left = 0.0 if session is None else session.expires - self._clock()
        if session is None or left <= 0:
            if self._web_phone is not None:
                self._web_phone.revoke(grant)
            return 0.0
        session.grants.append(grant)
        return left

    def revoke(self, address: str) -> int:
        """End every session of ``address`` (account deleted or password reset)."""
        local, _, domain = address.rpartition("@")
        key = account_key(local, domain)
        tokens = [t for t, s in self._sessions.items() if s.account == key]
        for token in tokens:
            self._end(token, "account changed")
        return len(tokens)

    async def _account(self, local: str, domain: str) -> Account | None:
        try:
            return await self._accounts.get(local, domain)
        except AccountNotFound:
            return None

    def _account_changed(self, local: str, domain: str, change: AccountChange) -> None:
        # Admin rights are read for each request: only a new secret or none ends sessions.
        if change.ends_proofs:
            self.revoke(f"{local}@{domain}")

    def _end(self, token: str, why: str) -> None:
        session = self._sessions.pop(token, None)
        if session is None:
            return
        if self._web_phone is not None:
            for grant in session.grants:
                self._web_phone.revoke(grant)
        log.info("web session of %s@%s ended: %s", session.local, session.domain, why)

    def _render(
        self,
        status: int,
        next_path: str | None,
        error: str = "",
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = self._page.safe_substitute(next=escape(next_path or ""), error=message)
        return web.Response(
            status=status,
            text=body,
            content_type="text/html",
            headers={**PAGE_HEADERS, **(headers or {})},
        )

    async def _login_page(self, request: web.Request) -> web.Response:
        return self._render(200, local_path(request.query.get("next")))

    async def _login(self, request: web.Request) -> web.Response:
        _same_origin(request)
        if request.content_length is None or request.content_length > _MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(max_size=_MAX_FORM, actual_size=0)
        form = await read_form(request)
        address, password, target = (form.get(k) for k in ("address", "password", "next"))
        next_path = local_path(target) if isinstance(target, str) else None
        if not isinstance(address, str) or not isinstance(password, str):
            return self._render(400, next_path, "Enter your address and password.")
        # An unknown client (behind an untrusted proxy) has no source to count against.
        outcome = await self._authenticate(address, password, client_of(request).address)
        if isinstance(outcome, float):
            seconds = str(math.ceil(outcome))
            message = f"Too many attempts: try again in {seconds} seconds."
            return self._render(429, next_path, message, {"Retry-After": seconds})
        if outcome is None:
            return self._render(403, next_path, "Wrong address or password.")
        token = self._open(*outcome)
        default = "/admin" if outcome[0].admin else "/phone"
        response = web.HTTPFound(next_path or default)
        response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="Strict")
        raise response

    async def _authenticate(
        self, address: str, password: str, peer: str | None
    ) -> tuple[WebUser, str] | float | None:
        """The user and their password hash; None for a wrong address or password; the
        seconds to wait while the guess throttle holds the account or the source."""
        guesses = self._guards.guesses
        try:
            local, domain = parse_address(address[:320])
        except ValueError:
            local, domain = "", ""
        key = account_key(local, domain) if local else None
        name = _printable(key or address[:64])
        wait = guesses.wait(key, peer, self._clock())
        if wait > 0:
            # Not checked, not counted; the line that started the wait said why.
            log.debug(
                "web login for %s from %s refused unchecked: %.0f s to wait", name, peer, wait
            )
            return wait
        account = await self._account(local, domain) if local else None
        secrets_ = account.secrets if account is not None else None
        if len(password) > _MAX_PASSWORD or not await self._guards.verifier.verify(
            secrets_, password
        ):
            now = self._clock()
            guesses.failure(key, peer, now)
            wait = guesses.wait(key, peer, now)
            if wait > 0:
                log.info(
                    "web login failed for %s from %s; further guesses wait %.0f s",
                    name,
                    peer,
                    wait,
                )
            else:
                log.info("web login failed for %s from %s", name, peer)
            return None
        assert account is not None and key is not None
        guesses.success(key, peer, self._clock())
        # An imported account gets what it misses; the session is bound to the hash it has then.
        account = await self._accounts.complete(account, password)
        user = WebUser(
            address=account.address,
            local=account.local,
            domain=account.domain,
            admin=self._accounts.is_admin(account),
            csrf=self._token(),
        )
        return user, account.secrets.password_hash

    def _open(self, user: WebUser, proof: str) -> str:
        now = self._clock()
        if len(self._sessions) >= self._capacity:
            expired = [t for t, s in self._sessions.items() if s.expires <= now]
            for token in expired or list(self._sessions)[: max(1, self._capacity // 10)]:
                self._end(token, "expired" if expired else "too many sessions")
        token = self._token()
        self._sessions[token] = _Session(user.local, user.domain, user.csrf, proof, now + self._ttl)
        log.info("web login of %s (admin: %s)", user.address, user.admin)
        return token

    async def _logout(self, request: web.Request) -> web.Response:
        _same_origin(request)
        user = await self.current(request)
        if user is not None:
            form = await read_form(request)
            token = form.get(CSRF_FIELD)
            self.check_csrf(user, token if isinstance(token, str) else None)
            self._end(request.cookies[COOKIE], "logged out")
        response = web.HTTPFound("/login")
        response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
        raise response


async def read_form(
    request: web.Request,
) -> Mapping[str, str | bytes | bytearray | web.FileField]:
    """The request's form, or 400 for one that cannot be read: a multipart body
    without its boundary, a url-encoded one that is not UTF-8 (aiohttp raises
    ValueError or UnicodeDecodeError, which would be a 500)."""
    try:
        return await request.post()
    except (ValueError, UnicodeDecodeError, AssertionError):
        raise web.HTTPBadRequest(text="malformed form\n") from None


def _printable(text: str) -> str:
    """``text`` for a log line: control characters (CR, LF) escaped."""
    return text.encode("unicode_escape").decode("ascii")


def _same_origin(request: web.Request) -> None:
    """Refuse cross-site posts (login CSRF) that a browser marks with a foreign Origin."""
    origin = request.headers.get("Origin")
    # Plain HTTP reaches heron only from a TLS-terminating proxy: the page was https.
    if origin is not None and origin not in (
        f"{request.scheme}://{request.host}",
        f"https://{request.host}",
    ):
        raise web.HTTPForbidden(text="cross-site request refused\n")


SESSIONS = web.AppKey("heron.sessions", WebSessions)
"""Where :meth:`WebSessions.mount` leaves itself, for other modules' handlers:
``request.app[SESSIONS].require(request)``."""
