"""The admin web app in process: accounts in memory, a fake clock, an aiohttp test client.

Session cookies are Secure, so a client on plain HTTP would never send them back;
:class:`Browser` carries the token in a Cookie header itself, as a browser on HTTPS does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from heron.accounts import Account, AccountPolicy, AccountService
from heron.component import Services
from heron.config import Config
from heron.control import View
from heron.credentials import WebPhoneCredentials
from heron.guards import Guards
from heron.guesses import GuessThrottle
from heron.store.memory import MemoryAccountStore
from heron.web import admin
from heron.web.auth import COOKIE, SESSIONS, WebSessions

DOMAIN = "example.org"
ADMIN = ("root@example.org", "admin password")
USER = ("roland@example.org", "user password")
_SEEDED: list[Account] = []


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Browser:
    """A test client that keeps the session cookie, and the CSRF token once asked."""

    client: TestClient[web.Request, web.Application]
    token: str | None = None
    csrf: str | None = None
    cookies: list[SimpleCookie] = field(default_factory=list)

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if self.token is not None:
            merged["Cookie"] = f"{COOKIE}={self.token}"
        return merged

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> ClientResponse:
        response = await self.client.request(
            method, path, headers=self._headers(headers), allow_redirects=False, **kwargs
        )
        for value in response.headers.getall("Set-Cookie", []):
            cookie: SimpleCookie = SimpleCookie(value)
            self.cookies.append(cookie)
            if COOKIE in cookie:
                self.token = cookie[COOKIE].value or None
        return response

    async def login(self, address: str, password: str, next_path: str = "") -> ClientResponse:
        form = {"address": address, "password": password, "next": next_path}
        return await self.request("POST", "/login", data=form)

    async def login_ok(self, address: str, password: str) -> None:
        response = await self.login(address, password)
        assert response.status == 302, await response.text()
        answer = await (await self.request("GET", "/api/session")).json()
        self.csrf = answer["csrf"]

    async def write(self, method: str, path: str, body: Any = None) -> ClientResponse:
        """A state-changing API call with the CSRF header, as admin.js sends it."""
        headers = {"X-CSRF-Token": self.csrf or ""}
        return await self.request(method, path, headers=headers, json=body)


@dataclass
class Site:
    services: Services
    store: MemoryAccountStore
    clock: Clock
    views: dict[str, View]
    client: TestClient[web.Request, web.Application]

    @property
    def sessions(self) -> WebSessions:
        return self.client.app[SESSIONS]

    def browser(self) -> Browser:
        return Browser(self.client)


def accounts_service(
    store: MemoryAccountStore, admins: frozenset[str] = frozenset()
) -> AccountService:
    policy = AccountPolicy(DOMAIN, DOMAIN, DOMAIN, (DOMAIN,), admins)
    return AccountService(store, policy, iterations=4096)


@pytest.fixture
async def make_site(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Site]]]:
    """Build the app (``admin.mount``) around in-memory accounts, with root (admin) and
    roland; the sessions run on a fake clock."""
    clients: list[TestClient[web.Request, web.Application]] = []
    closing: list[Guards] = []

    async def make(
        *,
        metrics: str = "localhost",
        guesses: GuessThrottle | None = None,
        admins: frozenset[str] = frozenset(),
    ) -> Site:
        store = MemoryAccountStore()
        accounts = accounts_service(store, admins)
        if not _SEEDED:  # Argon2 and SCRAM cost ~0.3 s an account: derive once per run
            _SEEDED.append(await accounts.add("root", DOMAIN, ADMIN[1], admin=True))
            _SEEDED.append(await accounts.add("roland", DOMAIN, USER[1]))
        store.accounts = {(a.local, a.domain): a for a in _SEEDED}
        config = Config.model_validate(
            {"domain": DOMAIN, "data_dir": str(tmp_path), "web": {"metrics": metrics}}
        )
        guards = Guards(guesses=GuessThrottle() if guesses is None else guesses)
        closing.append(guards)
        web_phone = WebPhoneCredentials(b"0123456789abcdef0123456789abcdef")
        services = Services(config, accounts, guards, web_phone)
        clock = Clock()
        sessions = WebSessions(accounts, ttl=3600, clock=clock, guards=guards, web_phone=web_phone)
        app = web.Application()
        admin.mount(app, services, sessions)
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Site(services, store, clock, services.views, client)

    yield make
    for client in clients:
        await client.close()
    for guards in closing:
        guards.close()
