"""Persistence: one SQL database (SQLite, PostgreSQL, MariaDB/MySQL) behind small interfaces."""

from heron.store.accounts import SqlAccountStore
from heron.store.database import Database, async_url
from heron.store.location import SqlLocationStore

__all__ = ["Database", "SqlAccountStore", "SqlLocationStore", "async_url"]
