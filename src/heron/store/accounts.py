"""Accounts in SQL: one row per account, all secrets swapped in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from heron.accounts import Account, ScramHash, ScramKeys, Secret, Secrets
from heron.errors import AccountExists
from heron.store.database import Database
from heron.store.owned import delete_owned
from heron.store.schema import accounts

__all__ = ["SqlAccountStore"]


def _secret_columns(secrets: Secrets) -> dict[str, Any]:
    first = secrets.scram[0]
    columns: dict[str, Any] = {
        "password_hash": secrets.password_hash,
        "sip_realm": secrets.sip_realm,
        "sip_ha1_md5": secrets.sip_ha1_md5,
        "sip_ha1_sha256": secrets.sip_ha1_sha256,
        "turn_realm": secrets.turn_realm,
        "turn_key_md5": secrets.turn_key_md5,
        "turn_key_sha256": secrets.turn_key_sha256,
        "scram_salt": first.salt,
        "scram_iterations": first.iterations,
        "missing_secrets": ",".join(sorted(secrets.missing)),
    }
    for keys in secrets.scram:
        columns[f"scram_{keys.hash.value}_stored_key"] = keys.stored_key
        columns[f"scram_{keys.hash.value}_server_key"] = keys.server_key
    return columns


def _utc(moment: datetime) -> datetime:
    # MySQL's DATETIME forgets the zone; heron writes UTC only.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _account(row: Row[Any]) -> Account:
    scram = tuple(
        ScramKeys(
            hash=hash_name,
            salt=row.scram_salt,
            iterations=row.scram_iterations,
            stored_key=row._mapping[f"scram_{hash_name.value}_stored_key"],
            server_key=row._mapping[f"scram_{hash_name.value}_server_key"],
        )
        for hash_name in ScramHash
    )
    secrets = Secrets(
        password_hash=row.password_hash,
        sip_realm=row.sip_realm,
        sip_ha1_md5=row.sip_ha1_md5,
        sip_ha1_sha256=row.sip_ha1_sha256,
        turn_realm=row.turn_realm,
        turn_key_md5=row.turn_key_md5,
        turn_key_sha256=row.turn_key_sha256,
        scram=scram,
        missing=frozenset(Secret(name) for name in row.missing_secrets.split(",") if name),
    )
    return Account(
        local=row.local,
        domain=row.domain,
        admin=bool(row.admin),
        secrets=secrets,
        created=_utc(row.created_at),
    )


class SqlAccountStore:
    """:class:`heron.accounts.AccountStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def add(self, account: Account) -> None:
        values = {
            "local": account.local,
            "domain": account.domain,
            "admin": account.admin,
            "created_at": account.created,
            "updated_at": account.created,
            **_secret_columns(account.secrets),
        }
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(accounts).values(**values))
        except IntegrityError:
            raise AccountExists(f"{account.address} already exists") from None

    async def get(self, local: str, domain: str) -> Account | None:
        query = select(accounts).where(accounts.c.local == local, accounts.c.domain == domain)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _account(row)

    async def list(self, domain: str | None = None) -> Sequence[Account]:
        query = select(accounts).order_by(accounts.c.domain, accounts.c.local)
        if domain is not None:
            query = query.where(accounts.c.domain == domain)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_account(row) for row in rows]

    async def delete(self, local: str, domain: str) -> bool:
        """The account and, in the same transaction, what it owns (:mod:`heron.store.owned`)."""
        statement = delete(accounts).where(accounts.c.local == local, accounts.c.domain == domain)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
            if result.rowcount:
                await delete_owned(connection, f"{local}@{domain}")
        return bool(result.rowcount)

    async def replace_secrets(self, local: str, domain: str, secrets: Secrets) -> bool:
        return await self._update(local, domain, **_secret_columns(secrets))

    async def set_admin(self, local: str, domain: str, admin: bool) -> bool:
        return await self._update(local, domain, admin=admin)

    async def _update(self, local: str, domain: str, **values: Any) -> bool:
        statement = (
            update(accounts)
            .where(accounts.c.local == local, accounts.c.domain == domain)
            .values(updated_at=datetime.now(UTC), **values)
        )
        return await self._changed(statement)

    async def _changed(self, statement: Any) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)
