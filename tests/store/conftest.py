"""A migrated database for each store test, on each backend of the ``database_url`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from heron.store import Database


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.open()
    try:
        yield database
    finally:
        await database.close()
