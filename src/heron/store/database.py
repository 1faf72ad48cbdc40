"""Opening the one database: URL dialects, connection checks, migrations.

Administrators write plain URLs (``postgresql://``, ``mysql://``,
``sqlite:///``); heron picks the asyncio driver for each, so the same URL
they give psql or mysql works here.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from heron.errors import StoreError

__all__ = ["Database", "async_url", "database_errors", "failure_reason"]

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}
_MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str, key: str = "database.url") -> URL:
    """Map a plain database URL to its asyncio driver; raise StoreError naming a bad one
    (and the setting or argument ``key`` that gave it)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{key}: {url!r} is not a database URL") from None
    backend = parsed.drivername.partition("+")[0]
    if backend not in _DRIVERS:
        known = ", ".join(sorted({"sqlite", "postgresql", "mysql", "mariadb"}))
        raise StoreError(f"{key}: unsupported database {backend!r} (use {known})")
    return parsed.set(drivername=_DRIVERS[backend])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run during a write; busy_timeout waits out brief locks
    # instead of failing a login (Kamailio needed the same with SQLite).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


class Database:
    """An async engine on the configured database, migrated to the current schema."""

    def __init__(self, url: str) -> None:
        self._url = async_url(url)
        self.display_url = self._url.render_as_string(hide_password=True)
        if self._url.get_backend_name() == "sqlite":
            self._prepare_sqlite_file()
        # A ping finds server connections dropped while pooled; a SQLite file has none to
        # drop, and the ping's "SELECT 1" costs each checkout a quarter of a query's CPU.
        remote = self._url.get_backend_name() != "sqlite"
        self.engine: AsyncEngine = create_async_engine(self._url, pool_pre_ping=remote)
        if self._url.get_backend_name() == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @property
    def backend(self) -> str:
        return self._url.get_backend_name()

    def _prepare_sqlite_file(self) -> None:
        database = self._url.database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"database.url: cannot create {database}: {exc.strerror}"
                ) from None

    async def open(self) -> None:
        """Connect and bring the schema up to date; StoreError in one line if impossible."""
        try:
            with self._migration_lock():
                async with self.engine.begin() as connection:
                    await connection.run_sync(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            await self.engine.dispose()
            raise StoreError(f"database {self.display_url}: {failure_reason(exc)}") from None

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """One migrating process at a time on an SQLite file (two `heron user add` at once).

        PostgreSQL and MariaDB serialize DDL themselves; SQLite's first
        CREATE TABLE would race, so a lock file beside the database orders them.
        """
        database = self._url.database
        if self.backend != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def ping(self) -> None:
        """Connect without changing anything; StoreError in one line if impossible."""
        try:
            async with self.engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database {self.display_url}: {failure_reason(exc)}") from None
        finally:
            await self.engine.dispose()

    async def close(self) -> None:
        await self.engine.dispose()


@contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Turn a database failure inside the block into a StoreError saying ``what`` failed."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"{what}: {exc.__class__.__name__}: {exc}") from exc


def failure_reason(exc: BaseException) -> str:
    """The driver's own words, first line only, without SQLAlchemy's boilerplate."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
