"""Web login sessions: cookie flags, expiry, logout, CSRF, guess throttle, redirects, admin
rights, and sessions that end with their account's password."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.accounts import AccountChange
from heron.guesses import GuessThrottle
from heron.web.auth import COOKIE, local_path
from tests.unit.web.conftest import ADMIN, USER, Site

MakeSite = Callable[..., Awaitable[Site]]


async def test_login_sets_an_httponly_secure_strict_session_cookie(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    response = await browser.login(*ADMIN)
    assert response.status == 302
    assert response.headers["Location"] == "/admin"
    cookie = browser.cookies[-1][COOKIE]
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert len(cookie.value) >= 32
    assert cookie["expires"] == "" and cookie["max-age"] == ""  # gone with the browser
    session = await (await browser.request("GET", "/api/session")).json()
    assert session["address"] == ADMIN[0] and session["admin"] is True


async def test_login_sends_a_non_admin_to_the_phone_and_a_safe_next_anywhere(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    assert (await site.browser().login(*USER)).headers["Location"] == "/phone"
    answer = await site.browser().login(*USER, next_path="/phone?call=bob")
    assert answer.headers["Location"] == "/phone?call=bob"


async def test_login_answers_unknown_users_and_wrong_passwords_alike(make_site: MakeSite) -> None:
    site = await make_site()
    wrong = await site.browser().login(USER[0], "not it")
    unknown = await site.browser().login("nobody@example.org", "not it")
    malformed = await site.browser().login("no address at all", "not it")
    assert wrong.status == unknown.status == malformed.status == 403
    assert await wrong.text() == await unknown.text() == await malformed.text()
    assert "Wrong address or password" in await wrong.text()
    assert COOKIE not in wrong.headers.get("Set-Cookie", "")


async def test_login_page_escapes_next_and_sets_a_strict_content_security_policy(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    page = await site.browser().request("GET", '/login?next=/x"><script>alert(1)</script>')
    text = await page.text()
    assert "<script>alert" not in text
    assert 'value="/x&quot;&gt;&lt;script&gt;' in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


async def test_session_expires_after_its_lifetime(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    site.clock.now += 3599
    assert (await browser.request("GET", "/api/users")).status == 200
    site.clock.now += 1
    assert (await browser.request("GET", "/api/users")).status == 401
    assert len(site.sessions) == 0


async def test_logout_ends_the_session_on_the_server(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    stolen = browser.token
    response = await browser.request("POST", "/logout", data={"csrf": browser.csrf or ""})
    assert response.status == 302 and response.headers["Location"] == "/login"
    assert browser.token is None  # the cookie is cleared
    browser.token = stolen  # a copy of the cookie is worth nothing now
    assert (await browser.request("GET", "/api/users")).status == 401


async def test_logout_without_the_csrf_token_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    assert (await browser.request("POST", "/logout", data={"csrf": "guess"})).status == 403
    assert (await browser.request("GET", "/api/users")).status == 200


@pytest.mark.parametrize("token", [None, "", "wrong"])
async def test_api_write_without_the_right_csrf_token_is_refused(
    make_site: MakeSite, token: str | None
) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    browser.csrf = token
    response = await browser.write(
        "POST", "/api/users", {"address": "x@example.org", "password": "p"}
    )
    assert response.status == 403
    assert "CSRF" in (await response.json())["error"]
    assert ("x", "example.org") not in site.store.accounts


async def test_cross_site_login_post_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    form = {"address": ADMIN[0], "password": ADMIN[1]}
    response = await site.browser().request(
        "POST", "/login", data=form, headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert len(site.sessions) == 0


async def test_failed_logins_make_the_account_wait_even_for_the_right_password(
    make_site: MakeSite,
) -> None:
    site = await make_site(guesses=GuessThrottle(account_free=3, source_free=100))
    for _ in range(4):
        assert (await site.browser().login(USER[0], "guess")).status == 403
    held = await site.browser().login(*USER)
    assert held.status == 429
    assert held.headers["Retry-After"] == "1"
    assert "Too many attempts" in await held.text()
    assert (await site.browser().login(*ADMIN)).status == 302  # other accounts still work
    site.clock.now += 1
    assert (await site.browser().login(*USER)).status == 302


@pytest.mark.parametrize(
    "spelling", ["ROLAND@example.org", "roland@EXAMPLE.ORG.", " Roland@example.org"]
)
async def test_spellings_of_an_address_count_as_one_account(
    make_site: MakeSite, spelling: str
) -> None:
    site = await make_site(guesses=GuessThrottle(account_free=1, source_free=100))
    assert (await site.browser().login(USER[0], "guess")).status == 403
    assert (await site.browser().login(spelling, "guess")).status == 403
    assert (await site.browser().login(*USER)).status == 429


async def test_failed_logins_make_the_source_wait_across_accounts(make_site: MakeSite) -> None:
    site = await make_site(guesses=GuessThrottle(account_free=100, source_free=3))
    for name in ("a", "b", "c", "d"):
        await site.browser().login(f"{name}@example.org", "guess")
    assert (await site.browser().login(*ADMIN)).status == 429


async def test_a_session_ends_when_its_password_changes_behind_its_back(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    account = site.store.accounts["root", "example.org"]
    roland = site.store.accounts["roland", "example.org"]
    # Another process (``heron user passwd``) changed it, and its announcement was lost.
    site.store.accounts["root", "example.org"] = replace(account, secrets=roland.secrets)
    assert (await browser.request("GET", "/api/users")).status == 401
    assert len(site.sessions) == 0


async def test_a_session_ends_when_its_account_is_removed_behind_its_back(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    del site.store.accounts["root", "example.org"]
    assert (await browser.request("GET", "/api/users")).status == 401
    assert len(site.sessions) == 0


@pytest.mark.parametrize("change", [AccountChange.PASSWORD, AccountChange.REMOVED])
async def test_an_account_announcement_ends_its_sessions_and_phone_credentials(
    make_site: MakeSite, change: AccountChange
) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*USER)
    other = site.browser()
    await other.login_ok(*ADMIN)
    phone = site.services.web_phone
    issued, grant = phone.issue("roland", now=site.clock.now, ttl=3600)
    site.sessions._sessions[browser.token or ""].grants.append(grant)
    site.services.accounts.announce("roland", "example.org", change)
    assert len(site.sessions) == 1
    assert phone.check(issued.username, "example.org", now=site.clock.now) is None
    assert (await browser.request("GET", "/api/session")).status == 401
    assert (await other.request("GET", "/api/session")).status == 200


async def test_admin_rights_are_read_for_each_request(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    account = site.store.accounts["root", "example.org"]
    site.store.accounts["root", "example.org"] = replace(account, admin=False)
    assert (await browser.request("GET", "/api/users")).status == 403
    assert (await browser.write("POST", "/api/users", {"address": "x@example.org"})).status == 403
    assert (await browser.request("GET", "/admin")).status == 403
    session = await (await browser.request("GET", "/api/session")).json()
    assert session["admin"] is False
    site.store.accounts["root", "example.org"] = account
    assert (await browser.request("GET", "/api/users")).status == 200


async def test_logout_revokes_the_sessions_phone_credentials(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*USER)
    phone = site.services.web_phone
    issued, grant = phone.issue("roland", now=site.clock.now, ttl=3600)
    site.sessions._sessions[browser.token or ""].grants.append(grant)
    assert phone.check(issued.username, "example.org", now=site.clock.now) is not None
    response = await browser.request("POST", "/logout", data={"csrf": browser.csrf or ""})
    assert response.status == 302
    assert phone.check(issued.username, "example.org", now=site.clock.now) is None


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/admin",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/admin\r\nSet-Cookie: x=1",
        "admin",
        "",
    ],
)
async def test_login_never_redirects_off_site(make_site: MakeSite, target: str) -> None:
    site = await make_site()
    response = await site.browser().login(*ADMIN, next_path=target)
    assert response.status == 302
    assert response.headers["Location"] == "/admin"


@given(st.text(max_size=40))
def test_local_path_accepts_only_paths_on_this_site(target: str) -> None:
    accepted = local_path(target)
    if accepted is not None:
        parts = urlsplit(accepted)
        assert accepted.startswith("/") and not accepted.startswith("//")
        assert not parts.scheme and not parts.netloc and "\\" not in accepted


async def test_pages_send_anonymous_users_to_login_and_the_api_answers_401(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    page = await site.browser().request("GET", "/admin?tab=users")
    assert page.status == 302
    location = urlsplit(page.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/admin?tab=users"]}
    api = await site.browser().request("GET", "/api/users")
    assert api.status == 401
    assert (await api.json()) == {"error": "login required"}


async def test_non_admin_is_refused_the_admin_page_and_api(make_site: MakeSite) -> None:
    site = await make_site()
    browser = site.browser()
    await browser.login_ok(*USER)
    assert (await browser.request("GET", "/admin")).status == 403
    assert (await browser.request("GET", "/api/users")).status == 403
    response = await browser.write("DELETE", "/api/users/root@example.org")
    assert response.status == 403
    assert ("root", "example.org") in site.store.accounts


async def test_config_admins_get_admin_rights_without_the_account_flag(
    make_site: MakeSite,
) -> None:
    site = await make_site(admins=frozenset({USER[0]}))
    browser = site.browser()
    await browser.login_ok(*USER)
    assert (await browser.request("GET", "/admin")).status == 200
