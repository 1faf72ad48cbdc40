"""A web login of an account imported from Prosody derives the secrets it was imported without."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from heron.accounts import (
    Account,
    ScramHash,
    Secrets,
    derive_scram_keys,
    imported_secrets,
    saslprep,
    verify_password,
)
from tests.unit.web.conftest import DOMAIN, Site

MakeSite = Callable[..., Awaitable[Site]]
PASSWORD = "old prosody password"
KEYS = derive_scram_keys(saslprep(PASSWORD), b"prosody-salt", 4096, ScramHash.SHA1)


def imported_from_prosody(site: Site) -> Secrets:
    """pat, as ``heron import prosody`` leaves an account: SCRAM-SHA-1 keys alone."""
    identity = site.services.accounts.identity("pat", DOMAIN)
    secrets = imported_secrets(identity, scram_sha1=KEYS, salt=b"s", iterations=1)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    site.store.accounts[("pat", DOMAIN)] = Account("pat", DOMAIN, False, secrets, created)
    return secrets


async def test_web_login_with_the_old_password_completes_the_account(make_site: MakeSite) -> None:
    site = await make_site()
    imported_from_prosody(site)
    browser = site.browser()
    await browser.login_ok(f"pat@{DOMAIN}", PASSWORD)
    completed = site.store.accounts[("pat", DOMAIN)].secrets
    assert completed.missing == frozenset()
    assert completed.scram_keys(ScramHash.SHA1) == KEYS
    assert verify_password(completed, PASSWORD)
    # Completing is no new password: the session that did it goes on.
    assert (await browser.request("GET", "/api/session")).status == 200


async def test_web_login_with_a_wrong_password_completes_nothing(make_site: MakeSite) -> None:
    site = await make_site()
    secrets = imported_from_prosody(site)
    response = await site.browser().login(f"pat@{DOMAIN}", "wrong")
    assert response.status != 302
    assert site.store.accounts[("pat", DOMAIN)].secrets == secrets
