"""The account store round-trips on SQLite, PostgreSQL and MariaDB alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from heron.accounts import (
    AccountChange,
    AccountPolicy,
    AccountService,
    AccountStore,
    ScramHash,
    verify_password,
)
from heron.errors import AccountExists, AccountNotFound, InvalidInput, StoreError
from heron.store import Database, SqlAccountStore

pytestmark = pytest.mark.database

POLICY = AccountPolicy(
    domain="falcot.com",
    sip_domain="sip.falcot.com",
    turn_realm="falcot.com",
    account_domains=("falcot.com", "example.org"),
    admins=frozenset({"boss@falcot.com"}),
)
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def account_service(store: AccountStore) -> AccountService:
    return AccountService(store, POLICY, iterations=4096, clock=lambda: CREATED)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[AccountService]:
    database = Database(database_url)
    await database.open()
    try:
        yield account_service(SqlAccountStore(database))
    finally:
        await database.close()


async def test_account_round_trips_with_every_secret(service: AccountService) -> None:
    added = await service.add("roland", "falcot.com", "secret", admin=True)
    loaded = await service.get("roland", "falcot.com")
    assert loaded == added
    assert loaded.created == CREATED
    assert loaded.admin
    assert verify_password(loaded.secrets, "secret")
    assert len(loaded.secrets.scram_keys(ScramHash.SHA512).server_key) == 64


async def test_duplicate_account_is_refused(service: AccountService) -> None:
    await service.add("roland", "falcot.com", "secret")
    with pytest.raises(AccountExists, match="roland@falcot.com already exists"):
        await service.add("roland", "falcot.com", "other")


async def test_same_name_in_two_domains_gets_distinct_keys(service: AccountService) -> None:
    main = await service.add("roland", "falcot.com", "secret")
    other = await service.add("roland", "example.org", "secret")
    assert main.secrets.sip_realm == "sip.falcot.com"
    assert other.secrets.sip_realm == "example.org"
    assert main.secrets.turn_key_md5 != other.secrets.turn_key_md5
    assert [a.address for a in await service.list()] == ["roland@example.org", "roland@falcot.com"]
    assert [a.address for a in await service.list("falcot.com")] == ["roland@falcot.com"]


async def test_password_change_replaces_every_secret(service: AccountService) -> None:
    before = (await service.add("roland", "falcot.com", "secret")).secrets
    await service.change_password("roland", "falcot.com", "new password")
    after = (await service.get("roland", "falcot.com")).secrets
    for field in ("password_hash", "sip_ha1_md5", "sip_ha1_sha256", "turn_key_md5"):
        assert getattr(before, field) != getattr(after, field), field
    assert before.scram != after.scram
    assert verify_password(after, "new password")
    assert not verify_password(after, "secret")


async def test_delete_and_unknown_accounts(service: AccountService) -> None:
    await service.add("roland", "falcot.com", "secret")
    await service.remove("roland", "falcot.com")
    for operation in (
        service.remove("roland", "falcot.com"),
        service.get("roland", "falcot.com"),
        service.change_password("roland", "falcot.com", "x"),
        service.set_admin("roland", "falcot.com", True),
    ):
        with pytest.raises(AccountNotFound, match="roland@falcot.com does not exist"):
            await operation


async def test_additions_password_changes_and_removals_are_announced(
    service: AccountService,
) -> None:
    """A new account is announced too: a cache may remember its name as unknown."""
    heard: list[tuple[str, str, AccountChange]] = []
    service.subscribe(lambda *change: heard.append(change))
    await service.add("roland", "falcot.com", "secret")
    await service.change_password("roland", "falcot.com", "new password")
    await service.remove("roland", "falcot.com")
    with pytest.raises(AccountNotFound):
        await service.remove("roland", "falcot.com")
    assert heard == [
        ("roland", "falcot.com", AccountChange.ADDED),
        ("roland", "falcot.com", AccountChange.PASSWORD),
        ("roland", "falcot.com", AccountChange.REMOVED),
    ]
    assert [change.ends_proofs for _, _, change in heard] == [False, True, True]


async def test_admin_flag_and_config_admins(service: AccountService) -> None:
    roland = await service.add("roland", "falcot.com", "secret")
    boss = await service.add("boss", "falcot.com", "secret")
    assert not service.is_admin(roland)
    assert service.is_admin(boss)
    await service.set_admin("roland", "falcot.com", True)
    assert service.is_admin(await service.get("roland", "falcot.com"))


async def test_domain_not_served_is_refused(service: AccountService) -> None:
    with pytest.raises(InvalidInput, match="domain debian.org is not served here"):
        await service.add("roland", "debian.org", "secret")


async def test_migrations_run_twice_without_harm(database_url: str) -> None:
    for _ in range(2):
        database = Database(database_url)
        await database.open()
        await database.close()


async def test_unreachable_database_is_one_line_store_error() -> None:
    database = Database("postgresql://nobody@127.0.0.1:1/nothing")
    with pytest.raises(StoreError) as raised:
        await database.open()
    message = str(raised.value)
    assert message.startswith("database postgresql+asyncpg://nobody@127.0.0.1:1/nothing: ")
    assert "\n" not in message


def test_unknown_database_kind_is_named() -> None:
    with pytest.raises(StoreError, match="unsupported database 'oracle'"):
        Database("oracle://scott:tiger@localhost/db")


def test_database_password_is_hidden_from_messages() -> None:
    assert "hunter2" not in Database("postgresql://heron:hunter2@127.0.0.1/heron").display_url
