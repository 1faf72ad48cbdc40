"""WebPhoneCredentials: the web phone's SIP credentials end with their web session."""

from __future__ import annotations

from heron.credentials import WebPhoneCredentials

REALM = "falcot.com"


def test_an_issued_credential_checks_with_its_user_until_expiry() -> None:
    credentials = WebPhoneCredentials(b"k" * 32)
    issued, _ = credentials.issue("roland", now=1000.0, ttl=60)
    checked = credentials.check(issued.username, REALM, now=1059.0)
    assert checked is not None and checked[0] == "roland"
    assert credentials.check(issued.username, REALM, now=1061.0) is None


def test_a_revoked_grant_and_a_revoked_user_no_longer_check() -> None:
    credentials = WebPhoneCredentials(b"k" * 32)
    first, grant = credentials.issue("roland", now=0.0, ttl=60)
    second, _ = credentials.issue("roland", now=0.0, ttl=60)
    other, _ = credentials.issue("bob", now=0.0, ttl=60)
    credentials.revoke(grant)
    assert credentials.check(first.username, REALM, now=1.0) is None
    assert credentials.check(second.username, REALM, now=1.0) is not None
    credentials.revoke_user("roland")
    assert credentials.check(second.username, REALM, now=1.0) is None
    assert credentials.check(other.username, REALM, now=1.0) is not None


def test_a_forged_user_or_expiry_on_a_live_grant_does_not_check() -> None:
    credentials = WebPhoneCredentials(b"k" * 32)
    issued, grant = credentials.issue("roland", now=0.0, ttl=60)
    expiry = issued.username.partition(".")[0]
    assert credentials.check(f"{expiry}.{grant}:admin", REALM, now=1.0) is None
    assert credentials.check(f"{int(expiry) + 999}.{grant}:roland", REALM, now=1.0) is None
    assert credentials.check("garbage", REALM, now=1.0) is None
    assert credentials.check(f"{expiry}:roland", REALM, now=1.0) is None


def test_another_servers_credentials_do_not_check() -> None:
    ours, theirs = WebPhoneCredentials(b"k" * 32), WebPhoneCredentials(b"j" * 32)
    issued, _ = theirs.issue("roland", now=0.0, ttl=60)
    assert ours.check(issued.username, REALM, now=1.0) is None


def test_grants_are_bounded() -> None:
    credentials = WebPhoneCredentials(b"k" * 32, capacity=10)
    for _ in range(100):
        credentials.issue("roland", now=0.0, ttl=60)
    assert len(credentials) <= 10
