"""A web login of an account imported from Prosody derives the secrets it was imported without."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from heron.accounts import (
    Account,
    ScramHash,
    derive_scram_keys,
    imported_secrets,
    saslprep,
    verify_password,
)
from tests.unit.web.conftest import DOMAIN, Site

MakeSite = Callable[..., Awaitable[Site]]
PASSWORD = "old prosody password"


async def test_web_login_with_the_old_password_completes_the_account(make_site: MakeSite) -> None:
    site = await make_site()
    identity = site.services.accounts.identity("pat", DOMAIN)
    keys = derive_scram_keys(saslprep(PASSWORD), b"prosody-salt", 4096, ScramHash.SHA1)
    secrets = imported_secrets(identity, scram_sha1=keys, salt=b"s", iterations=1)
    site.store.accounts[("pat", DOMAIN)] = Account(
        "pat", DOMAIN, False, secrets, datetime(2026, 1, 1, tzinfo=UTC)
    )
    browser = site.browser()
    await browser.login_ok(f"pat@{DOMAIN}", PASSWORD)
    completed = site.store.accounts[("pat", DOMAIN)].secrets
    assert completed.missing == frozenset()
    assert completed.scram_keys(ScramHash.SHA1) == keys
    assert verify_password(completed, PASSWORD)
    # Completing is no new password: the session that did it goes on.
    assert (await browser.request("GET", "/api/session")).status == 200


async def test_web_login_with_a_wrong_password_completes_nothing(make_site: MakeSite) -> None:
    site = await make_site()
    identity = site.services.accounts.identity("pat", DOMAIN)
    keys = derive_scram_keys(saslprep(PASSWORD), b"prosody-salt", 4096, ScramHash.SHA1)
    secrets = imported_secrets(identity, scram_sha1=keys, salt=b"s", iterations=1)
    site.store.accounts[("pat", DOMAIN)] = Account(
        "pat", DOMAIN, False, secrets, datetime(2026, 1, 1, tzinfo=UTC)
    )
    response = await site.browser().login(f"pat@{DOMAIN}", "wrong")
    assert response.status != 302
    assert site.store.accounts[("pat", DOMAIN)].secrets == secrets
