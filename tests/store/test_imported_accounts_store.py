"""Imported accounts keep their partial secrets and marks on SQLite, PostgreSQL and MariaDB,
merge idempotently, and are completed by a password change or a login."""

from __future__ import annotations

import pytest

from heron.accounts import (
    AccountChange,
    AccountService,
    Merged,
    ScramHash,
    Secret,
    Secrets,
    derive_scram_keys,
    imported_secrets,
    saslprep,
    turn_long_term_key,
    verify_password,
)
from heron.store import Database, SqlAccountStore
from tests.store.test_accounts_store import POLICY, account_service

pytestmark = pytest.mark.database

SALT = b"08859bcb-fc5b-4e72-9807-07f3dcc92d80"
IDENTITY = POLICY.identity("roland", "falcot.com")


@pytest.fixture
def service(database: Database) -> AccountService:
    return account_service(SqlAccountStore(database))


def coturn_import() -> Secrets:
    key = turn_long_term_key("roland", "falcot.com", "coturn pw")
    return imported_secrets(IDENTITY, turn_key_md5=key, salt=b"s", iterations=4096)


def prosody_import(password: str = "prosody pw") -> Secrets:
    keys = derive_scram_keys(saslprep(password), SALT, 10_000, ScramHash.SHA1)
    return imported_secrets(IDENTITY, scram_sha1=keys, salt=b"s", iterations=4096)


async def test_partial_secrets_and_their_marks_round_trip(service: AccountService) -> None:
    secrets = prosody_import()
    assert await service.merge("roland", "falcot.com", secrets) is Merged.ADDED
    loaded = await service.get("roland", "falcot.com")
    assert loaded.secrets == secrets
    assert loaded.secrets.missing == frozenset(Secret) - {Secret.SCRAM_SHA1}
    assert loaded.secrets.scram_keys(ScramHash.SHA1).iterations == 10_000


async def test_a_second_import_changes_nothing(service: AccountService) -> None:
    changes: list[AccountChange] = []
    service.subscribe(lambda local, domain, change: changes.append(change))
    await service.merge("roland", "falcot.com", coturn_import())
    before = await service.get("roland", "falcot.com")
    assert await service.merge("roland", "falcot.com", coturn_import()) is Merged.UNCHANGED
    assert await service.get("roland", "falcot.com") == before
    assert changes == [AccountChange.ADDED]


async def test_imports_from_two_servers_combine(service: AccountService) -> None:
    await service.merge("roland", "falcot.com", coturn_import())
    dry = await service.merge("roland", "falcot.com", prosody_import(), dry_run=True)
    assert dry is Merged.COMPLETED
    assert Secret.SCRAM_SHA1 in (await service.get("roland", "falcot.com")).secrets.missing
    assert await service.merge("roland", "falcot.com", prosody_import()) is Merged.COMPLETED
    loaded = await service.get("roland", "falcot.com")
    assert loaded.secrets.missing == frozenset(Secret) - {Secret.SCRAM_SHA1, Secret.TURN_MD5}
    assert loaded.secrets.turn_key_md5 == turn_long_term_key("roland", "falcot.com", "coturn pw")


async def test_an_import_never_touches_an_account_heron_derived(service: AccountService) -> None:
    added = await service.add("roland", "falcot.com", "heron pw")
    assert await service.merge("roland", "falcot.com", prosody_import(), admin=False) is (
        Merged.UNCHANGED
    )
    assert await service.get("roland", "falcot.com") == added


async def test_a_login_with_the_old_password_completes_the_account(
    service: AccountService,
) -> None:
    changes: list[AccountChange] = []
    service.subscribe(lambda local, domain, change: changes.append(change))
    await service.merge("roland", "falcot.com", prosody_import("old pw"))
    imported = await service.get("roland", "falcot.com")
    assert verify_password(imported.secrets, "old pw")
    completed = await service.complete(imported, "old pw")
    assert completed == await service.get("roland", "falcot.com")
    assert completed.secrets.missing == frozenset()
    assert completed.secrets.scram_keys(ScramHash.SHA1) == imported.secrets.scram_keys(
        ScramHash.SHA1
    )
    assert {keys.salt for keys in completed.secrets.scram} == {SALT}
    assert verify_password(completed.secrets, "old pw")
    assert changes[-1] is AccountChange.COMPLETED and not changes[-1].ends_proofs
    assert await service.complete(completed, "old pw") is completed
    assert changes.count(AccountChange.COMPLETED) == 1


async def test_a_password_change_completes_the_account(service: AccountService) -> None:
    await service.merge("roland", "falcot.com", coturn_import())
    await service.change_password("roland", "falcot.com", "new pw")
    assert (await service.get("roland", "falcot.com")).secrets.missing == frozenset()


async def test_an_import_grants_no_admin_rights_to_an_existing_account(
    service: AccountService,
) -> None:
    await service.merge("roland", "falcot.com", coturn_import())
    assert await service.merge("roland", "falcot.com", coturn_import(), admin=True) is (
        Merged.UNCHANGED
    )
    assert not (await service.get("roland", "falcot.com")).admin
    await service.merge("boss", "falcot.com", coturn_import(), admin=True)
    assert (await service.get("boss", "falcot.com")).admin
