"""Web sessions outliving account changes made with ``heron`` commands on the server.

Seen on the old code: logged in as an administrator in a browser, then ``heron admin
del`` and ``heron user passwd`` on the server, the session still listed the accounts
and created a new administrator (201). A session must end when its password changes
or its account goes, its rights must be the account's now, and the web phone's SIP
credential must die with the session.
"""

from __future__ import annotations

import pytest

from tests.security.support import DOMAIN, USERS, Target
from tests.security.web_support import Browser, sip_register

ROLAND = f"roland@{DOMAIN}"
ADMIN = f"admin@{DOMAIN}"
NEW_ADMIN = {"address": f"eve@{DOMAIN}", "password": "eve's own", "admin": True}


def _refused(browser: Browser, statuses: tuple[int, ...]) -> None:
    """The session can neither list accounts nor create an administrator."""
    listed = browser.request("GET", "/api/users")
    assert listed.status in statuses, (listed.status, listed.text)
    created = browser.write("POST", "/api/users", NEW_ADMIN)
    assert created.status in statuses, (created.status, created.text)
    assert NEW_ADMIN["address"] not in browser.target.heron.cli("user", "list").stdout


def test_admin_del_on_the_server_takes_the_rights_of_a_live_session(heron: Target) -> None:
    promoted = heron.heron.cli("admin", "add", ROLAND)
    assert promoted.returncode == 0, promoted.stderr
    browser = Browser(heron)
    browser.login_ok(ROLAND, USERS["roland"])
    assert browser.request("GET", "/api/users").status == 200
    demoted = heron.heron.cli("admin", "del", ROLAND)
    assert demoted.returncode == 0, demoted.stderr
    _refused(browser, (403,))
    assert browser.request("GET", "/api/session").json()["admin"] is False


@pytest.mark.parametrize(
    "command",
    [("user", "passwd", ADMIN, "--password", "a new one"), ("user", "del", ADMIN)],
    ids=["passwd", "del"],
)
def test_a_password_change_or_removal_on_the_server_ends_a_live_session(
    heron: Target, command: tuple[str, ...]
) -> None:
    browser = Browser(heron)
    browser.login_ok(ADMIN, USERS["admin"])
    assert browser.request("GET", "/api/users").status == 200
    changed = heron.heron.cli(*command)
    assert changed.returncode == 0, changed.stderr
    _refused(browser, (401,))
    assert browser.request("GET", "/api/session").status == 401
    assert browser.request("GET", "/admin").status == 302  # to the login page


def _phone_credential(browser: Browser) -> tuple[str, str]:
    identity = browser.request("GET", "/config.json").json()["identity"]
    assert identity is not None
    return identity["authorization_user"], identity["password"]


def test_the_web_phone_sip_credential_stops_working_at_logout(heron: Target) -> None:
    browser = Browser(heron)
    browser.login_ok(ROLAND, USERS["roland"])
    username, password = _phone_credential(browser)
    assert sip_register(heron, "roland", username, password) == 200
    logout = browser.request(
        "POST",
        "/logout",
        f"csrf={browser.csrf}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert logout.status == 302
    assert sip_register(heron, "roland", username, password) == 401


def test_the_web_phone_sip_credential_stops_working_at_a_password_change(heron: Target) -> None:
    browser = Browser(heron)
    browser.login_ok(ROLAND, USERS["roland"])
    username, password = _phone_credential(browser)
    assert sip_register(heron, "roland", username, password) == 200
    changed = heron.heron.cli("user", "passwd", ROLAND, "--password", "a new one")
    assert changed.returncode == 0, changed.stderr
    assert sip_register(heron, "roland", username, password) == 401
