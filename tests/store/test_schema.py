"""The tables the application sees are the tables the migrations build, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, LargeBinary
from sqlalchemy.dialects.mysql import TINYBLOB

from heron.store import Database
from heron.store.schema import metadata

pytestmark = pytest.mark.database


def _same_on_mysql(difference: Any) -> bool:
    """MySQL and MariaDB store BLOB(n) for n < 256 as TINYBLOB: the same column, which
    Alembic's comparison reports as a type change."""
    if not isinstance(difference, list) or difference[0][0] != "modify_type":
        return False
    reflected, declared = difference[0][-2:]
    return isinstance(reflected, TINYBLOB) and isinstance(declared, LargeBinary)


async def test_schema_matches_the_migrations(database: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection)
        return [d for d in compare_metadata(context, metadata) if not _same_on_mysql(d)]

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_every_table_is_in_the_schema(database: Database) -> None:
    def tables(connection: Connection) -> set[str]:
        return set(connection.dialect.get_table_names(connection)) - {"alembic_version"}

    async with database.engine.connect() as connection:
        assert await connection.run_sync(tables) == set(metadata.tables)
