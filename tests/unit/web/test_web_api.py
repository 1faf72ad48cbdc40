"""The admin JSON API: account round trips, live views, counters, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from heron.web.api import ROUTES
from tests.unit.web.conftest import ADMIN, USER, Browser, Site

MakeSite = Callable[..., Awaitable[Site]]


async def admin_browser(site: Site) -> Browser:
    browser = site.browser()
    await browser.login_ok(*ADMIN)
    return browser


async def test_added_user_is_listed_and_can_log_in(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    body = {"address": "Alice@Example.org", "password": "alice secret"}
    added = await browser.write("POST", "/api/users", body)
    assert added.status == 201
    assert (await added.json())["address"] == "alice@example.org"
    assert added.headers["Location"] == "/api/users/alice@example.org"
    listed = await (await browser.request("GET", "/api/users")).json()
    assert {u["address"]: u["admin"] for u in listed} == {
        "root@example.org": True,
        "roland@example.org": False,
        "alice@example.org": False,
    }
    assert all(set(u) == {"address", "admin", "created"} for u in listed)  # no secrets
    assert (await site.browser().login("alice@example.org", "alice secret")).status == 302


async def test_added_admin_is_an_admin(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    body = {"address": "boss@example.org", "password": "pw", "admin": True}
    assert (await browser.write("POST", "/api/users", body)).status == 201
    boss = site.browser()
    await boss.login_ok("boss@example.org", "pw")
    assert (await boss.request("GET", "/api/users")).status == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"address": "roland@example.org", "password": "x"}, 409),
        ({"address": "not an address", "password": "x"}, 400),
        ({"address": "x@elsewhere.example", "password": "x"}, 400),
        ({"address": "x@example.org", "password": ""}, 400),
        ({"address": "x@example.org", "password": "x" * 1025}, 400),
        ({"address": "x@example.org"}, 400),
        ({"address": "x@example.org", "password": "x", "admin": "yes"}, 400),
        ({"address": 5, "password": "x"}, 400),
        (["x@example.org", "x"], 400),
    ],
)
async def test_add_user_refuses_bad_input_with_a_json_error(
    make_site: MakeSite, body: Any, status: int
) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    response = await browser.write("POST", "/api/users", body)
    assert response.status == status
    assert isinstance((await response.json())["error"], str)
    assert len(site.store.accounts) == 2


async def test_writes_need_a_json_body(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    headers = {"X-CSRF-Token": browser.csrf or ""}
    form = await browser.request(
        "POST", "/api/users", headers=headers, data={"address": "x@example.org", "password": "x"}
    )
    assert form.status == 415
    broken = await browser.request(
        "POST",
        "/api/users",
        headers={**headers, "Content-Type": "application/json"},
        data=b"{not json",
    )
    assert broken.status == 400


async def test_delete_user_removes_the_account_and_its_sessions(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    roland = site.browser()
    await roland.login_ok(*USER)
    assert (await browser.write("DELETE", "/api/users/roland@example.org")).status == 204
    assert ("roland", "example.org") not in site.store.accounts
    assert (await roland.request("GET", "/api/session")).status == 401
    again = await browser.write("DELETE", "/api/users/roland@example.org")
    assert again.status == 404


async def test_an_admin_cannot_delete_their_own_account(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    assert (await browser.write("DELETE", "/api/users/root@example.org")).status == 409
    assert ("root", "example.org") in site.store.accounts


async def test_password_reset_changes_the_login_and_ends_old_sessions(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    roland = site.browser()
    await roland.login_ok(*USER)
    path = "/api/users/roland@example.org/password"
    assert (await browser.write("POST", path, {"password": "new one"})).status == 204
    assert (await roland.request("GET", "/api/session")).status == 401
    assert (await site.browser().login(*USER)).status == 403
    assert (await site.browser().login(USER[0], "new one")).status == 302
    missing = await browser.write(
        "POST", "/api/users/nobody@example.org/password", {"password": "x"}
    )
    assert missing.status == 404


async def test_live_views_are_listed_and_empty_while_a_service_is_off(make_site: MakeSite) -> None:
    site = await make_site()
    row = {"aor": "sip:roland@example.org", "contact": "<sip:r@h>", "expires_in": 60}
    site.views["sip.registrations"] = lambda: [row]
    browser = await admin_browser(site)
    assert await (await browser.request("GET", "/api/registrations")).json() == [row]
    for path in ("/api/allocations", "/api/sessions", "/api/rooms", "/api/s2s"):
        answer = await browser.request("GET", path)
        assert answer.status == 200 and await answer.json() == []


async def test_counters_gather_every_running_service(make_site: MakeSite) -> None:
    site = await make_site()
    site.views["sip.counters"] = lambda: [{"requests": 7, "bindings": 1}]
    site.views["xmpp.counters"] = lambda: [{"stanzas": 3}]
    browser = await admin_browser(site)
    counters = await (await browser.request("GET", "/api/counters")).json()
    assert counters["sip"] == {"requests": 7, "bindings": 1}
    assert counters["xmpp"] == {"stanzas": 3}
    assert "turn" not in counters
    assert counters["time"] > 1_600_000_000  # Unix seconds, for the rate chart


async def test_openapi_document_lists_every_api_route(make_site: MakeSite) -> None:
    site = await make_site()
    document = await (await site.browser().request("GET", "/api/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in site.client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == documented
    assert len(documented) == len(ROUTES)
    schemas = document["components"]["schemas"]
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for content in response.get("content", {}).values():
                    ref = content["schema"].get("$ref", "")
                    assert not ref or ref.removeprefix("#/components/schemas/") in schemas


async def test_api_answers_are_never_cached(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    assert (await browser.request("GET", "/api/users")).headers["Cache-Control"] == "no-store"


async def test_malformed_bodies_and_tokens_are_400s_not_500s(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await admin_browser(site)
    json_headers = {"Content-Type": "application/json", "X-CSRF-Token": browser.csrf or ""}
    for body in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000):
        deep = await browser.request("POST", "/api/users", data=body, headers=json_headers)
        assert deep.status == 400
    non_ascii = await browser.request(
        "POST", "/api/users", data=b"{}", headers={**json_headers, "X-CSRF-Token": "tök"}
    )
    assert non_ascii.status == 400
    for content_type, body in [
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),
        ("application/x-www-form-urlencoded", b"address=\xff&password=\xfe"),
    ]:
        login = await site.browser().request(
            "POST", "/login", data=body, headers={"Content-Type": content_type}
        )
        assert login.status == 400, await login.text()
