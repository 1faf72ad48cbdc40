"""The tables a reader reads, wherever the daemon kept them: a SQLite file, opened
read-only (the daemon may still run), or a database URL (PostgreSQL, MySQL/MariaDB) that
coturn, Kamailio and Prosody share with their other servers.

Readers are synchronous and see one SQLAlchemy ``Connection`` through :class:`Tables`; a URL
is read on heron's asyncio drivers, the reader running inside ``run_sync``. Queries are
built with SQLAlchemy Core, so a column named ``user`` or ``key`` (Prosody's) is quoted as
each database quotes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, RowMapping, column, create_engine, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from heron.errors import StoreError
from heron.importers.model import SourceError
from heron.store.database import async_url, failure_reason

__all__ = ["Row", "Source", "Tables", "read_tables", "shown"]

T = TypeVar("T")
Source = Path | str
"""A file or directory, or a database URL (``mysql://root@127.0.0.1/kamailio``)."""
Row = RowMapping


def shown(source: Source) -> str:
    """The source as reports name it: a URL without its password."""
    if isinstance(source, Path):
        return str(source)
    try:
        return make_url(source).render_as_string(hide_password=True)
    except ArgumentError:
        return source


class Tables:
    """Read-only queries of whole tables, one at a time."""

    def __init__(self, connection: Connection, shown: str) -> None:
        self._connection = connection
        self.shown = shown
        """The source as the report names it (a URL without its password)."""

    def names(self) -> set[str]:
        return set(inspect(self._connection).get_table_names())

    def rows(
        self,
        name: str,
        columns: Sequence[str],
        *,
        where: Mapping[str, str] | None = None,
        order_by: Sequence[str] = (),
        distinct: bool = False,
    ) -> Iterator[Row]:
        """``SELECT [DISTINCT] columns FROM name WHERE k = v AND ... ORDER BY order_by``."""
        where = where or {}
        source = table(name, *(column(c) for c in dict.fromkeys([*columns, *where, *order_by])))
        query = (
            select(*(source.c[c] for c in columns))
            .where(*(source.c[k] == v for k, v in where.items()))
            .order_by(*(source.c[c] for c in order_by))
        )
        if distinct:
            query = query.distinct()
        return iter(self._connection.execute(query).mappings())


def _checked(tables: Tables, what: str, needed: tuple[str, ...]) -> Tables:
    absent = [name for name in needed if name not in tables.names()]
    if absent:
        raise SourceError(f"{tables.shown}: not {what}: no table {', '.join(absent)}")
    return tables


def read_tables(
    source: Source, what: str, needed: tuple[str, ...], reader: Callable[[Tables], T]
) -> T:
    """``reader`` run over ``source`` once it holds the tables ``needed``; SourceError in
    one line when it cannot be opened or is not ``what``."""
    if isinstance(source, str):
        return asyncio.run(_read_url(source, what, needed, reader))
    if not source.is_file():
        raise SourceError(f"{source}: no such file ({what} expected)")
    uri = f"{source.resolve().as_uri()}?mode=ro"
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as connection:
            return reader(_checked(Tables(connection, str(source)), what, needed))
    except SQLAlchemyError as exc:
        raise SourceError(f"{source}: not a SQLite database: {failure_reason(exc)}") from None
    finally:
        engine.dispose()


async def _read_url(
    url: str, what: str, needed: tuple[str, ...], reader: Callable[[Tables], T]
) -> T:
    try:
        parsed = async_url(url, "--db")
    except StoreError as exc:
        raise SourceError(str(exc)) from None
    display = shown(url)
    engine = create_async_engine(parsed)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: reader(_checked(Tables(sync, display), what, needed))
            )
    except (SQLAlchemyError, OSError) as exc:
        raise SourceError(f"{display}: {failure_reason(exc)}") from None
    finally:
        await engine.dispose()
